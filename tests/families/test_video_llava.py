"""video_llava: image and video-frame tokens are candidates; 8-frame prompts; per-frame budgets."""

from __future__ import annotations

import pytest

import fastv
from fastv.families.llava.selfcheck import tiny_video_llava
from tests.families import llava_video
from tests.families.equivalence import assert_ratio_zero_identical, assert_remove_restores


@pytest.fixture
def vlm():
    return tiny_video_llava()


def test_ratio_zero_is_identical_to_unpatched_model(vlm):
    assert_ratio_zero_identical(vlm.model, llava_video.sample(vlm, frames=4))


@pytest.mark.parametrize(("k", "rank"), [(1, "mean"), (2, "last_token")])
def test_image_and_8_frame_video_match_reference(vlm, k, rank):
    llava_video.check_reference(vlm, fastv.FastVConfig(k=k, ratio=0.5, rank=rank))


def test_mean_ranker_never_materialises_n_by_n(vlm, monkeypatch):
    llava_video.check_mean_ranker_is_chunked(vlm, monkeypatch)


def test_per_image_budget_keeps_the_same_share_of_every_frame(vlm):
    llava_video.check_reference(vlm, fastv.FastVConfig(k=2, ratio=0.75, budget="per_image"), frames=4)


def test_padded_batch_matches_single_runs(vlm):
    llava_video.check_padded_batch(vlm, fastv.FastVConfig(k=2, ratio=0.5))


def test_a_padded_batch_whose_longest_row_keeps_every_visual_token(vlm):
    llava_video.check_full_width_batch(vlm)


def test_remove_restores_the_model(vlm):
    assert_remove_restores(vlm.model, llava_video.sample(vlm, frames=2), fastv.FastVConfig(k=2, ratio=0.75))
