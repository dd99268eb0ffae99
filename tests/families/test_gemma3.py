"""Gemma 3: sliding-window + full layers with per-type rotary and masks, q/k norms, query_pre_attn_scalar
and bidirectional attention inside each image."""

from __future__ import annotations

import pytest
import torch

import fastv
from tests.families.equivalence import (
    assert_batch_matches_singles,
    assert_ratio_zero_identical,
    assert_remove_restores,
    check_against_reference,
)
from tests.reference import language_model
from tests.tiny_models import IMAGE_TOKEN, left_pad, prompt_ids, tiny_gemma3


@pytest.fixture
def gemma():
    return tiny_gemma3()


def _sample(vlm, n_images: int = 4, seed: int = 0, before: int = 3, types: bool = True) -> dict:
    ids = prompt_ids(before, [vlm.image_tokens] * n_images, 5, seed=seed)[None]
    inputs = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "pixel_values": vlm.pixel_values(n_images, seed),
    }
    if types:
        inputs["token_type_ids"] = (ids == IMAGE_TOKEN).long()
    return inputs


def _blocks(inputs: dict) -> torch.Tensor:
    """(n,) image-block ids written out by hand: the i-th image's tokens get i."""
    image = inputs["input_ids"][0] == IMAGE_TOKEN
    starts = image & ~torch.cat([torch.tensor([False]), image[:-1]])
    return torch.where(image, torch.cumsum(starts.long(), 0) - 1, torch.tensor(-1))


def test_tiny_model_has_the_features_under_test(gemma):
    lm = language_model(gemma.model)
    assert [layer.self_attn.sliding_window for layer in lm.layers] == [8, 8, None, 8]
    assert lm.layers[0].self_attn.scaling == 24**-0.5
    assert hasattr(lm.layers[0].self_attn, "q_norm")


def test_ratio_zero_is_identical_to_unpatched_model(gemma):
    assert_ratio_zero_identical(gemma.model, _sample(gemma))


@pytest.mark.parametrize(("k", "rank"), [(1, "last_token"), (2, "mean"), (3, "mean"), (3, "last_token")])
def test_prefill_and_decode_match_reference(gemma, k, rank):
    """k=1/2 rank on sliding layers, k=3 on the full layer; pruned layers mix both types."""
    inputs = _sample(gemma)
    prunable = inputs["input_ids"][0] == IMAGE_TOKEN
    config = fastv.FastVConfig(k=k, ratio=0.5, rank=rank)
    check_against_reference(gemma.model, inputs, config, prunable, blocks=_blocks(inputs))


def test_without_token_type_ids_everything_is_causal(gemma):
    inputs = _sample(gemma, types=False)
    prunable = inputs["input_ids"][0] == IMAGE_TOKEN
    check_against_reference(gemma.model, inputs, fastv.FastVConfig(k=2, ratio=0.5, rank="mean"), prunable)


def test_per_image_budget(gemma):
    inputs = _sample(gemma)
    blocks = _blocks(inputs)
    config = fastv.FastVConfig(k=2, ratio=0.5, budget="per_image")
    check_against_reference(gemma.model, inputs, config, blocks >= 0, blocks=blocks, segments=blocks)


def test_padded_batch_matches_single_runs(gemma):
    singles = [_sample(gemma, n_images=2, seed=0, before=2), _sample(gemma, n_images=3, seed=1, before=6)]
    ids, mask = left_pad([s["input_ids"][0] for s in singles])
    batch = {
        "input_ids": ids,
        "attention_mask": mask,
        "token_type_ids": (ids == IMAGE_TOKEN).long(),
        "pixel_values": torch.cat([s["pixel_values"] for s in singles]),
    }
    assert_batch_matches_singles(gemma.model, singles, batch, fastv.FastVConfig(k=2, ratio=0.5))


def test_remove_restores_the_model(gemma):
    assert_remove_restores(gemma.model, _sample(gemma), fastv.FastVConfig(k=2, ratio=0.75))


def test_eager_attention_matches_reference():
    vlm = tiny_gemma3(attn_implementation="eager")
    inputs = _sample(vlm)
    prunable = inputs["input_ids"][0] == IMAGE_TOKEN
    check_against_reference(vlm.model, inputs, fastv.FastVConfig(k=2, ratio=0.5), prunable, blocks=_blocks(inputs))
