"""Simulated annotation rounds: does choosing articles by model uncertainty (alone, or spread out by
content) beat choosing them at random?

Start from the seed articles; the pool is the written training articles (their labels stand in for
the annotator). Each round adds whole articles (annotators read a unit with its predecessor), in the
strategy's order, until at least `--round-units` new units are in, exactly as `claims suggest
--budget` takes them; then the config is retrained on the current set and scored on the sealed test
split as bench/learning_curve.py does: thresholds from a grouped inner split of the current training
set, never from the test split, which is only scored and chooses nothing.

- `uncertainty`: the pool's articles ranked with the model trained on the current set and its inner
  thresholds, by the scoring `claims suggest --strategy uncertainty` uses
  (`claims.predictor.suggest`: unit confidence = smallest margin to a threshold, article
  uncertainty = mean of 1 - confidence, most uncertain first). Deterministic: one run.
- `diverse`: as `claims suggest --strategy diverse`: the same article uncertainties and each pool
  article's text (its units joined with a space) go to `suggest.rank(..., "diverse", texts=...)`,
  which takes the most uncertain article first and then, greedily, the one with the largest
  uncertainty x TF-IDF cosine distance to the nearest article already taken. As in `claims suggest`,
  "already taken" means taken in this ranking, i.e. this round's picks: `suggest.diverse_order` has
  no way to start from the articles already in the training set (seeds and earlier rounds), so a
  round may pick an article close to one annotated in an earlier round. Deterministic: one run.
- `random`: a seeded shuffle of the pool (`suggest.rank(..., "random", seed)`), `--repeats` seeds.

A training set seen before (the seeds alone, the whole pool) is scored once and reused.
With the defaults (tfidf_linear, 200-unit rounds, 3 random repeats: about 12 rounds, some 57 training sets of
three fits each) it took 6-7 minutes on 2 shared CPU cores (allow up to 15 under load); for a slower family, enlarge
`--round-units` or lower `--repeats`.

    python bench/annotation_curve.py [--config configs/tfidf_linear.yaml] [--round-units 200] [--repeats 3] [--max-units N]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import typer  # noqa: E402

from claims.predictor import suggest  # noqa: E402
from claims.training import loop  # noqa: E402
from claims.training.config import load_config  # noqa: E402
from claims.training.evaluation import metrics, thresholds  # noqa: E402
from claims.training.evaluation.metrics import headline_names  # noqa: E402
from claims.util.paths import ROOT  # noqa: E402
from claims.util.seeding import set_seed  # noqa: E402
from learning_curve import _model  # noqa: E402
from sections import write_section  # noqa: E402

START, END = "<!-- annotation-curve:start -->", "<!-- annotation-curve:end -->"
RANDOM_SEED0 = 2000  # random repeat r shuffles the pool with seed RANDOM_SEED0 + r
RANKED = ("uncertainty", "diverse")  # the strategies that rank the pool with the current model, one run each


class Simulation:
    """The data, the test split and the scores of every training set fitted so far (keyed by its articles)."""

    def __init__(self, config: Path):
        self.cfg = load_config(config)
        self.data = loop.load_data(self.cfg)
        self.test = loop.load_test_split(self.cfg, self.data.docs)
        if self.test is None:
            raise SystemExit("no test split: nothing to score")
        self.space = self.data.space
        self.heads = headline_names(self.space)
        docs, splits = np.asarray(self.data.docs), np.asarray(self.data.splits)
        self.seeds = sorted(set(docs[splits == "seed"].tolist()))
        self.pool = sorted(set(docs[splits == "train"].tolist()))  # input order of `claims suggest articles/*.txt`
        self.units = {d: np.flatnonzero(docs == d) for d in self.seeds + self.pool}  # unit indices, in article order
        # The article's text as `claims suggest` gives it to the diverse ranking: its units joined with a space.
        self.article_text = {d: " ".join(self.data.texts[i] for i in self.units[d]) for d in self.pool}
        self.cache: dict[frozenset, dict] = {}

    def fit(self, docs: list[str], need_model: bool) -> tuple[dict, object, np.ndarray]:
        """Train on `docs` and score on the test split; (scores, model, thresholds). Scores are cached."""
        key = frozenset(docs)
        if not need_model and key in self.cache:
            return self.cache[key], None, None
        idx = np.sort(np.concatenate([self.units[d] for d in docs]))
        sub = self.data.subset(idx)
        set_seed(self.cfg.train.seed)
        make = lambda: _model(self.cfg, self.data)  # noqa: E731
        thr = thresholds.inner_thresholds(make, sub.texts, sub.y, np.asarray(sub.docs), self.space,
                                          self.cfg.eval.inner_folds, self.cfg.eval.default_threshold, sub.contexts,
                                          sub.openings)
        model = make().fit(sub.texts, sub.y, sub.contexts, sub.docs, sub.openings)
        proba = model.predict_proba(self.test.texts, self.test.contexts, self.test.openings)
        m = metrics.compute(self.test.y, self.space.decide(proba, thr), proba, self.space)
        scores = {h: float(m[h]) for h in self.heads}
        scores["mean"] = float(np.mean([scores[h] for h in self.heads]))
        self.cache[key] = scores
        return scores, model, thr

    def uncertainties(self, model, thr: np.ndarray, pool: list[str]) -> list[float]:
        """Each pool article's uncertainty as `claims suggest` computes it (suggest.predict_articles):
        every unit predicted with the previous unit of its article as context and its article's opening, confidence rounded to 5
        places, the mean of 1 - confidence over its non-empty units."""
        idx = np.concatenate([self.units[d] for d in pool])
        proba = model.predict_proba([self.data.texts[i] for i in idx], [self.data.contexts[i] for i in idx],
                                    [self.data.openings[i] for i in idx])
        return suggest.article_uncertainties(suggest.unit_scores(proba, thr, self.space),
                                             [len(self.units[d]) for d in pool],
                                             [not self.data.texts[i].strip() for i in idx])

    def run(self, strategy: str, seed: int, round_units: int, max_units: int | None) -> list[dict]:
        """Rounds from the seeds until the pool is empty or `max_units` units were added."""
        current, pool = list(self.seeds), list(self.pool)
        order0 = [pool[i] for i in suggest.rank([0.0] * len(pool), "random", seed)] if strategy == "random" else None
        rows, added = [], 0
        while True:
            scores, model, thr = self.fit(current, need_model=strategy in RANKED and bool(pool))
            rows.append({"round": len(rows), "articles": len(current), "added": added,
                         "units": int(sum(len(self.units[d]) for d in current)), **scores})
            print(strategy, seed, rows[-1], file=sys.stderr, flush=True)
            if not pool or (max_units is not None and added >= max_units):
                return rows
            if strategy == "uncertainty":
                ranked = [pool[i] for i in suggest.rank(self.uncertainties(model, thr, pool), "uncertainty")]
            elif strategy == "diverse":
                ranked = [pool[i] for i in suggest.rank(self.uncertainties(model, thr, pool), "diverse",
                                                        texts=[self.article_text[d] for d in pool])]
            else:
                ranked = [d for d in order0 if d in set(pool)]
            budget = round_units if max_units is None else min(round_units, max_units - added)
            chosen = [ranked[i] for i in suggest.take_budget(range(len(ranked)), [len(self.units[d]) for d in ranked], budget)]
            current += chosen
            pool = [d for d in pool if d not in set(chosen)]
            added += int(sum(len(self.units[d]) for d in chosen))


def _auc(rows: list[dict]) -> float:
    """Mean score over the curve: trapezoid area under mean-score-vs-units, divided by its unit span."""
    x = np.array([r["units"] for r in rows], float)
    y = np.array([r["mean"] for r in rows])
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2) / (x[-1] - x[0])) if len(x) > 1 else float(y[0])


def _units_to_reach(rows: list[dict], target: float) -> int | None:
    return next((r["units"] for r in rows if r["mean"] >= target), None)


def _random_at(rnd: list[list[dict]], x: np.ndarray, key: str = "mean") -> np.ndarray:
    """Each random repeat's `key` at training sizes `x` (linear between its rounds): repeats x points."""
    return np.array([np.interp(x, [r["units"] for r in rows], [r[key] for r in rows]) for rows in rnd])


def _fmt(v: np.ndarray) -> str:
    return f"{v.mean():.3f}" + (f" ({v.min():.3f}-{v.max():.3f})" if len(v) > 1 else "")


def table(ranked: dict[str, list[dict]], rnd: list[list[dict]], heads: list[str]) -> list[str]:
    """One row per round, measured points; a run whose pool is already empty keeps its last row."""
    at = lambda rows, k: rows[min(k, len(rows) - 1)]  # noqa: E731
    short = " / ".join(h.split(".")[0] for h in heads)
    lines = ["| round | " + " | ".join(f"{n}: units | {n}: mean | {n}: {short}" for n in ranked)
             + f" | random: units (mean) | random: mean (min-max of {len(rnd)}) | random: {short} (means) |",
             "|---|" + "---|---|---|" * len(ranked) + "---|---|---|"]
    for k in range(max(*(len(r) for r in ranked.values()), *(len(r) for r in rnd))):
        rs = [at(r, k) for r in rnd]
        cells = [f"{u['units']} | {u['mean']:.3f} | " + " / ".join(f"{u[h]:.3f}" for h in heads)
                 for u in (at(rows, k) for rows in ranked.values())]
        lines.append(f"| {k} | " + " | ".join(cells)
                     + f" | {round(np.mean([r['units'] for r in rs]))} | {_fmt(np.array([r['mean'] for r in rs]))} | "
                     + " / ".join(f"{np.mean([r[h] for r in rs]):.3f}" for h in heads) + " |")
    return lines


def _inner(rows: list[dict], exhausted: bool) -> list[dict]:
    """The rounds that differ between strategies: not the seeds, nor the whole pool (the same set for all)."""
    return rows[1:-1] if exhausted else rows[1:]


# Hypotheses, not measurements, for each outcome against random (none where it is ahead throughout).
REASONS = {
    ("uncertainty", "early"): (
        "Likely reason: it first takes the articles the seed-trained model is unsure of (claim kinds and withdrawals "
        "the 5 seeds barely show), which pays while the model is weak; once those are in, what is left of the pool "
        "is what the model was already sure of, so its later rounds add less than a random draw of the same size."),
    ("uncertainty", "below"): (
        "Likely reason: the most uncertain articles are the atypical ones, so a round spends its budget on a narrow "
        "slice, while random rounds cover the test split's mix of countries and claim types sooner."),
    ("uncertainty", "within"): (
        "Likely reason: an article's uncertainty is the mean over about 25 sentences, so the article ranking differs "
        "little from a random one, and the pool is small enough that both reach the same data soon."),
    ("diverse", "early"): (
        "Likely reason: like uncertainty it starts from what the seed-trained model is unsure of, and its spreading "
        "works only within a round, so it too is left with the articles the model was already sure of later on."),
    ("diverse", "below"): (
        "Possible reason: weighting by distance within a round favours outlying articles (unusual outlets or "
        "stories), which resemble the test split less than a random draw does."),
    ("diverse", "within"): (
        "Possible reason: the distance weighting gives up some of the articles the model is least sure of (those "
        "that give uncertainty any early lead it has) for spread in content, and that spread counts only within a "
        "round, not against what is already annotated, so it buys little that a random draw does not."),
}


def _against_random(name: str, rows: list[dict], rnd: list[list[dict]], exhausted: bool) -> tuple[str, str]:
    """(the per-round differences from the random mean at the same training size, the bold verdict)."""
    auc, auc_r = _auc(rows), np.array([_auc(r) for r in rnd])
    inner = _inner(rows, exhausted)
    x = np.array([r["units"] for r in inner], float)
    diff = np.array([r["mean"] for r in inner]) - _random_at(rnd, x).mean(axis=0)
    lead = int(np.argmin(diff > 0)) if (diff <= 0).any() else len(diff)  # rounds ahead from the first on
    where = "between the seeds and the whole pool" if exhausted else "after the seeds"
    rounds = f"{name} {', '.join(f'{d:+.3f}' for d in diff)} in its {len(diff)} rounds {where}"
    title = name.capitalize()
    if auc > auc_r.max() and lead == len(diff):
        text = (f"**{title} is ahead of random** at every training size {where} (by {diff.min():.3f} to "
                f"{diff.max():.3f}), and its area is above every random repeat's.")
    elif auc > auc_r.max() and lead:
        text = (f"**{title} is ahead of random, but only early and by little**: its area is {auc - auc_r.max():.3f} "
                f"above the best random repeat's; it leads in its first {lead} rounds "
                f"(up to {int(x[lead - 1])} units, by at most {diff[:lead].max():.3f}), and from there on leads in "
                f"{int((diff[lead:] > 0).sum())} of {len(diff) - lead}. " + REASONS[name, "early"])
    elif auc > auc_r.max():
        text = (f"**{title} is ahead of random on area** ({auc - auc_r.max():.3f} above the best random "
                f"repeat's), **but not round by round** (it leads in "
                f"{int((diff > 0).sum())} of {len(diff)} rounds), so the edge is within the noise of single rounds.")
    elif auc < auc_r.min():
        text = (f"**{title} is not ahead of random**: its area lies below every random repeat's (it leads in "
                f"{int((diff > 0).sum())} of {len(diff)} rounds). " + REASONS[name, "below"])
    else:
        text = (f"**{title} is not clearly ahead of random**: its area lies within the spread of the random repeats "
                f"(it leads in {int((diff > 0).sum())} of {len(diff)} rounds). " + REASONS[name, "within"])
    return rounds, text


def _head_to_head(unc: list[dict], div: list[dict], rnd: list[list[dict]], exhausted: bool) -> str:
    """Diverse against uncertainty: area, and round by round at the same training size (uncertainty's curve
    read at diverse's sizes, linear between its rounds); the random repeats' spread of areas is the yardstick."""
    auc_u, auc_d = _auc(unc), _auc(div)
    spread = float(np.ptp([_auc(r) for r in rnd]))
    inner = _inner(div, exhausted)
    x = np.array([r["units"] for r in inner], float)
    diff = np.array([r["mean"] for r in inner]) - np.interp(x, [r["units"] for r in unc], [r["mean"] for r in unc])
    ahead, n = int((diff > 0).sum()), len(diff)
    head = (f"Diverse against uncertainty at the same training size: {', '.join(f'{d:+.3f}' for d in diff)} "
            f"(diverse ahead in {ahead} of {n} rounds); area {auc_d - auc_u:+.3f}")
    if abs(auc_d - auc_u) <= spread:
        lower, higher = ("diverse", "uncertainty") if auc_d < auc_u else ("uncertainty", "diverse")
        return (head + f", within the {spread:.3f} by which the random repeats' areas differ from one another "
                f"merely by their seed. **Diverse and uncertainty cannot be told apart here**: {lower} is "
                f"{abs(auc_d - auc_u):.3f} lower on area, less than a change of random seed moves it, and these are "
                f"single runs.")
    better, worse = ("Diverse", "uncertainty") if auc_d > auc_u else ("Uncertainty", "diverse")
    steady = ahead == n if auc_d > auc_u else ahead == 0
    return (head + f", more than the {spread:.3f} by which the random repeats' areas differ by seed alone. "
            f"**{better} is ahead of {worse}**" + (" at every training size." if steady else
            f" on area, though not in every round ({ahead if auc_d > auc_u else n - ahead} of {n})."))


def verdict(unc: list[dict], div: list[dict], rnd: list[list[dict]], pool_units: int) -> str:
    """How each of uncertainty and diverse compares with random and with each other, from the numbers: area
    under the curve, round by round at the same training size, and the units each needs to reach 98% of the
    whole-pool score."""
    auc_r = np.array([_auc(r) for r in rnd])
    exhausted = all(rows[-1]["added"] == pool_units for rows in [unc, div, *rnd])
    (rounds_u, text_u), (rounds_d, text_d) = (_against_random(n, rows, rnd, exhausted)
                                              for n, rows in (("uncertainty", unc), ("diverse", div)))
    text = (f"Mean score over the curve (area under mean-vs-units over the unit span): uncertainty {_auc(unc):.3f}, "
            f"diverse {_auc(div):.3f}, random {_fmt(auc_r)}. Against the random mean at the same training size: "
            f"{rounds_u}; {rounds_d}. ")
    if exhausted:
        target = 0.98 * unc[-1]["mean"]
        text += (f"To reach 98% of the whole-pool score ({target:.3f}) uncertainty needs {_units_to_reach(unc, target)} "
                 f"training units, diverse {_units_to_reach(div, target)}, random "
                 f"{', '.join(str(_units_to_reach(r, target)) for r in rnd)} (per seed). ")
    text += f"{text_u} {text_d} {_head_to_head(unc, div, rnd, exhausted)}"
    return text


def plot_curves(ranked: dict[str, list[dict]], rnd: list[list[dict]], path: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    style = {"uncertainty": ("o-", "tab:red"), "diverse": ("s-", "tab:green")}
    for name, rows in ranked.items():
        marker, colour = style[name]
        ax.plot([r["units"] for r in rows], [r["mean"] for r in rows], marker, color=colour, ms=4, label=name)
    xs = np.unique(np.concatenate([[r["units"] for r in rows] for rows in rnd])).astype(float)
    ys = _random_at(rnd, xs)
    ax.plot(xs, ys.mean(axis=0), "-", color="tab:blue", label=f"random (mean of {len(rnd)} seeds)")
    ax.fill_between(xs, ys.min(axis=0), ys.max(axis=0), color="tab:blue", alpha=0.2, label="random (min-max)")
    ax.set_xlabel("annotated units in training (seeds + chosen articles)")
    ax.set_ylabel("test split: mean of claim_type macro F1,\nattribution macro F1 and withdrawal F1")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(config: Path = typer.Option(ROOT / "configs" / "tfidf_linear.yaml"),
         round_units: int = typer.Option(200, min=1, help="Whole articles are added until at least this many new units are in."),
         repeats: int = typer.Option(3, min=1, help="Random orders (seeds) to average."),
         max_units: int | None = typer.Option(None, min=1, help="Stop once this many pool units were added (default: whole pool)."),
         out: Path = typer.Option(ROOT / "bench" / "RESULTS.md"),
         plot: Path = typer.Option(ROOT / "bench" / "annotation_curve.png")) -> None:
    t0 = time.perf_counter()
    sim = Simulation(config)
    ranked = {name: sim.run(name, 0, round_units, max_units) for name in RANKED}
    unc, div = ranked["uncertainty"], ranked["diverse"]
    rnd = [sim.run("random", RANDOM_SEED0 + r, round_units, max_units) for r in range(repeats)]
    seconds = time.perf_counter() - t0
    family, pool_units = sim.cfg.model.name, int(sum(len(sim.units[d]) for d in sim.pool))
    lines = table(ranked, rnd, sim.heads)
    text = verdict(unc, div, rnd, pool_units)
    plot_curves(ranked, rnd, plot, f"Simulated annotation rounds: {family} (config {sim.cfg.name})")
    print("\n".join(lines))

    default = Path(config).resolve() == (ROOT / "configs" / "tfidf_linear.yaml").resolve()
    cmd = ("python bench/annotation_curve.py" + ("" if default else f" --config {config}")
           + ("" if round_units == 200 else f" --round-units {round_units}") + ("" if repeats == 3 else f" --repeats {repeats}")
           + ("" if max_units is None else f" --max-units {max_units}"))
    section = [START, "## Simulated annotation rounds: uncertainty and diverse against random", "",
               f"Start: the {len(sim.seeds)} seed articles ({unc[0]['units']} units). Pool: the {len(sim.pool)} written "
               f"training articles ({pool_units} units), their annotations standing in for the annotator. Each round adds "
               f"whole articles in the strategy's order until at least {round_units} new units are in (as `claims suggest "
               f"--budget {round_units}`), " + ("until the pool is empty" if max_units is None else f"until {max_units} units were added")
               + f"; after each round `{family}` (config `{sim.cfg.name}`) is retrained and scored on the sealed test split "
               f"({len(sim.test.texts)} units) with thresholds from a grouped inner split of the current training set (as "
               f"the learning curve above; (d) tunes them on 5-fold out-of-fold predictions instead, so its whole-data "
               f"figures differ slightly); the test split chooses nothing. `uncertainty` ranks the remaining pool with the "
               f"current model and the scoring of `claims suggest --strategy uncertainty` (one deterministic run); "
               f"`diverse` ranks it as `claims suggest --strategy diverse` does: the same uncertainties, weighted by "
               f"TF-IDF cosine distance to the nearest article already taken (one deterministic run; as in `claims "
               f"suggest`, the distances cover only the articles taken in that round's ranking, not the training set "
               f"so far, which `suggest.diverse_order` cannot be given); `random` takes a seeded shuffle of the pool ({repeats} seeds: mean, with min-max). Made by `{cmd}` in "
               f"{seconds / 60:.1f} minutes on 2 shared CPU cores.", "",
               "Per round: training units, the mean of the three test figures, and claim_type macro F1 / attribution "
               "macro F1 / withdrawal F1. An order can need one round more or fewer to empty the pool; a run that "
               "has emptied it keeps its whole-pool row. Uncertainty and diverse are one run each, so a single "
               "round's figure carries about the noise that the random min-max shows.", "", *lines, "",
               f"![Mean test score against annotated units: uncertainty, diverse and random]({plot.name})", "",
               text, END]
    write_section(out, START, END, "\n".join(section))
    print(text)
    print(f"wall time {seconds:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    typer.run(main)
