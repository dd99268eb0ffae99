"""Writing Sort-of-CLEVR splits as JSONL + PNG files (the format ``fastv eval --data`` reads)."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from pathlib import Path

from fastv.cache import cache_root
from fastv.sortofclevr.questions import Question, questions_for
from fastv.sortofclevr.scene import Scene, describe, render, sample_scene

VERSION = "v2"  # bump when scenes, questions or answers change: cached copies are then rebuilt
SPLITS = {"train": 10_000, "test": 400}  # scenes; six questions each (test: 2,400 questions)


def scenes(split: str, n_scenes: int, seed: int = 0) -> Iterator[tuple[int, Scene, list[Question]]]:
    """The split's scenes and questions, a pure function of (split, seed): splits never share a scene stream."""
    rng = random.Random(f"sort-of-clevr/{VERSION}/{split}/{seed}")
    for i in range(n_scenes):
        scene = sample_scene(rng)
        yield i, scene, questions_for(scene, rng)


def write_split(out: Path, split: str, n_scenes: int | None = None, seed: int = 0) -> Path:
    """``out/<split>.jsonl`` and ``out/images/<split>-NNNNN.png``; returns the JSONL path."""
    n_scenes = SPLITS[split] if n_scenes is None else n_scenes
    (out / "images").mkdir(parents=True, exist_ok=True)
    path = out / f"{split}.jsonl"
    tmp = path.with_suffix(".jsonl.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for i, scene, questions in scenes(split, n_scenes, seed):
            image = f"images/{split}-{i:05d}.png"
            render(scene).save(out / image)
            for j, q in enumerate(questions):
                record = {
                    "id": f"{split}-{i:05d}-{j}",
                    "image": image,
                    "question": q.text,
                    "answer": q.answer,
                    "type": q.kind,
                    "color": q.color,
                    "scene": describe(scene),
                }
                f.write(json.dumps(record) + "\n")
    os.replace(tmp, path)  # a half-written split is never mistaken for a finished one
    return path


def cache_dir() -> Path:
    return cache_root() / "datasets" / f"sort-of-clevr-{VERSION}"


def ensure_split(split: str = "test") -> Path:
    """The cached split's JSONL, generated on first use (the test split takes a few seconds)."""
    path = cache_dir() / f"{split}.jsonl"
    if not path.is_file():
        write_split(cache_dir(), split)
    return path
