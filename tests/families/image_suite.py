"""The equivalence suite for image-only families, parametrised by how a family builds one prompt."""

from __future__ import annotations

from collections.abc import Callable

import torch

import fastv
from fastv.selfcheck.tiny import IMAGE_TOKEN, left_pad
from tests.families.equivalence import (
    assert_batch_matches_singles,
    assert_full_width_batch_matches_singles,
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
    assert_batch_matches_singles(vlm.model, singles, _batch(singles, stack_pixels), fastv.FastVConfig(k=2, ratio=0.5))
    singles = full_width_singles(vlm, sample)
    assert_full_width_batch_matches_singles(vlm.model, singles, _batch(singles, stack_pixels))
    assert_remove_restores(vlm.model, inputs, fastv.FastVConfig(k=2, ratio=0.75))
    return {"prefill": worst[0], "decode": worst[1]}


def full_width_singles(vlm, sample: Sample) -> list[dict]:
    """Two images in a short prompt, one image in a longer one (text before it): with keep = one image's
    tokens only the short row is pruned, and the pruned batch is exactly as wide as the full one."""
    short = sample(vlm, 2, 4, 2)
    extra = short["input_ids"].shape[1] - sample(vlm, 1, 3, 2)["input_ids"].shape[1]
    return [short, sample(vlm, 1, 3, 2 + extra + 3)]


def _batch(singles: list[dict], stack_pixels: bool) -> dict:
    """Left-padded ids and mask; the other inputs concatenated per sample (or stacked and zero-padded)."""
    ids, mask = left_pad([s["input_ids"][0] for s in singles])
    batch = {"input_ids": ids, "attention_mask": mask}
    for key in singles[0]:
        if key not in batch:
            parts = [s[key] for s in singles]
            batch[key] = _pad_stack(parts) if stack_pixels else torch.cat(parts)
    return batch


def _pad_stack(parts: list[torch.Tensor]) -> torch.Tensor:
    """Stack per-sample (1, images, ...) tensors into (B, max images, ...), zero-padding missing images."""
    most = max(p.shape[1] for p in parts)
    padded = [torch.cat([p, p.new_zeros(1, most - p.shape[1], *p.shape[2:])], dim=1) for p in parts]
    return torch.cat(padded)
