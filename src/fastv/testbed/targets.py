"""Per-patch training targets for the vision tower: what the object under each patch is, and how it
relates to the others. Background patches are labelled only as background.

Why per patch: each object's facts then live in its own image tokens, so pruning the wrong tokens
loses the answer (image-level targets would let every token carry everything).
"""

from __future__ import annotations

import numpy as np

from fastv.sortofclevr.questions import QUESTION_TYPES
from fastv.sortofclevr.scene import COLORS, SHAPES, Scene, patch_owners

IGNORE = -100
# attribute -> its classes; "color" has an extra class for background
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "color": (*COLORS, "background"),
    "shape": SHAPES,
    "horizontal": ("left", "right"),
    "vertical": ("top", "bottom"),
    "closest": SHAPES,
    "furthest": SHAPES,
    "count": ("1", "2", "3", "4", "5", "6"),
}
_ANSWER = {t.name: t.answer for t in QUESTION_TYPES}


def object_facts(scene: Scene) -> np.ndarray:
    """``(objects, attributes)`` class indices: colour, then every question type's answer."""
    rows = []
    for o in scene:
        row = [ATTRIBUTES["color"].index(o.color)]
        row += [ATTRIBUTES[name].index(_ANSWER[name](scene, o)) for name in list(ATTRIBUTES)[1:]]
        rows.append(row)
    return np.array(rows, dtype=np.int64)


def patch_targets(scene: Scene, patch: int) -> np.ndarray:
    """``(patches, attributes)``: the owning object's facts; background: colour "background", rest IGNORE."""
    owners = patch_owners(scene, patch)
    facts = object_facts(scene)
    out = np.full((len(owners), len(ATTRIBUTES)), IGNORE, dtype=np.int64)
    out[:, 0] = len(COLORS)
    has = owners >= 0
    out[has] = facts[owners[has]]
    return out
