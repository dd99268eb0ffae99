"""What the easy-VQA questions say about each image, and which answers the question alone predicts."""

from __future__ import annotations

from collections import Counter
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


def yes_no_group(question: str) -> tuple[str, bool]:
    """(asks about a shape or a colour, negated?): within a group, the answer prior is what counts."""
    words = question.lower().replace("?", " ").split()
    return ("shape" if any(w in SHAPES for w in words) else "color", "not" in words or "no" in words)


def balance_weights(samples: Sequence[VQASample]) -> list[float]:
    """Per-sample loss weights making yes and no equally heavy within each :func:`yes_no_group`.

    Why: "is there a red shape?" is "no" 7 times in 8, so the question alone scores 84% on yes/no
    questions and the tiny model settles there instead of looking. Balancing removes that shortcut.
    Weights average 1 over the yes/no questions; other questions weigh 1.
    """
    keys = [
        (yes_no_group(s.question), s.answers[0]) if answer_kind(s.answers[0]) == "yes/no" else None for s in samples
    ]
    count = Counter(keys)
    groups = Counter(k[0] for k in keys if k is not None)
    raw = [1.0 if k is None else groups[k[0]] / (2 * count[k]) for k in keys]
    yes_no = [w for w, k in zip(raw, keys, strict=True) if k is not None]
    scale = len(yes_no) / sum(yes_no) if yes_no else 1.0
    return [w if k is None else w * scale for w, k in zip(raw, keys, strict=True)]
