"""PerceptionLM (Llama decoder; a tiny CLIP ViT stands in for timm's Perception Encoder): the equivalence
suite on images, then images + a 4-frame video (one run of video tokens, split per frame for per-image budgets)."""

from __future__ import annotations

from functools import partial

import pytest
import torch

import fastv
from fastv.families.perception_lm.selfcheck import perception_lm_prompt, tiny_perception_lm
from fastv.selfcheck.checks import generate
from fastv.selfcheck.prompts import image_runs
from fastv.selfcheck.tiny import IMAGE_TOKEN, VIDEO_TOKEN, left_pad
from tests.families import image_suite
from tests.families.equivalence import (
    assert_batch_matches_singles,
    assert_ratio_zero_identical,
    assert_remove_restores,
    check_against_reference,
)
from tests.families.rankers import check_every_ranker


def _prunable(inputs: dict) -> torch.Tensor:
    return torch.isin(inputs["input_ids"][0], torch.tensor([IMAGE_TOKEN, VIDEO_TOKEN]))


def _segments(inputs: dict, per_frame: int = 4) -> torch.Tensor:
    """(n,) written out by hand: image i is segment i, then each video frame (``per_frame`` tokens) its own."""
    ids = inputs["input_ids"][0]
    segments = image_runs(inputs)
    video = (ids == VIDEO_TOKEN).nonzero().squeeze(1)
    segments[video] = int(segments.max()) + 1 + torch.arange(video.numel()) // per_frame
    return segments


@pytest.fixture(scope="module")
def vlm():
    return tiny_perception_lm()


def test_images_only_equivalence_suite(vlm):
    image_suite.run_all(vlm, partial(perception_lm_prompt, frames=0), image_runs)


def test_image_and_video_every_ranker_and_backend_over_8_decode_steps():
    check_every_ranker(tiny_perception_lm, perception_lm_prompt, _prunable)


@pytest.mark.parametrize(("k", "rank"), [(1, "mean"), (3, "last_token")])
def test_image_and_video_other_layers(vlm, k, rank):
    inputs = perception_lm_prompt(vlm)
    check_against_reference(vlm.model, inputs, fastv.FastVConfig(k=k, ratio=0.5, rank=rank), _prunable(inputs))


def test_ratio_zero_and_remove_with_video(vlm):
    inputs = perception_lm_prompt(vlm)
    assert_ratio_zero_identical(vlm.model, inputs)
    assert_remove_restores(vlm.model, inputs, fastv.FastVConfig(k=2, ratio=0.75))


def test_per_image_budget_keeps_the_same_share_of_every_frame(vlm):
    inputs = perception_lm_prompt(vlm, frames=4)
    segments = _segments(inputs)
    assert int(segments.max()) == 5  # 2 images + 4 frames
    config = fastv.FastVConfig(k=2, ratio=0.5, budget="per_image")
    check_against_reference(vlm.model, inputs, config, _prunable(inputs), segments=segments)
    fastv.apply(vlm.model, config)
    try:
        with torch.no_grad():
            vlm.model(**inputs)
        kept = set(fastv.last_keep(vlm.model)[0].tolist())
        generate(vlm.model, inputs, 2)  # generate hands the forward precomputed features instead of pixels
        assert set(fastv.last_keep(vlm.model)[0].tolist()) == kept
    finally:
        fastv.remove(vlm.model)
    for s in range(6):
        members = (segments == s).nonzero().squeeze(1).tolist()
        assert sum(p in kept for p in members) == len(members) // 2, s


def test_padded_batch_with_videos_matches_single_runs(vlm):
    singles = [perception_lm_prompt(vlm, 1, 1, 2, frames=4), perception_lm_prompt(vlm, 2, 2, 6, frames=4)]
    ids, mask = left_pad([s["input_ids"][0] for s in singles])
    batch = {"input_ids": ids, "attention_mask": mask}
    for key in ("pixel_values", "pixel_values_videos"):
        batch[key] = torch.cat([s[key] for s in singles])
    for config in (fastv.FastVConfig(k=2, ratio=0.5), fastv.FastVConfig(k=2, ratio=0.5, budget="per_image")):
        assert_batch_matches_singles(vlm.model, singles, batch, config)


def test_frames_come_from_precomputed_features_without_pixels(vlm):
    """Without ``pixel_values_videos`` (precomputed encoder outputs only) each frame's token count is read
    from the video features: the same per-frame segments."""
    from types import SimpleNamespace

    from fastv.families import family_for

    inputs = perception_lm_prompt(vlm, frames=4)
    ids = inputs["input_ids"]
    prunable = _prunable(inputs)[None]
    features = SimpleNamespace(pooler_output=torch.zeros(4, vlm.video_tokens_per_frame, 64))
    family = family_for(vlm.model)
    from_pixels = family.segments(vlm.model, ids, prunable, inputs)
    from_features = family.segments(vlm.model, ids, prunable, {"mm_encoder_outputs": {"video": features}})
    expected = _segments(inputs)[None]
    assert torch.equal(from_pixels.masked_fill(~prunable, -1), expected)
    assert torch.equal(from_features.masked_fill(~prunable, -1), expected)
