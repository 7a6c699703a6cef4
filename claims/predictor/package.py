"""Package a trained model as a self-describing MLflow pyfunc folder under models/NAME/.

The folder holds MLmodel (signature, input example), pinned requirements, the project code, and
artifacts/model with the family's weights (skops, safetensors, JSON: no pickle), the resolved
config, the label schema, thresholds, cross-validation metrics, the data digest, and a model card.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from claims.util import atomic
from claims.util.names import check_name
from claims.util.errors import fail
from claims.util.paths import ANNOTATIONS_DIR, CODE_DIR, MODELS_DIR

RUNTIME_PACKAGES = ("numpy", "pandas", "scikit-learn", "scipy", "skops", "torch", "transformers", "tokenizers",
                    "safetensors", "onnxruntime", "pysbd", "pyyaml", "pydantic", "mlflow")
EXAMPLE_TEXTS = ["JNIM said it had seized the base, but the army said it had repelled the attack.",
                 "The soldiers have abandoned the camp, a resident told AFP."]


def pinned_requirements() -> list[str]:
    out = []
    for name in RUNTIME_PACKAGES:
        try:
            out.append(f"{name}=={metadata.version(name).split('+')[0]}")
        except metadata.PackageNotFoundError:
            continue
    return out


def calibration_texts(n: int = 400, seed: int = 0) -> list[str]:
    """A fixed sample of training units (never the sealed split) to set the int8 encoder's scales."""
    import random

    from claims.corpus.annotations import read_all

    texts = sorted({r.text for r in read_all(sorted(ANNOTATIONS_DIR.glob("*.jsonl")), require_labels=False)[0]})
    return random.Random(seed).sample(texts, min(n, len(texts)))


def signature():
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    return ModelSignature(inputs=Schema([ColSpec("string", "text"), ColSpec("string", "id", required=False),
                                           ColSpec("string", "context", required=False),
                                           ColSpec("string", "opening", required=False)]))


def _code_copy(dest: Path) -> Path:
    shutil.copytree(CODE_DIR, dest / "claims", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest / "claims"


def package_model_folder(model_dir: Path, name: str, out_dir: Path = MODELS_DIR,
                         run_id: str | None = None, optimise: bool = True, int8_encoder: bool = False) -> Path:
    """Build models/NAME from a run's `model/` folder; the target appears only when complete."""
    check_name(name, "--name")
    import mlflow.pyfunc
    import pandas as pd

    from claims.predictor.predictor import Predictor, resolve_model_folder

    model_dir = resolve_model_folder(Path(model_dir))
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "model"
        shutil.copytree(model_dir, stage)
        predictor = Predictor.load(stage, runtime="fp32")
        if optimise and hasattr(predictor.model, "net_") and not (stage / "onnx").exists():
            from claims.models.families.onnx_runtime import export

            export(predictor.model, stage / "onnx")
        reads_embeddings = getattr(predictor.model, "reads_embeddings", False)
        if int8_encoder and not reads_embeddings:
            raise fail("--int8-encoder", f"family {predictor.model.family_name} has no sentence encoder to quantise")
        if reads_embeddings:
            from claims.models import encoder

            encoder_name, pooling = getattr(predictor.model, "embedding_settings", (encoder.DEFAULT, "mean"))
            if int8_encoder and encoder.SPECS[encoder_name].static:
                raise fail("--int8-encoder", "a static encoder has no network to quantise")
        if optimise and reads_embeddings:
            from claims.models import onnx_encoder

            if not onnx_encoder.present(stage / onnx_encoder.FOLDER):
                from claims.models import embedding_cache

                shutil.copytree(embedding_cache.exported_encoder(encoder_name, pooling), stage / onnx_encoder.FOLDER,
                                dirs_exist_ok=True)
            # Opt-in: its labels differ from the evaluated model's on about 0.5% of (unit, label) pairs.
            if int8_encoder and not onnx_encoder.present(stage / onnx_encoder.FOLDER, int8=True):
                calibration = calibration_texts()
                if not calibration:
                    raise fail(ANNOTATIONS_DIR, "--int8-encoder calibrates on training units; there are none")
                onnx_encoder.quantize(stage / onnx_encoder.FOLDER, calibration)
        code = _code_copy(Path(tmp) / "code")
        target = Path(out_dir) / name
        with atomic.atomic_dir(target) as build:
            mlflow.pyfunc.save_model(
                path=str(build),
                python_model=str(CODE_DIR / "predictor" / "serving_entry.py"),
                artifacts={"model": str(stage)},
                code_paths=[str(code)],
                signature=signature(),
                input_example=pd.DataFrame({"text": EXAMPLE_TEXTS, "id": ["example:0", "example:1"]}),
                pip_requirements=pinned_requirements(),
                metadata={"claims.name": name, "claims.run_id": run_id or "",
                          "claims.family": json.loads((stage / "family.json").read_text())["family"]},
            )
            (build / "README.md").write_text(model_card(stage, name, run_id))
    return target


def _length_limit(family: str, options: dict[str, Any]) -> str:
    """What the family does with a long unit."""
    if family.startswith("finetune"):
        return "- Inputs longer than the model's limit are truncated (counted in a warning)."
    if family.startswith("embed_linear") or "embeddings" in options.get("features", []):
        return ("- The sentence embeddings read about the first 256 word pieces of a unit (no warning); the other"
                " features read all of it.")
    return "- Units are read whole, whatever their length."


def _loose_lines(options: dict, metrics: dict, schema: dict) -> list[str]:
    """What a loose sentence gets from a model that reads the article's opening."""
    if not (options.get("opening") and "tfidf" in options.get("features", ["tfidf"])):
        return []
    keys = [f"{t['name']}.f1" if t["type"] == "binary" else f"{t['name']}.macro_f1" for t in schema["tasks"]]
    figures = " / ".join(f"{metrics[f'cv_loose.{k}']:.3f}" for k in keys) if all(
        f"cv_loose.{k}" in metrics for k in keys) else None
    scored = ([f"  (a)'s held-out units predicted without their opening ({' / '.join(keys)}): {figures},",
               "  against " + " / ".join(f"{metrics[f'cv.{k}']:.3f}" for k in keys) + " with it."]
              if figures and all(f"cv.{k}" in metrics for k in keys) else [])
    if options.get("loose_head"):
        return ["- This model reads the article's opening. A unit without one (a loose sentence) is predicted by a",
                "  second regression fitted without the opening's features, and decided by thresholds of its own.",
                *scored]
    return ["- This model reads the article's opening: on loose sentences it scores lower on attribution than",
            "  a model trained without it (bench/RESULTS.md, \"Loose sentences and the opening\").", *scored]


def model_card(folder: Path, name: str, run_id: str | None) -> str:
    from claims.models import onnx_encoder

    family = json.loads((folder / "family.json").read_text())
    options = family["options"]  # reads_openings, from the saved options (the card loads no model)
    metrics = json.loads((folder / "metrics.json").read_text())
    data = json.loads((folder / "data.json").read_text())
    schema = yaml.safe_load((folder / "schema.yaml").read_text())
    if (folder / "onnx").exists():
        runtime = "ONNX Runtime, int8 dynamic quantisation (fp32 torch kept as reference)"
    elif (folder / "encoder" / "encoder.int8.onnx").exists():
        runtime = ("sentence encoder in ONNX Runtime, static int8 (labels as the evaluated model's on about 99.5% of "
                   "(unit, label) pairs; `--runtime onnx-encoder` for the exact fp32 path), scikit-learn on CPU")
    elif onnx_encoder.is_static(folder / onnx_encoder.FOLDER):
        runtime = "static word-piece encoder (a numpy lookup of vectors distilled from MiniLM), scikit-learn on CPU"
    elif (folder / "encoder").exists():
        runtime = "sentence encoder in ONNX Runtime (fp32, same embeddings as torch), scikit-learn on CPU"
    else:
        runtime = "scikit-learn / numpy on CPU"
    lines = [
        f"# Model card: {name}",
        "",
        f"Family `{family['family']}`" + (f", trained in MLflow run `{run_id}`" if run_id else "") + f". Runtime: {runtime}.",
        "",
        "## Intended use",
        "",
        "Tags each sentence of news reports on jihadist violence in the Sahel and nearby regions with the kind of conflict claim it",
        "makes, who the information comes from, and whether it reports a military withdrawal, so analysts can",
        "line up contradicting claims. It is an aid for reading, not a source of facts: every tag is a model",
        "guess about what a sentence says, never about what happened.",
        "",
        "## Tasks and labels",
        "",
    ]
    for task in schema["tasks"]:
        lines.append(f"- **{task['name']}** ({task['type']}): {task['description']}")
        for label in task["labels"]:
            lines.append(f"  - `{label['name']}`: {label['definition']}")
    lines += [
        "",
        "## Data",
        "",
        f"{data['units']} annotated units (digest `{data['digest']}`) from {len(data['files'])} annotation files:",
        "the five seed articles (one week of fighting in Mali, 2025) and the written training articles of",
        "`labels/articles.yaml` (invented events in real settings across the region, double-annotated).",
        "",
        "## Metrics",
        "",
        "Each figure is F1 with thresholds chosen without the scored units. (a) grouped 5-fold",
        "cross-validation by article and (b) leave-one-country-out on the training data; (d) this model on",
        "the sealed test split (articles by other writers, never used to choose anything). (d) is what to",
        "expect on a new article predicted whole (each unit with its previous unit and its article's",
        "opening, as `claims predict` reads a .txt article); real reporting from unseen outlets may",
        "score lower.",
        *([] if any(k.startswith("country.") for k in metrics) else [
            "",
            "(b) was not run for this model (`make run` leaves it out to fit its time budget; `make bench`",
            "trains the same config with it, and bench/RESULTS.md reports it)."]),
        "",
        "| task | label | (a) F1 | (b) F1 | (d) precision | (d) recall | (d) F1 | (d) support |",
        "|---|---|---|---|---|---|---|---|",
    ]
    fmt = lambda k: f"{metrics[k]:.3f}" if k in metrics else "-"  # noqa: E731
    for task in schema["tasks"]:
        cols = ["yes"] if task["type"] == "binary" else [label["name"] for label in task["labels"]]
        for col in cols:
            key = task["name"] if task["type"] == "binary" else f"{task['name']}.{col}"
            support = metrics.get(f"test.{key}.support")
            lines.append(f"| {task['name']} | {col} | {fmt(f'cv.{key}.f1')} | {fmt(f'country.{key}.f1')} "
                         f"| {fmt(f'test.{key}.precision')} | {fmt(f'test.{key}.recall')} | {fmt(f'test.{key}.f1')} "
                         f"| {int(support) if support is not None else '-'} |")
    lines += _interval_lines(metrics, schema)
    lines += [
        "",
        "## Limits",
        "",
        "- The written articles are invented by a few writers; real outlets, translations and topics not",
        "  covered there will score lower. Rare labels have the widest uncertainty.",
        "- English only. A unit may use the unit before it and its article's opening (first units) as",
        "  context; loose sentences have neither.",
        *_loose_lines(options, metrics, schema),
        _length_limit(family["family"], options),
        "",
    ]
    return "\n".join(lines)


def _interval_lines(metrics: dict, schema: dict) -> list[str]:
    """(d)'s headline figures with their bootstrap intervals over the test split's articles."""
    keys = [f"test.{t['name']}.f1" if t["type"] == "binary" else f"test.{t['name']}.macro_f1" for t in schema["tasks"]]
    cells = [f"{k.split('.')[1]} {metrics[k]:.3f} ({metrics[k + '.ci_low']:.3f}-{metrics[k + '.ci_high']:.3f})"
             for k in keys if k + ".ci_low" in metrics]
    if not cells:
        return []
    return ["", "(d)'s headline figures with 95% intervals from resampling the test split's articles (a few dozen",
            "articles give wide intervals: two models whose intervals overlap much may not differ): " + "; ".join(cells) + "."]


def download_run_model(run_id: str, dest: Path, tracking_uri: str | None = None) -> Path:
    import os

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per file otherwise
    import mlflow

    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="model", dst_path=str(dest),
                                                    tracking_uri=tracking_uri))


def package_run(run_id: str, name: str, out_dir: Path = MODELS_DIR, register: str | None = None,
                alias: str | None = None, tracking_uri: str | None = None, int8_encoder: bool = False) -> Path:
    """Package a finished run's final model, log the package to the run, optionally register it."""
    import mlflow
    from mlflow.tracking import MlflowClient

    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)  # the model registry follows the tracking store
    with tempfile.TemporaryDirectory() as tmp:
        target = package_model_folder(download_run_model(run_id, Path(tmp), tracking_uri), name, out_dir, run_id,
                                      int8_encoder=int8_encoder)
    client = MlflowClient(tracking_uri)
    client.log_artifacts(run_id, str(target), "package")
    if register:
        version = mlflow.register_model(f"runs:/{run_id}/package", register)
        if alias:
            client.set_registered_model_alias(register, alias, version.version)
    return target
