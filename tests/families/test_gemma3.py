"""Gemma 3: sliding-window + full layers with per-type rotary and masks, q/k norms, query_pre_attn_scalar
and bidirectional attention inside each image."""

from __future__ import annotations

import pytest
import torch

import fastv
from fastv.families.gemma3.selfcheck import gemma3_prompt, tiny_gemma3
from fastv.selfcheck.prompts import image_runs
from fastv.selfcheck.reference import language_model
from fastv.selfcheck.tiny import IMAGE_TOKEN, left_pad
from tests.families.equivalence import (
    assert_batch_matches_singles,
    assert_full_width_batch_matches_singles,
    assert_ratio_zero_identical,
    assert_remove_restores,
    check_against_reference,
)


@pytest.fixture
def gemma():
    return tiny_gemma3()


def test_tiny_model_has_the_features_under_test(gemma):
    lm = language_model(gemma.model)
    assert [layer.self_attn.sliding_window for layer in lm.layers] == [8, 8, None, 8]
    assert lm.layers[0].self_attn.scaling == 24**-0.5
    assert hasattr(lm.layers[0].self_attn, "q_norm")


def test_ratio_zero_is_identical_to_unpatched_model(gemma):
    assert_ratio_zero_identical(gemma.model, gemma3_prompt(gemma))


@pytest.mark.parametrize(("k", "rank"), [(1, "last_token"), (2, "mean"), (3, "mean"), (3, "last_token")])
def test_prefill_and_decode_match_reference(gemma, k, rank):
    """k=1/2 rank on sliding layers, k=3 on the full layer; pruned layers mix both types."""
    inputs = gemma3_prompt(gemma)
    prunable = inputs["input_ids"][0] == IMAGE_TOKEN
    config = fastv.FastVConfig(k=k, ratio=0.5, rank=rank)
    check_against_reference(gemma.model, inputs, config, prunable, blocks=image_runs(inputs))


def test_without_token_type_ids_everything_is_causal(gemma):
    inputs = gemma3_prompt(gemma, types=False)
    prunable = inputs["input_ids"][0] == IMAGE_TOKEN
    check_against_reference(gemma.model, inputs, fastv.FastVConfig(k=2, ratio=0.5, rank="mean"), prunable)


def test_per_image_budget(gemma):
    inputs = gemma3_prompt(gemma)
    blocks = image_runs(inputs)
    config = fastv.FastVConfig(k=2, ratio=0.5, budget="per_image")
    check_against_reference(gemma.model, inputs, config, blocks >= 0, blocks=blocks, segments=blocks)


def test_padded_batch_matches_single_runs(gemma):
    singles = [gemma3_prompt(gemma, n_images=2, seed=0, before=2), gemma3_prompt(gemma, n_images=3, seed=1, before=6)]
    ids, mask = left_pad([s["input_ids"][0] for s in singles])
    batch = {
        "input_ids": ids,
        "attention_mask": mask,
        "token_type_ids": (ids == IMAGE_TOKEN).long(),
        "pixel_values": torch.cat([s["pixel_values"] for s in singles]),
    }
    assert_batch_matches_singles(gemma.model, singles, batch, fastv.FastVConfig(k=2, ratio=0.5))


def test_a_padded_batch_whose_longest_row_keeps_every_image_token(gemma):
    singles = [gemma3_prompt(gemma, n_images=3, seed=0, before=2), gemma3_prompt(gemma, n_images=1, seed=1, before=60)]
    ids, mask = left_pad([s["input_ids"][0] for s in singles])
    batch = {
        "input_ids": ids,
        "attention_mask": mask,
        "token_type_ids": (ids == IMAGE_TOKEN).long(),
        "pixel_values": torch.cat([s["pixel_values"] for s in singles]),
    }
    assert_full_width_batch_matches_singles(gemma.model, singles, batch)


def test_remove_restores_the_model(gemma):
    assert_remove_restores(gemma.model, gemma3_prompt(gemma), fastv.FastVConfig(k=2, ratio=0.75))


def test_eager_attention_matches_reference():
    vlm = tiny_gemma3(attn_implementation="eager")
    inputs = gemma3_prompt(vlm)
    prunable = inputs["input_ids"][0] == IMAGE_TOKEN
    check_against_reference(vlm.model, inputs, fastv.FastVConfig(k=2, ratio=0.5), prunable, blocks=image_runs(inputs))
