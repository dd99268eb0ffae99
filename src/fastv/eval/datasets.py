"""VQA samples and the loaders that produce them (easy-VQA, JSONL), looked up by name.

A dataset is just a list of :class:`VQASample`; loaders are plain functions registered in
:data:`DATASETS`, so adding a benchmark is adding one function.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

ImageLike = str | Path | Image.Image


@dataclass(frozen=True)
class VQASample:
    """One question about one image; ``answers`` holds every accepted answer."""

    image: ImageLike
    question: str
    answers: tuple[str, ...]
    id: str = ""
    kind: str = ""  # question type, for per-type accuracy (JSONL "type")

    def load_image(self) -> Image.Image:
        """The image as RGB (paths are opened lazily so large datasets stay cheap to list)."""
        if isinstance(self.image, Image.Image):
            return self.image.convert("RGB")
        with Image.open(self.image) as im:
            return im.convert("RGB")


Loader = Callable[..., list[VQASample]]


def _subsample(samples: list[VQASample], n: int | None, seed: int) -> list[VQASample]:
    """A seeded sample of ``n`` (all when ``n`` is None or too large), in a stable order."""
    if n is None or n >= len(samples):
        return samples
    if n < 0:
        raise ValueError(f"n={n} must be >= 0 (or None for the whole dataset).")
    idx = sorted(random.Random(seed).sample(range(len(samples)), n))
    return [samples[i] for i in idx]


def load_easyvqa(split: str = "test", n: int | None = None, seed: int = 0) -> list[VQASample]:
    """easy-VQA (MIT, ``pip install easy-vqa``): one coloured shape per 64x64 image, 13 answers."""
    try:
        import easy_vqa
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("easy-VQA needs the 'easy-vqa' package: pip install 'fastv[data]'") from e
    if split == "train":
        (questions, answers, image_ids), paths = easy_vqa.get_train_questions(), easy_vqa.get_train_image_paths()
    elif split == "test":
        (questions, answers, image_ids), paths = easy_vqa.get_test_questions(), easy_vqa.get_test_image_paths()
    else:
        raise ValueError(f"easy-VQA split {split!r} is unknown; use 'train' or 'test'.")
    samples = [
        VQASample(image=paths[i], question=q, answers=(a,), id=f"{split}-{j}")
        for j, (q, a, i) in enumerate(zip(questions, answers, image_ids, strict=True))
    ]
    return _subsample(samples, n, seed)


def load_jsonl(path: str | Path, n: int | None = None, seed: int = 0) -> list[VQASample]:
    """A JSONL file of ``{"image", "question", "answer"}`` records; images relative to the file's folder.

    ``answer`` may be a string or a list of accepted strings; optional ``id`` and ``type`` are kept.
    """
    path = Path(path)
    root = path.parent
    samples = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                image, question, answer = rec["image"], rec["question"], rec["answer"]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise ValueError(
                    f"{path}:{lineno}: each line must be a JSON object with 'image', 'question' and 'answer' ({e})."
                ) from e
            answers = (answer,) if isinstance(answer, str) else tuple(str(a) for a in answer)
            if not answers:
                raise ValueError(f"{path}:{lineno}: 'answer' is an empty list.")
            image_path = Path(image)
            if not image_path.is_absolute():
                image_path = root / image_path
            samples.append(
                VQASample(image_path, question, answers, id=str(rec.get("id", lineno)), kind=str(rec.get("type", "")))
            )
    return _subsample(samples, n, seed)


def load_sort_of_clevr(split: str = "test", n: int | None = None, seed: int = 0) -> list[VQASample]:
    """Sort-of-CLEVR (generated here, seeded; written to the cache on first use): six objects per image,
    three non-relational and three relational question types, 2,400 test questions."""
    from fastv.sortofclevr import ensure_split

    return load_jsonl(ensure_split(split), n=n, seed=seed)


DATASETS: dict[str, Loader] = {"easyvqa": load_easyvqa, "sortofclevr": load_sort_of_clevr}


def load_dataset(spec: str, n: int | None = None, seed: int = 0) -> list[VQASample]:
    """``spec`` is a registered name (see :data:`DATASETS`) or a path to a ``.jsonl`` file."""
    if spec in DATASETS:
        return DATASETS[spec](n=n, seed=seed)
    if spec.endswith(".jsonl") or Path(spec).is_file():
        return load_jsonl(spec, n=n, seed=seed)
    raise ValueError(f"Unknown dataset {spec!r}: use one of {', '.join(sorted(DATASETS))} or a path to a .jsonl file.")


def answer_vocabulary(samples: Sequence[VQASample]) -> list[str]:
    """Every distinct accepted answer, sorted (handy for closed-vocabulary datasets)."""
    return sorted({a for s in samples for a in s.answers})
