"""Learning curve: a config trained on 25%, 50% and 100% of the written training articles (always
with the seeds), scored on the sealed test split. Does annotating more still pay?

Thresholds come from a grouped inner split of each training subset, never from the test split.
Articles are drawn at random (seeded) per repeat; the table reports the mean and range.

    python bench/learning_curve.py [--config configs/ensemble_static.yaml] [--repeats 3]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import typer

from claims.training import loop
from claims.training.config import load_config
from claims.training.evaluation import metrics, thresholds
from claims.training.evaluation.metrics import headline_names
from claims.corpus.augment import Augmenting
from claims.models.families.base import build
from claims.util.paths import ROOT
from claims.util.seeding import set_seed
from sections import write_section

START, END = "<!-- learning-curve:start -->", "<!-- learning-curve:end -->"


def _model(cfg, data):
    """The config's model as training builds it: with its swap augmentation, if it has one."""
    model = build(cfg.model, cfg.train, data.schema)
    aug = cfg.data.augment
    return Augmenting(model, data.gazetteer, aug.copies, cfg.train.seed, aug.actors, aug.places) if aug.enabled else model


def run(config: Path, fractions: list[float], repeats: int) -> tuple[list[dict], str, int]:
    cfg = load_config(config)
    data = loop.load_data(cfg)
    test = loop.load_test_split(cfg, data.docs)
    if test is None:
        raise SystemExit("no test split: nothing to score")
    space = data.space
    written = sorted({d for d, s in zip(data.docs, data.splits) if s == "train"})
    rows = []
    for frac in fractions:
        for r in range(repeats if frac < 1 else 1):
            rng = np.random.default_rng(1000 + r)
            keep = set(rng.choice(written, size=max(1, round(frac * len(written))), replace=False))
            idx = np.array([i for i, (d, s) in enumerate(zip(data.docs, data.splits)) if s != "train" or d in keep])
            sub = data.subset(idx)
            set_seed(cfg.train.seed)
            make = lambda: _model(cfg, data)  # noqa: E731
            thr = thresholds.inner_thresholds(make, sub.texts, sub.y, np.asarray(sub.docs), space,
                                              cfg.eval.inner_folds, cfg.eval.default_threshold, sub.contexts,
                                              sub.openings)
            model = make().fit(sub.texts, sub.y, sub.contexts, sub.docs, sub.openings)
            proba = model.predict_proba(test.texts, test.contexts, test.openings)
            m = metrics.compute(test.y, space.decide(proba, thr), proba, space)
            rows.append({"fraction": frac, "articles": len(keep), "units": len(sub.texts),
                         **{h: m[h] for h in headline_names(space)}})
            print(rows[-1], file=sys.stderr)
    return rows, cfg.name, len(test.texts)


def main(config: Path = typer.Option(ROOT / "configs" / "ensemble_static.yaml"),
         repeats: int = typer.Option(3, min=1), out: Path = typer.Option(ROOT / "bench" / "RESULTS.md")) -> None:
    fractions = [0.25, 0.5, 1.0]
    rows, name, n_test = run(config, fractions, repeats)
    heads = [k for k in rows[0] if k not in ("fraction", "articles", "units")]
    lines = [START, "## Learning curve", "",
             f"`{name}` trained on the seeds plus a random 25%, 50% and 100% of the written training articles "
             f"({repeats} draws for the partial sizes: mean, with min-max), scored on the sealed test split "
             f"({n_test} units). Made by `python bench/learning_curve.py`.", "",
             "| written articles | training units | " + " | ".join(heads) + " |", "|---|---|" + "---|" * len(heads)]
    for frac in fractions:
        sel = [r for r in rows if r["fraction"] == frac]
        cells = []
        for h in heads:
            v = np.array([r[h] for r in sel])
            cells.append(f"{v.mean():.3f}" + (f" ({v.min():.3f}-{v.max():.3f})" if len(v) > 1 else ""))
        lines.append(f"| {sel[0]['articles']} ({frac:.0%}) | {round(np.mean([r['units'] for r in sel]))} | " + " | ".join(cells) + " |")
    lines.append(END)
    write_section(out, START, END, "\n".join(lines))


if __name__ == "__main__":
    typer.run(main)
