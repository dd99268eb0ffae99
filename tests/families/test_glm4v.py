"""GLM-4.1V / 4.5V (MoE) / 4.6V: partial M-RoPE (half of each head rotated), q/k/v biases, video frames
written with the image token id (one run per frame): the equivalence suite on each variant."""

from __future__ import annotations

import pytest
import torch

import fastv
from fastv.families.glm4v.selfcheck import glm4v_prompt, tiny_glm4v
from fastv.selfcheck.prompts import grid_batch, image_runs, qwen_positions
from fastv.selfcheck.reference import language_model
from fastv.selfcheck.tiny import IMAGE_TOKEN
from tests.families.equivalence import (
    assert_batch_matches_singles,
    assert_full_width_batch_matches_singles,
    assert_ratio_zero_identical,
    assert_remove_restores,
    check_against_reference,
)

PROMPTS = {"image": {"image_grid": (1, 4, 6)}, "video": {"image_grid": None, "video_grid": (4, 4, 4)}}


@pytest.fixture(scope="module", params=["glm4v", "glm4v_moe", "glm46v"])
def glm(request):
    return tiny_glm4v(variant=request.param)


def _prunable(inputs: dict) -> torch.Tensor:
    return inputs["input_ids"][0] == IMAGE_TOKEN


def test_tiny_model_rotates_part_of_each_head(glm):
    config = language_model(glm.model).config
    assert config.rope_parameters["partial_rotary_factor"] == 0.5
    assert language_model(glm.model).layers[0].self_attn.k_proj.bias is not None


@pytest.mark.parametrize("prompt", sorted(PROMPTS))
def test_ratio_zero_is_identical_to_unpatched_model(glm, prompt):
    assert_ratio_zero_identical(glm.model, glm4v_prompt(glm, **PROMPTS[prompt]))


@pytest.mark.parametrize("prompt", sorted(PROMPTS))
@pytest.mark.parametrize(("k", "rank"), [(1, "mean"), (2, "last_token"), (2, "random"), (3, "last_token")])
def test_prefill_and_decode_match_reference(glm, prompt, k, rank):
    inputs = glm4v_prompt(glm, **PROMPTS[prompt])
    config = fastv.FastVConfig(k=k, ratio=0.5, rank=rank)
    check_against_reference(glm.model, inputs, config, _prunable(inputs), qwen_positions(glm, inputs), steps=8)


def test_per_frame_budget(glm):
    inputs = glm4v_prompt(glm, **PROMPTS["video"])
    segments = image_runs(inputs)
    assert int(segments.max()) == 3  # 4 frames, each its own run of image-id tokens
    config = fastv.FastVConfig(k=2, ratio=0.75, budget="per_image")
    check_against_reference(
        glm.model, inputs, config, _prunable(inputs), qwen_positions(glm, inputs), segments=segments
    )


def test_padded_batch_of_different_image_sizes_matches_single_runs(glm):
    singles = [glm4v_prompt(glm, grid, seed=i, before=2 + 3 * i) for i, grid in enumerate([(1, 4, 6), (1, 8, 4)])]
    batch = grid_batch(singles)
    assert_batch_matches_singles(glm.model, singles, batch, fastv.FastVConfig(k=2, ratio=0.5))


def test_a_padded_batch_whose_longest_row_keeps_every_image_token(glm):
    singles = [glm4v_prompt(glm, (1, 8, 4), seed=0, before=2), glm4v_prompt(glm, (1, 4, 6), seed=1, before=30)]
    assert_full_width_batch_matches_singles(glm.model, singles, grid_batch(singles))


def test_remove_restores_the_model(glm):
    assert_remove_restores(glm.model, glm4v_prompt(glm), fastv.FastVConfig(k=2, ratio=0.75))
