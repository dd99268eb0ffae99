"""Stage-1 targets of the built-in model: labels read off questions, foreground patches from pixels."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

from fastv.builtin.labels import COLORS, IGNORE, SHAPES, answer_kind, image_labels
from fastv.builtin.pretrain import foreground_patches, patch_targets
from fastv.builtin.text import PROMPT_TEMPLATE, build_processor, build_prompt, build_tokenizer
from fastv.eval.datasets import VQASample, load_easyvqa


def _q(question: str, answer: str, image: str = "img") -> VQASample:
    return VQASample(image=image, question=question, answers=(answer,))


@pytest.mark.parametrize(
    ("question", "answer", "expected"),
    [
        ("what shape is in the image?", "circle", (SHAPES.index("circle"), IGNORE)),
        ("what is the blue shape?", "triangle", (SHAPES.index("triangle"), COLORS.index("blue"))),
        ("what color is the rectangle?", "teal", (SHAPES.index("rectangle"), COLORS.index("teal"))),
        ("is there a red shape?", "yes", (IGNORE, COLORS.index("red"))),
        ("is there a red shape?", "no", (IGNORE, IGNORE)),
        ("does the image not contain a circle?", "no", (SHAPES.index("circle"), IGNORE)),
        ("is no gray shape present?", "no", (IGNORE, COLORS.index("gray"))),
        ("is no gray shape present?", "yes", (IGNORE, IGNORE)),
    ],
)
def test_image_labels_from_one_question(question, answer, expected):
    assert image_labels([_q(question, answer)]) == {"img": expected}


def test_image_labels_agree_with_every_what_question():
    pytest.importorskip("easy_vqa")
    samples = load_easyvqa("train", n=3000, seed=0)
    labels = image_labels(samples)
    checked = 0
    for s in samples:
        shape, color = labels[str(s.image)]
        answer = s.answers[0]
        if answer in SHAPES:
            assert SHAPES[shape] == answer
            checked += 1
        elif answer in COLORS:
            assert COLORS[color] == answer
            checked += 1
    assert checked > 500


def test_answer_kind():
    assert [answer_kind(a) for a in ("circle", "teal", "yes", "no")] == ["shape", "color", "yes/no", "yes/no"]


def test_foreground_patches_find_the_square():
    pixels = torch.full((1, 3, 32, 32), 1.5)
    pixels[:, :, 8:16, 16:24] = -1.0  # exactly patch (row 1, col 2) of a 4x4 grid of 8px patches
    pixels[:, :, 0, 0] = 0.0  # one odd border pixel does not move the median background
    fg = foreground_patches(pixels, 8)
    assert fg.shape == (1, 16)
    assert fg[0].nonzero().flatten().tolist() == [1 * 4 + 2]


def test_patch_targets_background_and_unknown_labels():
    pixels = torch.full((2, 3, 16, 16), 1.0)
    pixels[:, :, :8, :8] = -1.0  # patch 0 is the shape in both images
    labels = torch.tensor([[SHAPES.index("circle"), COLORS.index("red")], [IGNORE, COLORS.index("blue")]])
    t = patch_targets(pixels, labels, 8)
    assert t.shape == (2, 4, 2)
    assert t[0, 0].tolist() == [0, COLORS.index("red")]
    assert t[0, 1:].tolist() == [[len(SHAPES), len(COLORS)]] * 3  # background class
    assert t[1, 0].tolist() == [IGNORE, COLORS.index("blue")]  # unknown shape is not trained
    assert t[1, 3].tolist() == [len(SHAPES), len(COLORS)]


def test_chat_template_renders_the_trained_prompt():
    processor = build_processor(build_tokenizer(["what", "shape"]), 64, 8)
    content = [{"type": "image"}, {"type": "text", "text": " what shape is present? "}]
    rendered = processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
    assert (
        rendered == build_prompt("what shape is present?") == PROMPT_TEMPLATE.format(question="what shape is present?")
    )
