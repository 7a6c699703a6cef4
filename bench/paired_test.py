"""Two packaged models on the sealed test split, side by side: each headline figure of (d), B minus A,
and the interval of that difference over the same draws of test articles (a paired bootstrap).

The 27 test articles give each model's (d) an interval of about ±.04, so two models' own intervals
nearly always overlap; the paired interval is much narrower (both models err on many of the same
units) and is the one to read when asking whether B is better than A. It measures the test
sample's variation only: retraining on slightly different data moves a model too, which no
interval here includes. Nothing is chosen on the test split: this reports, it does not select.

    python bench/paired_test.py MODEL_A MODEL_B   (package folders, e.g. models/default, or run model folders)

Each package predicts on its default runtime (`--runtime fp32` for the path `claims train` scored as
(d); the static encoder of `ensemble_static` reads the same vectors on both). Figures in
bench/RESULTS.md, "Intervals on the test split".
"""

from __future__ import annotations

from pathlib import Path

import typer

from claims.predictor.predictor import Predictor
from claims.training import loop
from claims.training.config import load_config
from claims.training.evaluation import metrics
from claims.util.paths import CONFIGS_DIR


def paired(model_a: Path, model_b: Path, config: Path = CONFIGS_DIR / "ensemble_static.yaml",
           runtime: str = "auto") -> dict[str, float]:
    cfg = load_config(config)
    test = loop.load_test_split(cfg, loop.load_data(cfg).docs)
    preds = []
    for folder in (model_a, model_b):
        predictor = Predictor.load(folder, runtime=runtime)
        if predictor.space.column_names != test.space.column_names:
            raise SystemExit(f"{folder}: its labels {predictor.space.column_names} are not the test split's "
                             f"{test.space.column_names}")
        preds.append(predictor.predict(list(test.texts), list(test.contexts), list(test.openings)).decisions)
    return metrics.paired_article_bootstrap(test.y, preds[0], preds[1], test.docs, test.space)


def main(model_a: Path, model_b: Path,
         config: Path = typer.Option(CONFIGS_DIR / "ensemble_static.yaml", help="Config naming the test split."),
         runtime: str = typer.Option("auto", help="Each package's runtime, as `claims predict --runtime` (fp32: the "
                                                  "path the training run scored as (d)).")) -> None:
    out = paired(model_a, model_b, config, runtime)
    print(f"B = {model_b} minus A = {model_a}, on the sealed test split, "
          f"{metrics.BOOTSTRAP_LEVEL:.0%} paired intervals over its articles:")
    for name in sorted({k.rsplit(".", 1)[0] for k in out}):
        print(f"  {name}: {out[name + '.diff']:+.4f} ({out[name + '.ci_low']:+.4f} to {out[name + '.ci_high']:+.4f}), "
              f"B ahead in {out[name + '.p_better']:.0%} of draws")


if __name__ == "__main__":
    typer.run(main)
