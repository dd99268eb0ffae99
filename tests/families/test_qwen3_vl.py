"""Qwen3-VL and Qwen3-VL-MoE: interleaved M-RoPE, q/k norms, DeepStack features after decoder layers 0-2, videos as one run
of tokens per frame. Pruning at k <= 2 must hand each kept visual token its own DeepStack row."""

from __future__ import annotations

import pytest
import torch

import fastv
from fastv.families.qwen3_vl.selfcheck import tiny_qwen3_vl
from fastv.selfcheck.prompts import grid_batch, image_runs, qwen3_prompt, qwen_positions
from fastv.selfcheck.reference import deepstack_inputs, language_model
from fastv.selfcheck.tiny import IMAGE_TOKEN, VIDEO_TOKEN
from tests.families.equivalence import (
    assert_batch_equals_rows_alone,
    assert_batch_matches_singles,
    assert_deepstack_matters,
    assert_full_width_batch_matches_singles,
    assert_ratio_zero_identical,
    assert_remove_restores,
    check_against_reference,
)


@pytest.fixture(scope="module", params=["qwen3_vl", "qwen3_vl_moe"])
def qwen3(request):
    return tiny_qwen3_vl(moe=request.param == "qwen3_vl_moe")


def _prunable(inputs: dict) -> torch.Tensor:
    return torch.isin(inputs["input_ids"][0], torch.tensor([IMAGE_TOKEN, VIDEO_TOKEN]))


def test_tiny_model_has_deepstack_on_three_layers(qwen3):
    inputs = qwen3_prompt(qwen3)
    mask, features = deepstack_inputs(qwen3.model, **inputs)
    assert len(features) == 3 and int(mask.sum()) == int(_prunable(inputs).sum()) == features[0].shape[0]
    assert all(float(f.abs().sum()) > 0 for f in features)


def test_ratio_zero_is_identical_to_unpatched_model(qwen3):
    assert_ratio_zero_identical(qwen3.model, qwen3_prompt(qwen3))


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("rank", ["last_token", "mean", "random"])
def test_image_and_video_match_the_reference_with_deepstack(qwen3, k, rank):
    inputs = qwen3_prompt(qwen3, video_grid=(4, 4, 4))
    config = fastv.FastVConfig(k=k, ratio=0.5, rank=rank)
    check_against_reference(
        qwen3.model, inputs, config, _prunable(inputs), positions=qwen_positions(qwen3, inputs), steps=8
    )


def test_deepstack_matters_to_the_reference(qwen3):
    """Without the DeepStack rows the pruned logits differ: the check above cannot pass vacuously."""
    inputs = qwen3_prompt(qwen3)
    assert_deepstack_matters(qwen3.model, inputs, qwen_positions(qwen3, inputs))


def test_per_frame_budget(qwen3):
    """budget="per_image": the image and each video frame (its own run of tokens) keep the same share."""
    inputs = qwen3_prompt(qwen3, video_grid=(4, 4, 4))
    ids = inputs["input_ids"][0]
    segments = image_runs({"input_ids": torch.where(ids == VIDEO_TOKEN, IMAGE_TOKEN, ids)[None]})
    assert int(segments.max()) == 4  # the image and 4 frames
    config = fastv.FastVConfig(k=2, ratio=0.75, budget="per_image")
    positions = qwen_positions(qwen3, inputs)
    check_against_reference(qwen3.model, inputs, config, _prunable(inputs), positions, segments=segments)


def test_padded_batch_of_different_sizes_matches_single_runs(qwen3):
    grids = [((1, 4, 6), (2, 4, 4)), ((1, 8, 4), None)]
    singles = [qwen3_prompt(qwen3, image, video, seed=i, before=2 + 3 * i) for i, (image, video) in enumerate(grids)]
    batch = grid_batch(singles)
    for k in (1, 2):
        assert_batch_matches_singles(qwen3.model, singles, batch, fastv.FastVConfig(k=k, ratio=0.5))


def test_remove_restores_the_model_and_its_deepstack_step(qwen3):
    lm = language_model(qwen3.model)
    assert_remove_restores(qwen3.model, qwen3_prompt(qwen3), fastv.FastVConfig(k=1, ratio=0.75))
    assert "_deepstack_process" not in lm.__dict__


@pytest.mark.parametrize("k", [1, 2])
def test_deepstack_in_a_batch_whose_longest_row_is_text_only(qwen3, k):
    """The text-only longest row drops nothing, so the pruned batch is as wide as the full one: the DeepStack
    rows must still go to the kept image tokens (they landed on the wrong positions when the width decided)."""
    singles = [
        qwen3_prompt(qwen3, (1, 4, 6), (2, 4, 4), seed=1, before=2),
        qwen3_prompt(qwen3, None, None, seed=2, before=80),
    ]
    assert singles[1]["input_ids"].shape[1] > singles[0]["input_ids"].shape[1]
    config = fastv.FastVConfig(k=k, ratio=0.5)
    assert_batch_equals_rows_alone(qwen3.model, singles, grid_batch(singles), config, text_rows=(1,))


def test_deepstack_in_a_batch_whose_longest_row_keeps_every_image_token(qwen3):
    """keep=N with a longest row of N image tokens: that row drops nothing, the other one is pruned."""
    singles = [
        qwen3_prompt(qwen3, (1, 8, 4), (2, 4, 4), seed=1, before=2),
        qwen3_prompt(qwen3, (1, 4, 6), None, seed=2, before=40),
    ]
    assert_full_width_batch_matches_singles(qwen3.model, singles, grid_batch(singles), ks=(1, 2))
