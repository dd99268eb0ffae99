"""What the easy-VQA training questions say about each image (its shape and colour), and answer kinds."""

from __future__ import annotations

from collections.abc import Sequence

from fastv.eval.datasets import VQASample

SHAPES = ("circle", "rectangle", "triangle")
COLORS = ("red", "green", "blue", "black", "gray", "teal", "brown", "yellow")
IGNORE = -100


def image_labels(samples: Sequence[VQASample]) -> dict[str, tuple[int, int]]:
    """``image path -> (shape index, colour index)``, IGNORE where no question reveals it.

    Read from answers ("what shape ...? circle") and from affirmed questions ("is there a red shape?
    yes", "does the image not contain a circle? no", "is no circle present? no").
    """
    labels: dict[str, list[int]] = {}
    for s in samples:
        words = s.question.lower().replace("?", " ").split()
        answer = s.answers[0].lower()
        found = labels.setdefault(str(s.image), [IGNORE, IGNORE])
        negated = "not" in words or "no" in words  # "is there not a circle?", "is no circle present?"
        affirmed = words[0] == "what" or (answer == "yes") != negated
        if not affirmed:
            continue
        for w in [*words, answer]:
            if w in SHAPES:
                found[0] = SHAPES.index(w)
            elif w in COLORS:
                found[1] = COLORS.index(w)
    return {path: (sh, co) for path, (sh, co) in labels.items()}


def answer_kind(answer: str) -> str:
    return "shape" if answer in SHAPES else "color" if answer in COLORS else "yes/no"
