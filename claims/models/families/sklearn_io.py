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
import sys
from pathlib import Path

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
    from sklearn.feature_extraction.text import CountVectorizer

    if isinstance(obj, CountVectorizer):
        return [obj]
    parts = getattr(obj, "transformer_list", None) or getattr(obj, "steps", None) or []
    return [v for _, part in parts for v in _vectorizers(part)]


class _NoTorch:
    """A finder that refuses `torch` and its submodules (see `_skops`)."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"{name} is not imported while skops lists its trusted types", name=name)
        return None


def _skops():
    """skops.io, imported without torch.

    skops lists the estimators it trusts by importing every scikit-learn module, and one of them
    (`sklearn.externals.array_api_compat.torch`) imports torch: over a second of a linear package's
    cold start, for a library no scikit-learn part of ours uses. While skops is imported, a finder
    refuses torch (`pkgutil.walk_packages` skips a package that fails to import, and that package
    holds no estimator); it is removed at once, so torch imports normally afterwards. Models are loaded
    before a server starts its threads, so no other thread imports torch in that window. Should a
    future scikit-learn need torch to list its estimators, skops is imported again without the finder.
    """
    if "skops.io" in sys.modules or "torch" in sys.modules:
        import skops.io

        return skops.io
    sys.meta_path.insert(0, _NoTorch)
    try:
        import skops.io
    except ImportError:
        for name in [m for m in sys.modules if m == "skops" or m.startswith("skops.")]:
            del sys.modules[name]
        sys.meta_path.remove(_NoTorch)
        import skops.io
    finally:
        if _NoTorch in sys.meta_path:
            sys.meta_path.remove(_NoTorch)
    return skops.io


def dump(obj, path: Path) -> None:
    sio = _skops()
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
    # Imported here, not at the top: importing skops costs seconds (it imports every scikit-learn
    # module), which a package without scikit-learn parts must not pay.
    sio = _skops()

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
