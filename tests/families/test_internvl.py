"""InternVL (Qwen2 decoder): the equivalence suite."""

from __future__ import annotations

import torch

from tests.families import image_suite
from tests.tiny_models import prompt_ids, tiny_internvl


def _sample(vlm, n_images: int, seed: int, before: int) -> dict:
    ids = prompt_ids(before, [vlm.image_tokens] * n_images, 5, seed=seed)[None]
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "pixel_values": vlm.pixel_values(n_images, seed)}


def test_equivalence_suite():
    image_suite.run_all(tiny_internvl(), _sample, image_suite.runs)
