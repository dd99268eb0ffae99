"""The equivalence suite for image-only families, parametrised by how a family builds one prompt."""

from __future__ import annotations

from collections.abc import Callable

import torch

import fastv
from fastv.selfcheck.tiny import IMAGE_TOKEN, left_pad
from tests.families.equivalence import (
    assert_batch_matches_singles,
    assert_ratio_zero_identical,
    assert_remove_restores,
    check_against_reference,
)

# sample(vlm, n_images, seed, before) -> unpadded inputs of one prompt
Sample = Callable[..., dict]


def prunable(inputs: dict) -> torch.Tensor:
    return inputs["input_ids"][0] == IMAGE_TOKEN


def run_all(vlm, sample: Sample, segments: Callable[[dict], torch.Tensor], stack_pixels: bool = False) -> dict:
    """Every check of the suite; returns the worst (prefill, decode) max abs diff against the reference."""
    inputs = sample(vlm, 2, 0, 3)
    assert_ratio_zero_identical(vlm.model, inputs)
    worst = [0.0, 0.0]
    for k, rank in [(1, "mean"), (2, "last_token"), (3, "last_token")]:
        diffs = check_against_reference(
            vlm.model, inputs, fastv.FastVConfig(k=k, ratio=0.5, rank=rank), prunable(inputs)
        )
        worst = [max(worst[0], diffs[0]), max(worst[1], diffs[1])]
    config = fastv.FastVConfig(k=2, ratio=0.75, budget="per_image")
    check_against_reference(vlm.model, inputs, config, prunable(inputs), segments=segments(inputs))
    singles = [sample(vlm, 1, 1, 2), sample(vlm, 2, 2, 6)]
    ids, mask = left_pad([s["input_ids"][0] for s in singles])
    batch = {"input_ids": ids, "attention_mask": mask}
    for key in singles[0]:
        if key not in batch:
            parts = [s[key] for s in singles]
            batch[key] = torch.cat(parts, dim=1 if stack_pixels else 0) if not stack_pixels else _pad_stack(parts)
    assert_batch_matches_singles(vlm.model, singles, batch, fastv.FastVConfig(k=2, ratio=0.5))
    assert_remove_restores(vlm.model, inputs, fastv.FastVConfig(k=2, ratio=0.75))
    return {"prefill": worst[0], "decode": worst[1]}


def _pad_stack(parts: list[torch.Tensor]) -> torch.Tensor:
    """Stack per-sample (1, images, ...) tensors into (B, max images, ...), zero-padding missing images."""
    most = max(p.shape[1] for p in parts)
    padded = [torch.cat([p, p.new_zeros(1, most - p.shape[1], *p.shape[2:])], dim=1) for p in parts]
    return torch.cat(padded)
