"""Sort-of-CLEVR: seeded, answers right (recomputed here from the stored scene), pixels where the scene says."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from PIL import Image

from fastv.eval.datasets import load_dataset
from fastv.sortofclevr import COLORS, IMAGE_SIZE, QUESTION_TYPES, SHAPES, patch_owners, sample_scene, write_split
from fastv.sortofclevr.scene import CELL, MIN_CELLS, MIN_GAP, from_description

_PATTERNS = {
    "shape": r"What is the shape of the (\w+) object\?",
    "horizontal": r"Is the (\w+) object on the left or on the right\?",
    "vertical": r"Is the (\w+) object at the top or at the bottom\?",
    "closest": r"What is the shape of the object closest to the (\w+) object\?",
    "furthest": r"What is the shape of the object furthest from the (\w+) object\?",
    "count": r"How many objects have the same shape as the (\w+) object\?",
}


def _expected(question: str, scene: list[dict]) -> tuple[str, str]:
    """(type, answer) from the question text and the scene records alone (an independent reading)."""
    matches = {kind: re.fullmatch(pattern, question) for kind, pattern in _PATTERNS.items()}
    (kind, m), *others = [(kind, m) for kind, m in matches.items() if m]
    assert not others, question
    ref = next(o for o in scene if o["color"] == m.group(1))
    others = [o for o in scene if o is not ref]
    dist = [math.dist((o["x"], o["y"]), (ref["x"], ref["y"])) for o in others]
    answer = {
        "shape": ref["shape"],
        "horizontal": "left" if ref["x"] * 2 < IMAGE_SIZE else "right",
        "vertical": "top" if ref["y"] * 2 < IMAGE_SIZE else "bottom",
        "closest": others[int(np.argmin(dist))]["shape"],
        "furthest": others[int(np.argmax(dist))]["shape"],
        "count": str(sum(o["shape"] == ref["shape"] for o in scene)),
    }[kind]
    return kind, answer


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    out = tmp_path_factory.mktemp("soc")
    return out, _records(write_split(out, "test", n_scenes=60, seed=0))


def test_answers_recomputed_from_the_scene_description(split):
    _, records = split
    assert len(records) == 60 * len(QUESTION_TYPES)
    for r in records:
        assert _expected(r["question"], r["scene"]) == (r["type"], r["answer"]), r["id"]
    kinds = [r["type"] for r in records[: len(QUESTION_TYPES)]]
    assert kinds == [t.name for t in QUESTION_TYPES]  # every type once per scene


def test_scenes_follow_the_rules(split):
    _, records = split
    for r in records[:: len(QUESTION_TYPES)]:
        scene = r["scene"]
        assert sorted(o["color"] for o in scene) == sorted(COLORS)
        assert all(o["shape"] in SHAPES for o in scene)
        for i, a in enumerate(scene):
            d = sorted(math.dist((a["x"], a["y"]), (b["x"], b["y"])) for j, b in enumerate(scene) if j != i)
            assert d[0] >= MIN_GAP and len(set(d)) == len(d)  # no touching objects, no tied distances
        owners = patch_owners(from_description(scene), CELL)
        assert min((owners == i).sum() for i in range(len(scene))) >= MIN_CELLS  # every fact gets a token


def test_pixels_and_patches_match_the_scene(split):
    out, records = split
    for r in records[:: len(QUESTION_TYPES)][:20]:
        pixels = np.asarray(Image.open(out / r["image"]).convert("RGB"))
        assert pixels.shape == (IMAGE_SIZE, IMAGE_SIZE, 3)
        assert tuple(pixels[0, 0]) == (255, 255, 255)
        scene = from_description(r["scene"])
        owners = patch_owners(scene, 8)
        for i, o in enumerate(scene):
            assert tuple(pixels[o.y, o.x]) == COLORS[o.color]  # the centre is painted in the object's colour
            assert owners[(o.y // 8) * (IMAGE_SIZE // 8) + o.x // 8] == i  # and its patch belongs to it
        assert (owners == -1).sum() > len(owners) // 3  # background stays background


def test_generator_is_deterministic_and_splits_differ(tmp_path, split):
    out, records = split
    again = _records(write_split(tmp_path / "a", "test", n_scenes=60, seed=0))
    assert again == records
    for r in records[:: len(QUESTION_TYPES)][:5]:
        assert (tmp_path / "a" / r["image"]).read_bytes() == (out / r["image"]).read_bytes()
    other_seed = _records(write_split(tmp_path / "b", "test", n_scenes=60, seed=1))
    train = _records(write_split(tmp_path / "c", "train", n_scenes=60, seed=0))
    scenes = {json.dumps(r["scene"]) for r in records}
    assert not scenes & {json.dumps(r["scene"]) for r in other_seed}
    assert not scenes & {json.dumps(r["scene"]) for r in train}


def test_registered_dataset_is_the_fixed_test_split(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTV_CACHE", str(tmp_path))
    samples = load_dataset("sortofclevr")
    assert len(samples) == 2400
    assert {s.kind for s in samples} == {t.name for t in QUESTION_TYPES}
    assert samples[0].load_image().size == (IMAGE_SIZE, IMAGE_SIZE)
    first = load_dataset("sortofclevr", n=50, seed=3)
    assert first == load_dataset("sortofclevr", n=50, seed=3) and len(first) == 50  # cached, seeded subset


def test_sample_scene_places_six_objects():
    import random

    scene = sample_scene(random.Random(5))
    assert [o.color for o in scene] == list(COLORS)
