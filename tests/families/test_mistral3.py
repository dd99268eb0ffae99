"""Mistral 3 (Pixtral tower, Mistral decoder with a sliding window on every layer): the equivalence suite.

Images of different sizes give different token counts, laid out in rows broken by [IMG_BREAK] text
tokens, so per-image budgets must group an image's rows (read from image_sizes), not contiguous runs.
"""

from __future__ import annotations

import torch

from fastv.selfcheck.prompts import mistral3_prompt
from fastv.selfcheck.reference import language_model
from fastv.selfcheck.tiny import tiny_mistral3
from tests.families import image_suite


def _images(inputs: dict) -> torch.Tensor:
    """(n,) image index of each image token: image i owns the next rows * cols image tokens."""
    image = image_suite.prunable(inputs)
    counts = [(h // 8) * (w // 8) for h, w in inputs["image_sizes"].tolist()]
    owner = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    segments = torch.full(image.shape, -1)
    segments[image] = owner
    return segments


def test_equivalence_suite():
    vlm = tiny_mistral3()
    config = language_model(vlm.model).config
    assert config.sliding_window == 12 and getattr(config, "layer_types", None) is None
    image_suite.run_all(vlm, mistral3_prompt, _images)
