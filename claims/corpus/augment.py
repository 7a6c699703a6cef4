"""Swap augmentation: copies of training units with actors and places swapped for others of the same
type, labels kept. It teaches "an armed group claims" rather than "JNIM claims".

Applied inside a training part only (the model wrapper below sees nothing else), never to test data.
"""

from __future__ import annotations

import random

import numpy as np

from claims.corpus.gazetteer import Actor, Gazetteer


def swap(text: str, gazetteer: Gazetteer, rng: random.Random, actors: bool = True, places: bool = True) -> str | None:
    """One variant of `text` with every mention replaced; None when nothing in it can be swapped."""
    hits = gazetteer.find(text)
    out, last, changed = [], 0, False
    for start, end, surface, hit in hits:
        replacement = None
        if isinstance(hit, Actor) and actors:
            others = [a for a in gazetteer.of_type(hit.type) if a.name != hit.name]
            if others:
                replacement = rng.choice(others).aliases[0]
                if surface[:1].isupper() and replacement[:1].islower() and start == 0:
                    replacement = replacement[:1].upper() + replacement[1:]
        elif isinstance(hit, str) and places:
            others = [p for p in gazetteer.places[hit] if p != surface]
            replacement = rng.choice(others) if others else None
        if replacement is not None:
            out += [text[last:start], replacement]
            last, changed = end, True
    if not changed:
        return None
    return "".join(out) + text[last:]


# A copy's group is its article's with this mark: it splits with its article (`article_of`), and a
# family that scores held-out articles can leave the copies out (`is_copy`).
COPY_MARK = "\x1fswapped-copy"


def copy_group(group: str) -> str:
    return f"{group}{COPY_MARK}"


def is_copy(group: str) -> bool:
    return group.endswith(COPY_MARK)


def article_of(group: str) -> str:
    return group[:-len(COPY_MARK)] if is_copy(group) else group


def variants(texts: list[str], gazetteer: Gazetteer, copies: int, seed: int,
             actors: bool = True, places: bool = True) -> tuple[list[str], list[int]]:
    """Up to `copies` swapped variants of each unit that mentions something, and the unit each copies.

    A unit's variants depend only on `seed` and its own text, never on which other units share its
    training part: with one seed, every fold, country split and the final fit see the same copy of a
    unit, so the copy's features (its sentence embedding above all) are computed once and cached, not per split.
    """
    new_texts, rows = [], []
    for i, text in enumerate(texts):
        rng = random.Random(f"{seed}\x00{text}")  # a str seed is hashed with SHA-512: stable across runs
        found = {v for _ in range(copies) if (v := swap(text, gazetteer, rng, actors, places)) and v != text}
        for v in sorted(found):
            new_texts.append(v)
            rows.append(i)
    return new_texts, rows


def augment(texts: list[str], y: np.ndarray, gazetteer: Gazetteer, copies: int, seed: int,
            actors: bool = True, places: bool = True) -> tuple[list[str], np.ndarray]:
    """The originals followed by up to `copies` swapped variants of each unit that mentions something."""
    new_texts, rows = variants(texts, gazetteer, copies, seed, actors, places)
    if not rows:
        return list(texts), y
    return list(texts) + new_texts, np.concatenate([y, y[rows]])


class Augmenting:
    """Wraps a family so that `fit` trains on its data plus swapped copies; everything else delegates."""

    def __init__(self, model, gazetteer: Gazetteer, copies: int, seed: int, actors: bool, places: bool):
        self.model, self.gazetteer = model, gazetteer
        self.copies, self.seed, self.actors, self.places = copies, seed, actors, places
        self.augmented_units = 0

    def fit(self, texts, y, contexts=None, groups=None, openings=None):
        texts, y = list(texts), np.asarray(y)
        new_texts, rows = variants(texts, self.gazetteer, self.copies, self.seed, self.actors, self.places)
        self.augmented_units = len(new_texts)
        if contexts is not None:  # a swapped copy keeps the context of the unit it copies
            contexts = list(contexts) + [contexts[i] for i in rows]
        if openings is not None:  # and the opening of its article
            openings = list(openings) + [openings[i] for i in rows]
        # and stays in its article, marked: a family that splits by article groups on `article_of` (the two
        # are never separated) and leaves copies out of what it scores (`is_copy`)
        if groups is not None:
            groups = list(groups) + [copy_group(groups[i]) for i in rows]
        self.model.fit(texts + new_texts, np.concatenate([y, y[rows]]) if rows else y, contexts, groups, openings)
        return self

    def predict_proba(self, texts, contexts=None, openings=None):
        return self.model.predict_proba(texts, contexts, openings)

    def __getattr__(self, name):
        return getattr(self.model, name)
