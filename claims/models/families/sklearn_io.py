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
from sklearn.feature_extraction.text import CountVectorizer as _CountVectorizer

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
    """Text vectorizers inside `obj` (itself, a FeatureUnion's parts, a Pipeline's steps), in order;
    the same walk finds them fitted (at save) and stripped of their vocabulary (at load)."""
    if isinstance(obj, _CountVectorizer):
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
    # The vocabulary first: a crash after it leaves a model part that fails to load, never one that
    # loads without the vocabulary the skops file was stripped of.
    if vectorizers:
        atomic.write_text(_vocab_sidecar(path), json.dumps(vocabularies, ensure_ascii=False, separators=(",", ":")))
    else:
        _vocab_sidecar(path).unlink(missing_ok=True)
    sio.dump(obj, path)
    atomic.write_text(_sidecar(path), json.dumps(types))


def _restore_vocabularies(obj, path: Path):
    vectorizers = _vectorizers(obj)
    stripped = [v for v in vectorizers if not hasattr(v, "vocabulary_")]
    if not stripped:  # nothing to restore (or a package saved before vocabularies had their own file)
        return obj
    sidecar = _vocab_sidecar(path)
    if not sidecar.exists():
        raise UntrustedFileError(f"{sidecar}: missing; {path.name} has {len(stripped)} vectorizer(s) without a vocabulary")
    try:
        vocabularies = json.loads(sidecar.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UntrustedFileError(f"{sidecar}: not a readable vocabulary file ({e})") from None
    if not isinstance(vocabularies, list) or len(vocabularies) != len(stripped):
        raise UntrustedFileError(f"{sidecar}: expected a list of {len(stripped)} vocabularies, one per vectorizer")
    for k, (v, vocab) in enumerate(zip(stripped, vocabularies)):
        columns = len(getattr(v, "idf_", ())) or None
        if not isinstance(vocab, dict) or not all(isinstance(i, int) and not isinstance(i, bool) for i in vocab.values()) \
                or (columns is not None and sorted(vocab.values()) != list(range(columns))):
            raise UntrustedFileError(f"{sidecar}: vocabulary {k} must map each term to a distinct column "
                                     f"0..{(columns or 1) - 1}")
        v.vocabulary_ = vocab
    return obj


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
