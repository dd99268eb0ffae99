"""Sort-of-CLEVR: a seeded multi-object VQA generator where answers need the right image region."""

from fastv.sortofclevr.files import SPLITS, VERSION, ensure_split, scenes, write_split
from fastv.sortofclevr.questions import QUESTION_TYPES, Question, ask
from fastv.sortofclevr.scene import COLORS, IMAGE_SIZE, SHAPES, SceneObject, patch_owners, render, sample_scene

__all__ = [
    "COLORS",
    "IMAGE_SIZE",
    "QUESTION_TYPES",
    "SHAPES",
    "SPLITS",
    "VERSION",
    "Question",
    "SceneObject",
    "ask",
    "ensure_split",
    "patch_owners",
    "render",
    "sample_scene",
    "scenes",
    "write_split",
]
