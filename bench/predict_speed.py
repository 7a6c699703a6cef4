"""Prediction speed on CPU, every figure measured in this one run on this machine.

    python bench/predict_speed.py [--models models] [--sentences 5000]

- sentences per second for every packaged family in models/ (5,000 training sentences, repeated and shuffled; median of 3 passes),
  and units per second in articles (5,000 training units, each with the unit before it and its article's opening);
- the fine-tuned predictor (its packaged runtime) against transformers.pipeline("text-classification")
  on the same encoder weights at the pipeline's defaults, and against its own fp32 torch path;
- how often the optimised runtime's label decisions agree with fp32 (the fine-tuned network's int8
  path on the speed sentences; the ONNX sentence encoder on the sealed test split);
- cold start per family: a new process imports, loads the package and predicts one sentence;
- peak memory of `claims predict` streaming 10,000 and 100,000 sentences.

Results are printed and written between the speed markers of bench/RESULTS.md.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import typer

from claims.corpus.annotations import read_all
from claims.util.paths import ANNOTATIONS_DIR, MODELS_DIR, ROOT
from claims.predictor.predictor import Predictor
from sections import write_section

START, END = "<!-- speed:start -->", "<!-- speed:end -->"
RESULTS = ROOT / "bench" / "RESULTS.md"


def sentences(n: int, seed: int = 0) -> list[str]:
    pool = [r.text for r in read_all(sorted(ANNOTATIONS_DIR.glob("*.jsonl")))[0]]
    rng = random.Random(seed)
    out = [pool[i % len(pool)] for i in range(n)]
    rng.shuffle(out)
    return out


def article_units(n: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """`n` training units, each with the unit before it and its article's opening, as `claims predict`
    reads an article (drawn at random, so every article's side texts are of its own)."""
    from claims.training import loop
    from claims.training.config import load_config
    from claims.util.paths import CONFIGS_DIR

    data = loop.load_data(load_config(CONFIGS_DIR / "tfidf_linear.yaml"))
    idx = random.Random(seed).sample(range(len(data.texts)), min(n, len(data.texts)))
    return [(data.texts[i], data.contexts[i], data.openings[i]) for i in idx]


def rate(fn, texts: list, batch: int = 256, repeats: int = 3) -> float:
    """Sentences per second, the median of `repeats` passes over `texts`."""
    fn(texts[:batch])  # warm-up: first call pays for lazy initialisation
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        for i in range(0, len(texts), batch):
            fn(texts[i:i + batch])
        rates.append(len(texts) / (time.perf_counter() - t))
    return statistics.median(rates)


def pipeline_rate(pkg: Path, texts: list[str]) -> float:
    """transformers.pipeline at its defaults on the fine-tuned encoder and head weights."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, pipeline

    folder = pkg / "artifacts" / "model"
    from safetensors.torch import load_file

    state = load_file(str(folder / "model.safetensors"))
    config = BertConfig.from_json_file(str(folder / "encoder_config.json"))
    heads = json.loads((folder / "heads.json").read_text())
    config.num_labels = sum(heads.values())
    config.problem_type = "multi_label_classification"
    clf = BertForSequenceClassification(config)
    clf.bert.load_state_dict({k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}, strict=False)
    with torch.no_grad():
        clf.classifier.weight.copy_(torch.cat([state[f"heads.{t}.weight"] for t in heads]))
        clf.classifier.bias.copy_(torch.cat([state[f"heads.{t}.bias"] for t in heads]))
    pipe = pipeline("text-classification", model=clf, tokenizer=AutoTokenizer.from_pretrained(str(folder / "tokenizer")),
                    device=-1)
    pipe(texts[:8])
    t = time.perf_counter()
    pipe(texts)
    return len(texts) / (time.perf_counter() - t)


COLD = """
import time; t = time.perf_counter()
from claims.predictor.predictor import Predictor
p = Predictor.load({pkg!r}, runtime={runtime!r})
p.predict(["JNIM said it had seized the base."])
print(time.perf_counter() - t)
"""


def test_split_units() -> tuple[list[str], list[str], list[str]]:
    """The sealed test split's units, their previous units and their articles' openings (measuring
    agreement chooses nothing)."""
    from claims.training import loop
    from claims.training.config import load_config
    from claims.util.paths import CONFIGS_DIR

    cfg = load_config(CONFIGS_DIR / "ensemble.yaml")
    test = loop.load_test_split(cfg, loop.load_data(cfg).docs)
    return list(test.texts), list(test.contexts), list(test.openings)


def cold_start(pkg: Path, repeats: int = 3, runtime: str = "auto") -> float:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", COLD.format(pkg=str(pkg), runtime=runtime)], check=True, env=env,
                       capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def peak_rss_mb(pkg: Path, n: int, tmp: Path) -> tuple[float, float]:
    src = tmp / f"in{n}.jsonl"
    with open(src, "w") as f:
        for i, t in enumerate(sentences(n, seed=1)):
            f.write(json.dumps({"id": str(i), "text": t}) + "\n")
    cmd = [sys.executable, "-m", "claims.cli", "predict", "--model", str(pkg), str(src), "-o", str(tmp / f"out{n}.jsonl"), "--quiet"]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise RuntimeError(f"{cmd} failed")
    return usage.ru_maxrss / 1024, time.perf_counter() - t


def main(models: Path = typer.Option(MODELS_DIR), n: int = typer.Option(5000, "--sentences"),
         memory: bool = typer.Option(True, help="Also measure peak memory at 10k and 100k sentences."),
         write: bool = typer.Option(True, help="Update the speed section of bench/RESULTS.md."),
         only: list[str] = typer.Option(None, "--only", help="Measure just these packages (names in models/).")) -> None:
    texts = sentences(n)
    in_articles = article_units(n)
    packages = sorted(p for p in models.iterdir() if (p / "MLmodel").exists() and p.name != "default"
                      and (not only or p.name in only))
    lines = [f"Measured by `python bench/predict_speed.py` on {n} training sentences (repeated, shuffled), "
             f"{len(os.sched_getaffinity(0))} CPU cores, batches of 256, median of 3 passes, model load excluded.", "",
             "| package | family | runtime | sentences/s | in articles (units/s) | cold start (s) |",
             "|---|---|---|---|---|---|"]
    finetune = None
    test_texts, test_contexts, test_openings = test_split_units()
    agreement = []
    for pkg in packages:
        pred = Predictor.load(pkg)
        sps = rate(pred.predict, texts)
        aps = rate(lambda units, pred=pred: pred.predict([t for t, _, _ in units], [c for _, c, _ in units],
                                                         [o for _, _, o in units]), in_articles)
        cold = cold_start(pkg)
        family = pred.model.family_name
        lines.append(f"| {pkg.name} | `{family}` | {pred.runtime} | {sps:,.0f} | {aps:,.0f} | {cold:.2f} |")
        print(f"{pkg.name:14s} {family:16s} {pred.runtime:9s} {sps:9,.0f} sentences/s  {aps:9,.0f} in articles  "
              f"cold start {cold:.2f} s", flush=True)
        if pred.runtime.startswith("onnx-encoder"):  # a static package reads its own vectors on every runtime
            ref = Predictor.load(pkg, runtime="fp32")
            b = ref.predict(test_texts, test_contexts, test_openings)
            others = [("onnx-encoder", "ONNX fp32 encoder")] if pred.runtime == "onnx-encoder-int8" else []
            for runtime, title in [*others, ("fp32", "fp32 (torch encoder)")]:
                other = ref if runtime == "fp32" else Predictor.load(pkg, runtime=runtime)
                o_sps, o_cold = rate(other.predict, texts), cold_start(pkg, runtime=runtime)
                lines.append(f"| {pkg.name} | `{family}` | {title} | {o_sps:,.0f} | | {o_cold:.2f} |")
                print(f"{pkg.name:14s} {runtime} {o_sps:9,.0f} sentences/s  cold start {o_cold:.2f} s", flush=True)
            for path in [pred, *(Predictor.load(pkg, runtime=r) for r, _ in others)]:
                a = path.predict(test_texts, test_contexts, test_openings)
                agreement.append(f"- `{pkg.name}`, {path.runtime}: {np.mean(a.decisions == b.decisions):.2%} of "
                                 f"{a.decisions.size:,} (unit, label) pairs; largest probability difference "
                                 f"{np.nanmax(np.abs(a.proba - b.proba)):.1e}.")
                print(agreement[-1], flush=True)
        if family == "finetune.v1":
            finetune = (pkg, pred, sps)
    if agreement:
        lines += ["", f"Labels of the ONNX encoder paths against the torch (fp32) path on the sealed test split "
                      f"({len(test_texts)} units, whole articles with their previous units):", "", *agreement]
    if finetune:
        pkg, fast, fast_sps = finetune
        ref = Predictor.load(pkg, runtime="fp32")
        fp32_sps = rate(ref.predict, texts)
        pipe_sps = pipeline_rate(pkg, texts)
        agree = float(np.mean(fast.predict(texts).decisions == ref.predict(texts).decisions))
        lines += ["", "Fine-tuned transformer, same machine, same run:", "",
                  "| path | sentences/s | packaged predictor is |", "|---|---|---|",
                  f"| packaged predictor ({fast.runtime}) | {fast_sps:,.0f} | |",
                  f"| its own fp32 torch path | {fp32_sps:,.0f} | {fast_sps / fp32_sps:.2f}x faster |",
                  f"| `transformers.pipeline(\"text-classification\")`, defaults | {pipe_sps:,.0f} | "
                  f"{fast_sps / pipe_sps:.2f}x faster |", "",
                  f"Label decisions of {fast.runtime} agree with fp32 on {agree:.2%} of {len(texts) * len(fast.space)} "
                  f"(sentence, label) pairs."]
        print(f"finetune: packaged {fast_sps:,.0f}/s; fp32 {fp32_sps:,.0f}/s ({fast_sps / fp32_sps:.2f}x); "
              f"pipeline {pipe_sps:,.0f}/s ({fast_sps / pipe_sps:.2f}x); agreement {agree:.4%}", flush=True)
    if memory:
        default = models / "default" if (models / "default").exists() else packages[0]
        with tempfile.TemporaryDirectory() as tmp:
            small, t_small = peak_rss_mb(default, 10_000, Path(tmp))
            large, t_large = peak_rss_mb(default, 100_000, Path(tmp))
        lines += ["", f"Peak memory of `claims predict --model {default.relative_to(ROOT) if default.is_relative_to(ROOT) else default}` "
                      f"(streaming JSONL in and out): {small:,.0f} MB for 10,000 sentences ({t_small:.0f} s), "
                      f"{large:,.0f} MB for 100,000 ({t_large:.0f} s): ratio {large / small:.3f}."]
        print(f"peak RSS 10k {small:,.0f} MB, 100k {large:,.0f} MB, ratio {large / small:.3f}", flush=True)
    if write:
        write_section(RESULTS, START, END, "\n".join([START, "## Prediction speed", "", *lines, END]))


if __name__ == "__main__":
    typer.run(main)
