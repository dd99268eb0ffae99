"""What each image token should say: the vision tower's per-patch training target.

Every object's patches, taken in raster order, spell its facts one word per token: its colour,
shape, side, half, the shape closest to it, the shape furthest from it and how many objects share
its shape (then again from the colour, if the object has more patches). Background patches say ".".

Why one fact per token, in words the language model already reads: a pretrained LM reads a fact
from a token it knows, but did not learn to pull several facts out of one mixed vector (measured
on issue 14: about 50% accuracy for mixed vectors, 99% for the same facts as text). Why per patch:
each object's facts live only in its own image tokens, so pruning the wrong tokens loses the answer.
Closest, furthest and count get words of their own (" circles", " Circle", " two"), so the LM
tells them from the object's own shape by the word, not by where it sits.
"""

from __future__ import annotations

import numpy as np

from fastv.sortofclevr.questions import QUESTION_TYPES
from fastv.sortofclevr.scene import COLORS, SHAPES, Scene, patch_owners

# fact -> (answer, word) for each of its values; a word is one SmolLM2 token
FACT_WORDS: dict[str, dict[str, str]] = {
    "color": {c: f" {c}" for c in COLORS},
    "shape": {s: f" {s}" for s in SHAPES},
    "horizontal": {"left": " left", "right": " right"},
    "vertical": {"top": " top", "bottom": " bottom"},
    "closest": {s: f" {s}s" for s in SHAPES},
    "furthest": {s: f" {s.capitalize()}" for s in SHAPES},
    "count": dict(zip("123456", (" one", " two", " three", " four", " five", " six"), strict=True)),
}
BACKGROUND_WORD = "."
WORDS: tuple[str, ...] = (*(w for words in FACT_WORDS.values() for w in words.values()), BACKGROUND_WORD)
FACT_OF_WORD: tuple[str, ...] = tuple(
    next((fact for fact, words in FACT_WORDS.items() if w in words.values()), "background") for w in WORDS
)
_ANSWER = {t.name: t.answer for t in QUESTION_TYPES}


def object_words(scene: Scene) -> list[list[int]]:
    """Per object, the index in ``WORDS`` of each fact, in ``FACT_WORDS`` order."""
    rows = []
    for o in scene:
        values = {"color": o.color} | {name: _ANSWER[name](scene, o) for name in list(FACT_WORDS)[1:]}
        rows.append([WORDS.index(FACT_WORDS[name][values[name]]) for name in FACT_WORDS])
    return rows


def patch_words(scene: Scene, patch: int) -> np.ndarray:
    """``(patches,)`` index in ``WORDS`` of the word each image token should carry (row-major patches)."""
    owners = patch_owners(scene, patch)
    facts = object_words(scene)
    out = np.full(len(owners), WORDS.index(BACKGROUND_WORD), dtype=np.int64)
    rank = [0] * len(scene)
    for p, owner in enumerate(owners.tolist()):
        if owner >= 0:
            out[p] = facts[owner][rank[owner] % len(FACT_WORDS)]
            rank[owner] += 1
    return out


def scenes_words(scenes: list[Scene], patch: int) -> np.ndarray:
    """``(scenes, patches)``: ``patch_words`` of each scene, stacked (the stage-1 targets)."""
    return np.stack([patch_words(scene, patch) for scene in scenes])
