"""Could a static token embedding replace the default's MiniLM encoder? Quality on (a), and speed.

The default spends most of its prediction time in the sentence encoder (87% of `Predictor.predict`
under cProfile on 3,000 training sentences, 2026-12-03). A static embedding (one vector per
word piece, a unit's embedding the normalised mean of its pieces' vectors) costs a sparse product
instead. Four variants of the default's features, each scored on the same (a) folds with the
default's regression and thresholds from the other folds, as the pipeline does:

- `none`: TF-IDF channels and rule cues only (the default without its embeddings);
- `minilm`: the default (MiniLM unit and previous-unit embeddings, cached);
- `distilled`: every vocabulary piece alone through MiniLM ([CLS] piece [SEP], mean of the output),
  PCA to 256 dimensions, Zipf weights by vocabulary rank (the recipe of model2vec's `distill`, which
  pins transformers < 5.4, older than this project's); since 2026-12-03 the vectors of the shipped
  `minilm-l6-static` encoder (claims.models.static_encoder; the first runs used a randomised PCA);
- `regressed`: piece vectors fitted by ridge regression so that the mean of a unit's pieces
  approximates its MiniLM embedding, on the training fold's units only (no labels are read).

`--speed` times, in one run on the packaged default: the whole prediction, its ONNX encoder alone,
and the static lookup, on the same sentences (median of 3).

    python bench/static_embeddings.py            # (a) of the four variants, about 35 min on 2 cores
    python bench/static_embeddings.py --speed --model models/default
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import typer
from scipy import sparse

from claims.models import encoder as encoders
from claims.models import static_encoder
from claims.models.families.base import build
from claims.models.families.linear_head import fit_head, make_head
from claims.training import loop
from claims.training.config import load_config
from claims.training.evaluation import metrics, splits, thresholds
from claims.util.paths import ROOT
from claims.util.seeding import set_seed
from predict_speed import rate  # the same timing as `make speed`: batches of 256, median of 3

VARIANTS = ("none", "minilm", "distilled", "regressed")


def pieces(tokenizer, texts: list[str]) -> sparse.csr_matrix:
    """Each text's word pieces as a row that averages them."""
    ids = tokenizer(list(texts), add_special_tokens=False, truncation=True, max_length=256)["input_ids"]
    rows = np.repeat(np.arange(len(ids)), [len(i) for i in ids])
    cols = np.concatenate([np.asarray(i, dtype=np.int64) for i in ids]) if ids else np.zeros(0, np.int64)
    bag = sparse.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)), shape=(len(texts), tokenizer.vocab_size))
    counts = np.maximum(np.asarray(bag.sum(1)).ravel(), 1)
    return sparse.diags(1 / counts) @ bag


def _normalised(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm == 0, 1, norm)


def static_block(tokenizer, vectors, texts, contexts, context_weight: float) -> sparse.csr_matrix:
    units = _normalised(np.asarray(pieces(tokenizer, texts) @ vectors))
    previous = _normalised(np.asarray(pieces(tokenizer, contexts) @ vectors))
    previous[[not c.strip() for c in contexts]] = 0
    return sparse.hstack([sparse.csr_matrix(units), sparse.csr_matrix(previous * context_weight)]).tocsr()


def quality(config: Path) -> dict[str, dict[str, float]]:
    from sklearn.linear_model import Ridge

    cfg = load_config(config)
    data = loop.load_data(cfg)
    opts = cfg.model
    folds = list(splits.article_folds(data.docs, cfg.eval.folds, cfg.eval.max_folds))
    tokenizer = encoders.load_tokenizer("minilm-l6")
    distilled = static_encoder.distil("minilm-l6-static")  # what `encoder: minilm-l6-static` ships
    oof = {k: np.full(data.y.shape, np.nan) for k in VARIANTS}
    for name, train, test in folds:
        set_seed(cfg.train.seed)
        pick = lambda ix, xs: [xs[i] for i in ix]  # noqa: E731
        base = build(opts.model_copy(update={"features": ["tfidf", "rules"]}), cfg.train, data.schema)
        base.parts_ = base._parts()
        base.parts_["rules"].prepare()
        b_tr = base._features(pick(train, data.texts), pick(train, data.contexts), pick(train, data.openings), fit=True)
        b_te = base._features(pick(test, data.texts), pick(test, data.contexts), pick(test, data.openings))
        mask = base.canonical_.mask  # the default embeds masked text; the static variants read the same
        emb = build(opts.model_copy(update={"features": ["embeddings"]}), cfg.train, data.schema)
        emb.parts_ = emb._parts()
        e_tr = emb._features(pick(train, data.texts), pick(train, data.contexts), fit=True)
        e_te = emb._features(pick(test, data.texts), pick(test, data.contexts))
        masked = lambda ix, xs: [mask(x) for x in pick(ix, xs)]  # noqa: E731
        train_units = masked(train, data.texts)
        regressed = Ridge(alpha=1e-2, fit_intercept=False).fit(
            pieces(tokenizer, train_units), emb.parts_["embeddings"]._embed(train_units)).coef_.T.astype(np.float32)
        blocks = {"none": (None, None), "minilm": (e_tr, e_te)}
        for key, vectors in (("distilled", distilled), ("regressed", regressed)):
            blocks[key] = tuple(static_block(tokenizer, vectors, masked(ix, data.texts), masked(ix, data.contexts),
                                             opts.context_embeddings) for ix in (train, test))
        for key, (extra_tr, extra_te) in blocks.items():
            x_tr = b_tr if extra_tr is None else sparse.hstack([b_tr, extra_tr]).tocsr()
            x_te = b_te if extra_te is None else sparse.hstack([b_te, extra_te]).tocsr()
            head = fit_head(make_head(opts.C, opts.class_weight, cfg.train.seed), x_tr, data.y[train])
            oof[key][test] = head.predict_proba(x_te)
        print(name, "done", flush=True)
    tests = [test for _, _, test in folds]
    out = {}
    for key, proba in oof.items():
        cuts = thresholds.from_other_folds(data.y, proba, tests, data.space, cfg.eval.default_threshold)
        pred = np.zeros(data.y.shape, dtype=np.int8)
        for test, cut in zip(tests, cuts):
            pred[test] = data.space.decide(proba[test], cut)
        scores = metrics.compute(data.y, pred, proba, data.space)
        out[key] = {k: scores[k] for k in ("claim_type.macro_f1", "attribution.macro_f1", "withdrawal.f1")}
        print(key, {k: round(v, 4) for k, v in out[key].items()}, flush=True)
    return out


def speed(model: Path, n: int = 3000) -> dict[str, float]:
    import random

    from claims.corpus.annotations import read_all
    from claims.predictor.predictor import Predictor
    from claims.util.paths import ANNOTATIONS_DIR

    pool = [r.text for r in read_all(sorted(ANNOTATIONS_DIR.glob("*.jsonl")))[0]]
    texts = random.Random(0).sample(pool, n)
    predictor = Predictor.load(model)
    embedder = predictor.model.parts_["embeddings"]
    tokenizer = encoders.load_tokenizer("minilm-l6")
    vectors = np.random.default_rng(0).standard_normal((tokenizer.vocab_size, 384)).astype(np.float32)

    out = {"package": rate(predictor.predict, texts), "encoder": rate(embedder._embed, texts),
           "static": rate(lambda t: _normalised(np.asarray(pieces(tokenizer, t) @ vectors)), texts)}
    # The package's time without its encoder, plus the static lookup: what the swap would give.
    out["package_with_static"] = 1 / (1 / out["package"] - 1 / out["encoder"] + 1 / out["static"])
    for key, value in out.items():
        print(f"{key}: {value:,.0f} units/s", flush=True)
    return out


def main(config: Path = typer.Option(ROOT / "configs" / "ensemble.yaml"),
         speed_only: bool = typer.Option(False, "--speed", help="Time the packaged default instead."),
         model: Path = typer.Option(ROOT / "models" / "default")) -> None:
    warnings.filterwarnings("ignore", category=FutureWarning)
    if speed_only:
        speed(model)
    else:
        quality(config)


if __name__ == "__main__":
    typer.run(main)
