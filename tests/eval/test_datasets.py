"""Dataset loaders: easy-VQA sampling, JSONL parsing and path resolution, the name registry."""

from __future__ import annotations

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
from PIL import Image

from fastv.eval.datasets import DATASETS, VQASample, load_dataset, load_easyvqa, load_jsonl

easy_vqa = pytest.importorskip("easy_vqa")


def test_easyvqa_test_split_is_complete_and_answers_are_known():
    samples = load_easyvqa("test")
    assert len(samples) == 9673
    assert {a for s in samples for a in s.answers} == set(easy_vqa.get_answers())
    assert all(len(s.answers) == 1 for s in samples)


def test_easyvqa_sample_is_seeded_and_stable():
    a = load_easyvqa("test", n=50, seed=0)
    b = load_easyvqa("test", n=50, seed=0)
    c = load_easyvqa("test", n=50, seed=1)
    assert [s.id for s in a] == [s.id for s in b]
    assert [s.id for s in a] != [s.id for s in c]
    assert len({s.id for s in a}) == 50
    full = {s.id: s for s in load_easyvqa("test")}
    assert all(full[s.id] == s for s in a)  # a subset, not re-labelled


def test_easyvqa_image_loads_as_64px_rgb():
    sample = load_easyvqa("train", n=1, seed=0)[0]
    image = sample.load_image()
    assert image.mode == "RGB" and image.size == (64, 64)


def test_easyvqa_unknown_split():
    with pytest.raises(ValueError, match="split"):
        load_easyvqa("validation")


def _write_jsonl(tmp_path, records):
    (tmp_path / "imgs").mkdir()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(tmp_path / "imgs" / "red.png")
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n")
    return path


def test_jsonl_resolves_images_relative_to_the_file(tmp_path, monkeypatch):
    path = _write_jsonl(
        tmp_path,
        [
            {"image": "imgs/red.png", "question": "what color?", "answer": "red", "id": "q1"},
            {"image": str(tmp_path / "imgs" / "red.png"), "question": "which?", "answer": ["red", "crimson"]},
        ],
    )
    monkeypatch.chdir(tmp_path.parent)  # relative to the file, not to the working directory
    samples = load_jsonl(path)
    assert [s.id for s in samples] == ["q1", "2"]
    assert samples[0].answers == ("red",)
    assert samples[1].answers == ("red", "crimson")
    assert samples[0].load_image().getpixel((0, 0)) == (255, 0, 0)
    assert load_dataset(str(path)) == samples


def test_jsonl_reports_the_bad_line(tmp_path):
    path = _write_jsonl(tmp_path, [{"image": "imgs/red.png", "question": "q", "answer": "a"}, {"image": "x"}])
    with pytest.raises(ValueError, match=r"data.jsonl:2"):
        load_jsonl(path)


def test_jsonl_subsample(tmp_path):
    records = [{"image": "imgs/red.png", "question": f"q{i}", "answer": "a"} for i in range(20)]
    path = _write_jsonl(tmp_path, records)
    sub = load_jsonl(path, n=5, seed=3)
    assert len(sub) == 5
    assert [s.question for s in sub] == [s.question for s in load_jsonl(path, n=5, seed=3)]


def test_registry_and_unknown_name():
    assert "easyvqa" in DATASETS
    assert len(load_dataset("easyvqa", n=7, seed=0)) == 7
    with pytest.raises(ValueError, match="Unknown dataset"):
        load_dataset("no-such-dataset")


def test_in_memory_image_sample():
    img = Image.new("L", (4, 4), 128)
    sample = VQASample(image=img, question="q", answers=("a",))
    assert sample.load_image().mode == "RGB"
