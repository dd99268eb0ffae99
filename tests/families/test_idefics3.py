"""idefics3 (Llama decoder under `model.text_model`): the equivalence suite, images as (B, images, 3, H, W)."""

from __future__ import annotations

import torch

from tests.families import image_suite
from tests.tiny_models import prompt_ids, tiny_idefics3


def _sample(vlm, n_images: int, seed: int, before: int) -> dict:
    ids = prompt_ids(before, [vlm.image_tokens] * n_images, 5, seed=seed)[None]
    pixels = vlm.pixel_values(n_images, seed)[None]
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "pixel_values": pixels}


def test_equivalence_suite():
    image_suite.run_all(tiny_idefics3(smolvlm=False), _sample, image_suite.runs, stack_pixels=True)
