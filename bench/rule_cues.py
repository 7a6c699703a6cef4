"""Audit of the rules' cues on the training data (never the test split): for each output column its
base rate, and for each cue the units it fires on, in how many articles, and its precision; then
precision, recall and F1 of "any cue fired" (attribution without the gazetteer part).

A cue is flagged `!` when it fires in fewer than 3 articles or its precision is neither twice the
column's base rate nor above 0.5: the bar every cue of labels/rules.yaml was kept to.

    python bench/rule_cues.py [labels/rules.yaml] [--compare OTHER.yaml] [--config configs/rules.yaml]
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import numpy as np
import typer
import yaml

from claims.training import loop
from claims.training.config import load_config
from claims.util.paths import CONFIGS_DIR, ROOT


def _prf(fired: np.ndarray, gold: np.ndarray) -> tuple[float, float, float]:
    tp = int((fired & gold).sum())
    p = tp / fired.sum() if fired.sum() else 0.0
    r = tp / gold.sum() if gold.sum() else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def audit(cue_file: Path, texts: list[str], docs: np.ndarray, y: np.ndarray, columns: list[str],
          verbose: bool = True, examples: int = 0, ids: list[str] | None = None) -> dict[str, tuple[float, float, float, float]]:
    cues = yaml.safe_load(cue_file.read_text(encoding="utf-8"))["cues"]
    unknown = sorted(set(cues) - set(columns))
    if unknown:  # as rules.v1 refuses them: a misspelt column would audit as "no cues"
        raise SystemExit(f"{cue_file}: unknown column(s) {unknown}; expected {columns}")
    out = {}
    for j, column in enumerate(columns):
        gold = y[:, j].astype(bool)
        base = gold.mean()
        any_fired = np.zeros(len(texts), dtype=bool)
        if verbose:
            print(f"\n=== {column}  (positives {gold.sum()}, base rate {base:.3f})\n  fires docs  prec  cue")
        for cue in cues.get(column, []):
            rx = re.compile(cue, re.IGNORECASE)
            fired = np.array([bool(rx.search(t)) for t in texts])
            any_fired |= fired
            n_docs = len(set(docs[fired].tolist()))
            prec = gold[fired].mean() if fired.any() else 0.0
            flag = "!" if n_docs < 3 or not (prec >= 2 * base or prec > 0.5) else " "
            if verbose:
                print(f"{flag} {fired.sum():5d} {n_docs:4d} {prec:5.2f}  {cue}")
        out[column] = (base, *_prf(any_fired, gold))
        if verbose:
            print("  any cue: precision {1:.3f} recall {2:.3f} F1 {3:.3f}".format(*out[column]))
        for kind, rows in (("missed", gold & ~any_fired), ("false", ~gold & any_fired)):
            for i in np.flatnonzero(rows)[:examples]:
                print(f"    {kind} {ids[i] if ids else i}: {texts[i][:200]}")
    return out


def main(cue_file: Path = typer.Argument(ROOT / "labels" / "rules.yaml"),
         compare: Optional[Path] = typer.Option(None, help="Another cue file: print both side by side."),
         config: Path = typer.Option(CONFIGS_DIR / "rules.yaml", help="Whose training data to read."),
         examples: int = typer.Option(0, help="Show up to N missed and N false units per column.")) -> None:
    cfg = load_config(config)
    data = loop.load_data(cfg)
    columns = data.space.column_names
    docs = np.asarray(data.docs)
    print(f"{len(data.texts)} units in {len(set(data.docs))} articles (training data only)")
    new = audit(cue_file, list(data.texts), docs, data.y, columns, verbose=compare is None,
                examples=examples, ids=list(data.ids))
    if compare is None:
        return
    old = audit(compare, list(data.texts), docs, data.y, columns, verbose=False)
    print(f"\n| column | base rate | {compare} P / R / F1 | {cue_file} P / R / F1 |\n|---|---|---|---|")
    for c in columns:
        print(f"| {c} | {new[c][0]:.3f} | " + " / ".join(f"{v:.3f}" for v in old[c][1:]) + " | "
              + " / ".join(f"{v:.3f}" for v in new[c][1:]) + " |")


if __name__ == "__main__":
    typer.run(main)
