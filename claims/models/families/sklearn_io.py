"""scikit-learn parts saved with skops, never pickle.

skops itself trusts only scikit-learn estimators and plain numpy/scipy containers. Anything else a
file asks to construct must be in `ALLOWED` (exact type names this project writes) and recorded
beside the file when it was saved (`<file>.types.json`); any other type is refused before loading,
so a crafted file cannot reach `builtins.exec` or any other callable.

A fitted text vectorizer's vocabulary (a dict of a few hundred thousand n-grams) goes in a plain JSON
sidecar (`<file>.vocab.json`) instead: skops audits a dict entry by entry, which made loading a
TF-IDF model take seconds; JSON is plain data and reads in a fraction of that.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import skops.io as sio

from claims.util import atomic

# Exact types beyond skops' defaults that this project's models contain. Empty today: every part
# we save is a scikit-learn estimator of default-trusted types.
ALLOWED: frozenset[str] = frozenset()


class UntrustedFileError(ValueError):
    """A saved model part asks for a type this project never writes."""


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".types.json")


def _vocab_sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".vocab.json")


def _vectorizers(obj) -> list:
    """Fitted vectorizers inside `obj` (itself, a FeatureUnion's parts, a Pipeline's steps), in order."""
    if hasattr(obj, "vocabulary_"):
        return [obj]
    parts = getattr(obj, "transformer_list", None) or getattr(obj, "steps", None) or []
    return [v for _, part in parts for v in _vectorizers(part)]


def dump(obj, path: Path) -> None:
    path = Path(path)
    vectorizers = _vectorizers(obj)
    vocabularies = [{term: int(i) for term, i in v.vocabulary_.items()} for v in vectorizers]
    if vectorizers:
        obj = copy.deepcopy(obj)
        for v in _vectorizers(obj):
            del v.vocabulary_
            # Terms cut by min_df/max_df: kept by scikit-learn for introspection only.
            if hasattr(v, "stop_words_"):
                del v.stop_words_
    types = sorted(sio.get_untrusted_types(data=sio.dumps(obj)))
    unexpected = [t for t in types if t not in ALLOWED]
    if unexpected:
        raise UntrustedFileError(f"{path}: would save types outside the allow-list {unexpected}")
    sio.dump(obj, path)
    atomic.write_text(_sidecar(path), json.dumps(types))
    if vectorizers:
        atomic.write_text(_vocab_sidecar(path), json.dumps(vocabularies, ensure_ascii=False, separators=(",", ":")))


def _restore_vocabularies(obj, path: Path):
    sidecar = _vocab_sidecar(path)
    if not sidecar.exists():  # packages saved before vocabularies had their own file
        return obj
    try:
        vocabularies = json.loads(sidecar.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UntrustedFileError(f"{sidecar}: not a readable vocabulary file ({e})") from None
    vectorizers = [v for v in _with_parts(obj) if hasattr(v, "fixed_vocabulary_")]
    well_formed = isinstance(vocabularies, list) and all(
        isinstance(vocab, dict) and all(isinstance(i, int) and not isinstance(i, bool) for i in vocab.values())
        for vocab in vocabularies)
    if not well_formed or len(vocabularies) != len(vectorizers):
        raise UntrustedFileError(f"{sidecar}: expected {len(vectorizers)} vocabularies (term -> column), "
                                 "one per vectorizer in the model")
    for v, vocab in zip(vectorizers, vocabularies):
        v.vocabulary_ = vocab
    return obj


def _with_parts(obj) -> list:
    """`obj` and the estimators inside it, depth first, in the order `_vectorizers` walks them."""
    parts = getattr(obj, "transformer_list", None) or getattr(obj, "steps", None) or []
    return [obj] + [x for _, part in parts for x in _with_parts(part)] if parts else [obj]


def load(path: Path):
    path = Path(path)
    try:
        recorded = set(json.loads(_sidecar(path).read_text()))
    except (FileNotFoundError, json.JSONDecodeError, TypeError):
        recorded = set()
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as e:  # skops raises several types for corrupt or truncated files
        raise UntrustedFileError(f"{path}: not a readable skops file ({type(e).__name__}: {e})") from None
    refused = sorted(t for t in untrusted if t not in ALLOWED or t not in recorded)
    if refused:
        raise UntrustedFileError(f"{path}: refusing to load, it asks for types this project never writes: {refused}")
    return _restore_vocabularies(sio.load(path, trusted=sorted(untrusted)), path)
