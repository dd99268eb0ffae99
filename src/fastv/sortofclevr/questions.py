"""Sort-of-CLEVR questions: three about one object, three relational (Santoro et al., 2017).

Every answer is a function of the scene description alone, so tests can recompute it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from fastv.sortofclevr.scene import IMAGE_SIZE, Scene, SceneObject


def _find(scene: Scene, color: str) -> SceneObject:
    return next(o for o in scene if o.color == color)


def _others_by_distance(scene: Scene, ref: SceneObject) -> list[SceneObject]:
    return sorted((o for o in scene if o is not ref), key=lambda o: (o.x - ref.x) ** 2 + (o.y - ref.y) ** 2)


@dataclass(frozen=True)
class QuestionType:
    name: str
    relational: bool
    template: str  # with {color}
    answer: Callable[[Scene, SceneObject], str]


QUESTION_TYPES: tuple[QuestionType, ...] = (
    QuestionType("shape", False, "What is the shape of the {color} object?", lambda s, o: o.shape),
    QuestionType(
        "horizontal",
        False,
        "Is the {color} object on the left or on the right?",
        lambda s, o: "left" if o.x < IMAGE_SIZE / 2 else "right",
    ),
    QuestionType(
        "vertical",
        False,
        "Is the {color} object at the top or at the bottom?",
        lambda s, o: "top" if o.y < IMAGE_SIZE / 2 else "bottom",
    ),
    QuestionType(
        "closest",
        True,
        "What is the shape of the object closest to the {color} object?",
        lambda s, o: _others_by_distance(s, o)[0].shape,
    ),
    QuestionType(
        "furthest",
        True,
        "What is the shape of the object furthest from the {color} object?",
        lambda s, o: _others_by_distance(s, o)[-1].shape,
    ),
    QuestionType(
        "count",
        True,
        "How many objects have the same shape as the {color} object?",
        lambda s, o: str(sum(p.shape == o.shape for p in s)),
    ),
)
BY_NAME = {t.name: t for t in QUESTION_TYPES}


@dataclass(frozen=True)
class Question:
    kind: str
    color: str
    text: str
    answer: str


def ask(scene: Scene, kind: str, color: str) -> Question:
    qtype = BY_NAME[kind]
    return Question(kind, color, qtype.template.format(color=color), qtype.answer(scene, _find(scene, color)))


def questions_for(scene: Scene, rng: random.Random, per_type: int = 1) -> list[Question]:
    """``per_type`` questions of every type, each about a randomly chosen (distinct) colour."""
    colors = [o.color for o in scene]
    return [ask(scene, t.name, c) for t in QUESTION_TYPES for c in rng.sample(colors, per_type)]
