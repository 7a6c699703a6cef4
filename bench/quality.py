"""Results: run, package and check every config with the four evaluations, write bench/RESULTS.md.

Every figure is read back from the MLflow store by run id, so the tables are what the MLflow UI
shows for those runs. (a) and (b) choose the default; (c) and (d) are reported only.

    python bench/quality.py [--configs configs/*.yaml] [--tracking-uri URI] [--out bench/RESULTS.md]
"""

from __future__ import annotations

import os
import platform
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import typer
from mlflow.tracking import MlflowClient

from claims.training import loop, tracking
from claims.training.compare import score
from claims.training.config import load_config
from claims.training.evaluation.metrics import headline_names
from claims.training.pipeline import train_package_check
from claims.training.progress import RichProgress
from claims.util import atomic
from claims.util.paths import CONFIGS_DIR, ROOT

WHAT_EACH_ADDS = Path(__file__).parent / "what_each_adds.md"  # prose kept beside the script
EVALUATIONS = [("cv", "(a) 5-fold by article"), ("country", "(b) leave one country out"),
               ("seeds_test", "(c) seeds only → test"), ("test", "(d) all training → test")]


def _f(m: dict, key: str) -> str:
    v = m.get(key)
    return "-" if v is None else f"{v:.3f}"


def main(
    configs: list[Path] = typer.Option(None, help="Configs to run (default: every file in configs/)."),
    tracking_uri: str = typer.Option(None, help="MLflow store (default: sqlite:///mlflow.db)."),
    out: Path = typer.Option(ROOT / "bench" / "RESULTS.md"),
) -> None:
    cfgs = [load_config(p) for p in (configs or sorted(CONFIGS_DIR.glob("*.yaml")))]
    planned = []
    for cfg in cfgs:
        data = loop.load_data(cfg)
        planned.append((cfg, data, loop.load_test_split(cfg, data.docs)))
    uri = tracking.resolve_uri(tracking_uri, None)
    tracking.open_store(uri)
    started = time.perf_counter()
    with RichProgress() as progress:
        outcomes = [train_package_check(cfg, data, uri, progress, test=test) for cfg, data, test in planned]
    total = time.perf_counter() - started

    client = MlflowClient(uri)
    runs = [(o, client.get_run(o.result.run_id)) for o in outcomes]
    data, test = planned[0][1], planned[0][2]
    space = data.space
    head = headline_names(space)
    table = pd.DataFrame([{**{f"{short}.{h}": run.data.metrics.get(f"{prefix}.{h}", float("nan"))
                              for prefix, short in (("cv", "a"), ("country", "b")) for h in head},
                           "behaviour": run.data.metrics.get("behaviour.pass_rate", float("nan"))}
                          for _, run in runs])
    scores = list(score(table, head))
    ranked = [x for _, x in sorted(zip(scores, runs), key=lambda s: -s[0])]
    score_of = {o.result.run_id: s for s, (o, _) in zip(scores, runs)}
    suites = sorted({k.split(".")[2] for _, run in runs for k in run.data.metrics if k.startswith("behaviour.suite.")})
    tags = runs[0][1].data.tags
    lines = [
        "# Results",
        "",
        f"Made by `python bench/quality.py` (`make bench`) on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"{platform.machine()} with {len(os.sched_getaffinity(0))} CPU cores, commit "
        f"`{tags.get('claims.git_commit', '?')[:10]}`{' (uncommitted changes)' if tags.get('claims.git_dirty') == 'true' else ''}.",
        f"Training data: {len(data.texts)} units in {len(set(data.docs))} articles (digest `{data.digest}`, "
        f"{len(set(data.countries))} countries). Test split: "
        + (f"{len(test.texts)} units in {len(set(test.docs))} articles (digest `{test.digest}`)." if test else "none."),
        "",
        "Each cell is claim_type macro F1 / attribution macro F1 / withdrawal F1, with per-label",
        "thresholds tuned only on data the scored units are not part of (in (a) and (b), the other folds'",
        "out-of-fold predictions; in (c), a grouped inner split of the seeds; in (d), the out-of-fold",
        "predictions of (a)).",
        "",
        "- **(a)** grouped 5-fold cross-validation on the training data (seeds + written training split), folds by article;",
        "- **(b)** leave-one-country-out on the same data (each country's articles held out in turn);",
        "- **(c)** trained on the five seed articles only, scored on the sealed test split;",
        "- **(d)** trained on all training data (the packaged model), scored on the sealed test split.",
        "",
        "The default is chosen on (a), (b) and the behavioural suites only: score = mean of (a)'s mean",
        "headline F1, (b)'s mean headline F1 and the behavioural pass rate. **(c) and (d) choose nothing.**",
        "(d) is what a user should expect on a new article like the test split's; real reporting from",
        "other outlets may differ.",
        "",
        "| family | config | " + " | ".join(t for _, t in EVALUATIONS) + " | behaviour (all) | "
        + " | ".join(f"behaviour ({s})" for s in suites) + " | score | wall time (s) | run id |",
        "|---|---|" + "---|" * (len(EVALUATIONS) + 1 + len(suites)) + "---|---|---|",
    ]
    for o, run in ranked:
        m = run.data.metrics
        lines.append(f"| `{run.data.tags['claims.family']}` | {o.result.config.name} | "
                     + " | ".join(" / ".join(_f(m, f"{p}.{h}") for h in head) for p, _ in EVALUATIONS)
                     + f" | {m.get('behaviour.pass_rate', float('nan')):.1%} | "
                     + " | ".join(f"{m.get(f'behaviour.suite.{s}', float('nan')):.1%}" for s in suites)
                     + f" | {score_of[o.result.run_id]:.3f} | {m['time.total_seconds']:.0f} | `{o.result.run_id[:8]}` |")
    lines += ["", f"All configs together: {total:.0f} s.", ""]
    for prefix, title in (("test", "(d) test split"), ("country", "(b) leave one country out")):
        lines += [f"## Per-label F1, {title}", "",
                  "| label | " + " | ".join(o.result.config.name for o, _ in ranked) + " |",
                  "|---|" + "---|" * len(ranked)]
        for name in space.column_names:
            key = name[: -len(".yes")] if name.endswith(".yes") else name
            lines.append(f"| {name} | " + " | ".join(_f(run.data.metrics, f"{prefix}.{key}.f1") for _, run in ranked) + " |")
        lines.append("")
    lines += ["## Behavioural pass rate per label", "",
              "| label | " + " | ".join(o.result.config.name for o, _ in ranked) + " |", "|---|" + "---|" * len(ranked)]
    labels = sorted(k[len("behaviour.label."):] for k in ranked[0][1].data.metrics if k.startswith("behaviour.label."))
    for name in labels:
        lines.append(f"| {name} | " + " | ".join(f"{run.data.metrics.get('behaviour.label.' + name, float('nan')):.0%}"
                                                for _, run in ranked) + " |")
    if WHAT_EACH_ADDS.exists():
        lines += ["", *WHAT_EACH_ADDS.read_text().splitlines()]
    previous = out.read_text() if out.exists() else ""
    # Sections other benches own (speed, learning curve) are kept as they were.
    blocks = [m.group(0) for m in re.finditer(r"<!-- ([\w-]+):start -->.*?<!-- \1:end -->\n?", previous, flags=re.S)]
    atomic.write_text(out, "\n".join(lines) + "\n" + "".join("\n" + b for b in blocks))
    typer.echo(f"wrote {out} ({total:.0f} s)", err=True)


if __name__ == "__main__":
    sys.exit(typer.run(main))
