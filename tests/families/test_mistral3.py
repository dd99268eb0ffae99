"""Mistral 3 (Pixtral tower, Mistral decoder with a sliding window on every layer): the equivalence suite.

Images of different sizes give different token counts, laid out in rows broken by [IMG_BREAK] text
tokens, so per-image budgets must group an image's rows (read from image_sizes), not contiguous runs.
"""

from __future__ import annotations

import torch

from tests.families import image_suite
from tests.reference import language_model
from tests.tiny_models import IMAGE_TOKEN, mistral3_image_ids, tiny_mistral3

SIZES = [(16, 32), (32, 16), (16, 16)]


def _sample(vlm, n_images: int, seed: int, before: int) -> dict:
    generator = torch.Generator().manual_seed(seed)
    sizes = [SIZES[(seed + i) % len(SIZES)] for i in range(n_images)]
    ids = torch.randint(3, IMAGE_TOKEN, (before,), generator=generator).tolist()
    for size in sizes:
        ids += mistral3_image_ids(size) + torch.randint(3, IMAGE_TOKEN, (1,), generator=generator).tolist()
    ids += torch.randint(3, IMAGE_TOKEN, (5,), generator=generator).tolist()
    ids = torch.tensor(ids)[None]
    pixels = torch.randn(n_images, 3, 32, 32, generator=generator)
    return {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "pixel_values": pixels,
        "image_sizes": torch.tensor(sizes),
    }


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
    image_suite.run_all(vlm, _sample, _images)
