"""Ovis2.5 (transformers 5.25 on: NaViT tower with packed patches, probabilistic visual tokens, Qwen3 decoder,
start / end markers with indicator embeddings): the equivalence suite on images, images + video with every
ranker, per-image budgets on images (a video's frames under generate: refused), markers never dropped."""

from __future__ import annotations

import pytest
import torch

import fastv
from fastv.families import supported_families
from fastv.families.ovis2.selfcheck import OVIS2_5_MARKERS, ovis2_5_prompt
from fastv.selfcheck.prompts import image_runs
from fastv.selfcheck.tiny import IMAGE_TOKEN, VIDEO_TOKEN
from tests.families import image_suite
from tests.families.equivalence import assert_remove_restores, check_against_reference, prefill_with_fastv
from tests.families.rankers import check_every_ranker

MISSING = supported_families()["ovis2_5"].unavailable_reason()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=str(MISSING))


def _tiny(attn: str = "sdpa"):
    from fastv.families.ovis2.selfcheck import tiny_ovis2_5

    return tiny_ovis2_5(attn)


def _visual(inputs: dict) -> torch.Tensor:
    return torch.isin(inputs["input_ids"][0], torch.tensor([IMAGE_TOKEN, VIDEO_TOKEN]))


def test_equivalence_suite_on_images():
    image_suite.run_all(_tiny(), ovis2_5_prompt, image_runs)


def test_images_and_video_every_ranker_and_backend_over_8_decode_steps():
    check_every_ranker(_tiny, lambda vlm: ovis2_5_prompt(vlm, frames=3), _visual)


def test_per_image_budget_on_images():
    vlm = _tiny()
    inputs = ovis2_5_prompt(vlm, n_images=3)
    config = fastv.FastVConfig(k=2, ratio=0.5, budget="per_image")
    check_against_reference(vlm.model, inputs, config, _visual(inputs), segments=image_runs(inputs))


def test_per_image_budget_with_a_video_under_generate_is_refused_not_guessed():
    """transformers 5.25's generate encodes pixels before the forward and passes no video_grid_thw, and an
    Ovis2.5 video is one run of tokens: its frames cannot be told apart, so FastV says so."""
    vlm = _tiny()
    inputs = ovis2_5_prompt(vlm, frames=3)
    fastv.apply(vlm.model, fastv.FastVConfig(k=2, ratio=0.5, budget="per_image"))
    try:
        with pytest.raises(fastv.FastVError, match="without video_grid_thw"):
            vlm.model.generate(**inputs, max_new_tokens=2, do_sample=False)
    finally:
        fastv.remove(vlm.model)


def test_markers_carry_indicator_embeddings_and_are_never_dropped():
    vlm = _tiny()
    inputs = ovis2_5_prompt(vlm, frames=2)
    markers = torch.isin(inputs["input_ids"][0], torch.tensor(OVIS2_5_MARKERS))
    _, kept = prefill_with_fastv(vlm.model, inputs, fastv.FastVConfig(k=2, keep=1))
    assert set(markers.nonzero().squeeze(1).tolist()) <= set(kept.tolist())
    assert kept.numel() == inputs["input_ids"].shape[1] - int(_visual(inputs).sum()) + 1


def test_remove_restores_the_model():
    vlm = _tiny()
    assert_remove_restores(vlm.model, ovis2_5_prompt(vlm, frames=2), fastv.FastVConfig(k=2, ratio=0.75))


def test_a_video_without_its_grid_is_refused_for_per_image_budgets():
    vlm = _tiny()
    inputs = ovis2_5_prompt(vlm, frames=2)
    family = supported_families()["ovis2_5"]
    with pytest.raises(fastv.FastVError, match="without video_grid_thw"):
        family.segments(vlm.model, inputs["input_ids"], _visual(inputs)[None], {})


def test_per_image_budget_splits_a_video_into_its_frames_in_a_direct_forward():
    """With the processor's video_grid_thw (a direct forward), every 4-token frame keeps half its tokens;
    the global budget on the same prompt does not, so the split is what makes it so."""
    vlm = _tiny()
    inputs = ovis2_5_prompt(vlm, n_images=0, frames=3)
    video = (inputs["input_ids"][0] == VIDEO_TOKEN).nonzero().squeeze(1)
    frames = video.view(3, 4)

    def kept_per_frame(budget: str) -> list[int]:
        _, kept = prefill_with_fastv(vlm.model, inputs, fastv.FastVConfig(k=2, ratio=0.5, budget=budget))
        return [int(torch.isin(frame, kept).sum()) for frame in frames]

    assert kept_per_frame("per_image") == [2, 2, 2]
    assert kept_per_frame("global") != [2, 2, 2]
