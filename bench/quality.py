"""Results table: run and package every default config with the full protocol, write bench/RESULTS.md.

All figures are read back from the MLflow store the runs were logged to, by run id, so the table
is exactly what the MLflow UI shows for those runs.

    python bench/quality.py [--tracking-uri URI] [--out bench/RESULTS.md]
"""

from __future__ import annotations

import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import typer
from mlflow.tracking import MlflowClient

from claims.util import atomic
from claims.training import loop
from claims.training import tracking
from claims.training.compare import score
from claims.training.config import load_config
from claims.training.evaluation.metrics import headline_names
from claims.util.paths import CONFIGS_DIR, ROOT
from claims.training.pipeline import train_package_check
from claims.training.progress import RichProgress

SPEED_START = "<!-- speed:start -->"
WHAT_EACH_ADDS = (Path(__file__).parent / "what_each_adds.md").read_text()  # prose kept beside the script
COLUMNS = [  # (metric under cv., header)
    ("claim_type.macro_f1", "claim_type macro F1"),
    ("claim_type.micro_f1", "claim_type micro F1"),
    ("claim_type.exact_match", "claim_type exact match"),
    ("attribution.macro_f1", "attribution macro F1"),
    ("attribution.micro_f1", "attribution micro F1"),
    ("attribution.exact_match", "attribution exact match"),
    ("withdrawal.f1", "withdrawal F1"),
    ("withdrawal.average_precision", "withdrawal AP"),
]


def _cell(metrics: dict[str, float], key: str) -> str:
    return f"{metrics[f'cv.{key}']:.3f} ± {metrics.get(f'cv.{key}_std', 0.0):.3f}"


def main(
    tracking_uri: str = typer.Option(None, help="MLflow store (default: sqlite:///mlflow.db)."),
    out: Path = typer.Option(ROOT / "bench" / "RESULTS.md"),
) -> None:
    configs = [load_config(p) for p in sorted(CONFIGS_DIR.glob("*.yaml"))]
    planned = [(cfg, loop.load_data(cfg)) for cfg in configs]
    uri = tracking.resolve_uri(tracking_uri, None)
    tracking.open_store(uri)
    started = time.perf_counter()
    with RichProgress() as progress:
        # As `claims train` does: run, package as models/<config>/, behavioural check.
        results = [train_package_check(cfg, data, uri, progress).result for cfg, data in planned]
    total = time.perf_counter() - started

    client = MlflowClient(uri)
    runs = [(r, client.get_run(r.run_id)) for r in results]
    space = planned[0][1].space
    head = headline_names(space)
    scores = score(pd.DataFrame([{**{h: run.data.metrics[f"cv.{h}"] for h in head},
                                  "behaviour": run.data.metrics.get("behaviour.pass_rate", float("nan"))}
                                 for _, run in runs]), head)
    ranked = [rr for _, rr in sorted(zip(scores, runs), key=lambda x: -x[0])]

    lines = [
        "# Results",
        "",
        f"Made by `python bench/quality.py` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"{platform.machine()} with {len(os.sched_getaffinity(0))} CPU cores, "
        f"data digest `{runs[0][1].data.tags['claims.data_digest']}` ({len(planned[0][1].texts)} units, "
        f"{len(set(planned[0][1].docs))} articles), commit `{runs[0][1].data.tags.get('claims.git_commit', '?')[:10]}`"
        f"{' (uncommitted changes)' if runs[0][1].data.tags.get('claims.git_dirty') == 'true' else ''}.",
        "",
        "Protocol: leave-one-article-out cross-validation; per-label thresholds tuned on a grouped inner",
        "split of each training part; metrics pooled over the five held-out articles, mean ± std over seeds",
        "(stochastic families only; deterministic ones run once, std 0). Wall time is the whole config:",
        "cross-validation, final fit on all data and MLflow logging.",
        "",
        "Behaviour: pass rate of the packaged model on the behavioural suite (`labels/behaviour/`, templated",
        "sentences with actors and places from all over the region, `claims check`). Score: the mean of",
        "claim_type macro F1, attribution macro F1, withdrawal F1 and the behaviour pass rate; the best",
        "score becomes `models/default/`. Rows are in score order.",
        "",
        "| family | config | " + " | ".join(h for _, h in COLUMNS) + " | behaviour | score | seeds | wall time (s) | run id |",
        "|---|---|" + "---|" * len(COLUMNS) + "---|---|---|---|---|",
    ]
    for result, run in ranked:
        m = run.data.metrics
        sc = dict(zip([r.run_id for r, _ in runs], scores))[result.run_id]
        lines.append(f"| `{run.data.tags['claims.family']}` | {result.config.name} | "
                     + " | ".join(_cell(m, k) for k, _ in COLUMNS)
                     + f" | {m.get('behaviour.pass_rate', float('nan')):.1%} | {sc:.3f}"
                     + f" | {int(m['cv.seeds'])} | {m['time.total_seconds']:.0f} | `{result.run_id[:8]}` |")
    lines += ["", f"All configs together: {total:.0f} s.", "", *WHAT_EACH_ADDS.splitlines(), "## Behavioural pass rate per label", "",
              "| label | " + " | ".join(r.config.name for r, _ in ranked) + " |", "|---|" + "---|" * len(ranked)]
    behaviour_labels = sorted(k[len("behaviour.label."):] for k in ranked[0][1].data.metrics
                              if k.startswith("behaviour.label."))
    for name in behaviour_labels:
        lines.append(f"| {name} | " + " | ".join(f"{run.data.metrics.get('behaviour.label.' + name, float('nan')):.0%}"
                                                for _, run in ranked) + " |")
    lines += ["", "## Per-label F1 (grouped CV)", "",
              "| label | " + " | ".join(r.config.name for r, _ in ranked) + " |",
              "|---|" + "---|" * len(ranked)]
    for name in space.column_names:
        key = name if not name.endswith(".yes") else name[: -len(".yes")]
        lines.append(f"| {name} | " + " | ".join(_cell(run.data.metrics, f"{key}.f1") for _, run in ranked) + " |")
    previous = out.read_text() if out.exists() else ""
    speed = previous[previous.index(SPEED_START):] if SPEED_START in previous else ""  # kept from predict_speed.py
    atomic.write_text(out, "\n".join(lines) + "\n" + ("\n" + speed if speed else ""))
    typer.echo(f"wrote {out} ({total:.0f} s)", err=True)


if __name__ == "__main__":
    sys.exit(typer.run(main))
