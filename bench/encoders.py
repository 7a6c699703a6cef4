"""Encoders and pooling against prediction speed: the default ensemble and embed_linear with each
wheel-shipped encoder (MiniLM, mpnet) and pooling (mean, mean+max, first token), every one with
(a), (b), (d) and the behavioural suite, and the packaged predictor's sentences per second.

Speed is the package as users load it (ONNX encoder), on the sealed test split's units with their
previous units (whole articles), measured as bench/predict_speed.py measures: batches of 256, median
of 3 passes, model load excluded.

    python bench/encoders.py [--section encoders|layers] [--configs bench/configs/x.yaml ...] [--tracking-uri URI]
    (`make bench-encoders`, which installs the mpnet wheels first; `make bench-layers`)

Section `layers` compares the default with MiniLM cut after its first 3 or 2 layers: the cost of
the encoder falls in proportion, which is where 2 cores spend most of a prediction.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import typer
from mlflow.tracking import MlflowClient

from claims.predictor.predictor import Predictor
from claims.training import loop, tracking
from claims.training.config import load_config
from claims.training.evaluation.metrics import headline_names
from claims.training.pipeline import train_package_check
from claims.training.progress import RichProgress
from claims.util.paths import CONFIGS_DIR, MODELS_DIR, ROOT

sys.path.insert(0, str(Path(__file__).parent))
from predict_speed import rate  # noqa: E402
from sections import write_section  # noqa: E402

BENCH_CONFIGS = Path(__file__).parent / "configs"
# section -> (title, default configs)
SECTIONS = {
    "encoders": ("Encoders and pooling against speed",
                 [CONFIGS_DIR / "ensemble.yaml", CONFIGS_DIR / "embed_linear.yaml",
                  *sorted(p for p in BENCH_CONFIGS.glob("*.yaml") if "_first" not in p.stem)]),
    "layers": ("Fewer encoder layers against speed",
               [CONFIGS_DIR / "ensemble.yaml", *sorted(BENCH_CONFIGS.glob("*_first*.yaml"))]),
}


def units_per_second(package: Path, texts: list[str], contexts: list[str], openings: list[str]) -> float:
    """`predict_speed.rate` over (unit, previous unit, opening) triples: whole articles, as users predict them."""
    predictor = Predictor.load(package)
    return rate(lambda units: predictor.predict([t for t, _, _ in units], [c for _, c, _ in units], [o for _, _, o in units]),
                list(zip(texts, contexts, openings)))


def main(section: str = typer.Option("encoders", help="Section of bench/RESULTS.md: encoders or layers."),
         configs: list[Path] = typer.Option(None, help="Configs (default: the section's)."),
         tracking_uri: str = typer.Option(None, help="MLflow store (default: sqlite:///mlflow.db)."),
         models_dir: Path = typer.Option(MODELS_DIR),
         out: Path = typer.Option(ROOT / "bench" / "RESULTS.md")) -> None:
    if section not in SECTIONS:
        raise typer.BadParameter(f"--section {section!r}: one of {', '.join(SECTIONS)}")
    title, default_configs = SECTIONS[section]
    start, end = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
    planned = []
    for path in configs or default_configs:
        cfg = load_config(path)
        data = loop.load_data(cfg)
        planned.append((cfg, data, loop.load_test_split(cfg, data.docs)))
    uri = tracking.resolve_uri(tracking_uri, None)
    tracking.open_store(uri)
    client = MlflowClient(uri)
    rows = []
    started = time.perf_counter()
    for cfg, data, test in planned:
        with RichProgress() as progress:
            outcome = train_package_check(cfg, data, uri, progress, models_dir=models_dir, test=test)
        metrics = client.get_run(outcome.result.run_id).data.metrics
        speed = units_per_second(outcome.package, list(test.texts), list(test.contexts), list(test.openings))
        rows.append((cfg, metrics, speed, outcome.result.run_id))
        typer.echo(f"{cfg.name}: {speed:.0f} units/s", err=True)
    total = time.perf_counter() - started

    head = headline_names(planned[0][1].space)

    def cell(m: dict, prefix: str) -> str:
        return " / ".join(f"{m.get(f'{prefix}.{h}', float('nan')):.3f}" for h in head)

    lines = [start, f"## {title}", "",
             f"Made by `python bench/encoders.py --section {section}`, {total:.0f} s for all rows, on "
             f"{len(planned[0][1].texts):,} training units. Cells as in the "
             "first table; speed is the package's units per second on the test split's articles (ONNX encoder, "
             "2 cores, batches of 256, median of 3). Score chooses on (a), (b) and behaviour only.", "",
             "| config | family | encoder | pooling | (a) | (b) | (d) | behaviour | score | units/s | run id |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    # `score` is the default-model rule that training logs on every parent run (claims.training.compare).
    for cfg, m, speed, run_id in sorted(rows, key=lambda r: -r[1].get("score", -1.0)):
        lines.append(f"| {cfg.name} | `{cfg.model.name}` | {cfg.model.encoder} | {cfg.model.pooling} | {cell(m, 'cv')} | "
                     f"{cell(m, 'country')} | {cell(m, 'test')} | {m.get('behaviour.pass_rate', float('nan')):.1%} | "
                     f"{m.get('score', float('nan')):.3f} | {speed:.0f} | `{run_id[:8]}` |")
    lines.append(end)
    write_section(out, start, end, "\n".join(lines))
    typer.echo(f"wrote the {section} section of {out}", err=True)


if __name__ == "__main__":
    typer.run(main)
