"""LLaVA-OneVision-1.5 (transformers 5.25 on: Rice ViT over packed patches with a class token per frame, Qwen3
decoder with 1-D positions, every image and video between vision start / end markers): the equivalence suite
on images, images + video with every ranker, a padded batch with videos, per-image budgets on images and per
frame on a video (under generate, which passes no grid: refused), markers never dropped."""

from __future__ import annotations

import pytest
import torch

import fastv
from fastv.families import supported_families
from fastv.families.llava_onevision1_5.selfcheck import LLAVA_ONEVISION1_5_MARKERS, llava_onevision1_5_prompt
from fastv.selfcheck.prompts import image_runs
from fastv.selfcheck.reference import decoder_inputs, reference_kept, reference_logits
from fastv.selfcheck.tiny import IMAGE_TOKEN, VIDEO_TOKEN, left_pad
from tests.families import image_suite
from tests.families.equivalence import (
    TOLERANCE,
    assert_batch_matches_singles,
    assert_remove_restores,
    check_against_reference,
    prefill_with_fastv,
)
from tests.families.rankers import check_every_ranker

MISSING = supported_families()["llava_onevision1_5"].unavailable_reason()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=str(MISSING))


def _tiny(attn: str = "sdpa"):
    from fastv.families.llava_onevision1_5.selfcheck import tiny_llava_onevision1_5

    return tiny_llava_onevision1_5(attn)


def _visual(inputs: dict) -> torch.Tensor:
    return torch.isin(inputs["input_ids"][0], torch.tensor([IMAGE_TOKEN, VIDEO_TOKEN]))


def test_equivalence_suite_on_images():
    image_suite.run_all(_tiny(), llava_onevision1_5_prompt, image_runs)


def test_images_and_video_every_ranker_and_backend_over_8_decode_steps():
    check_every_ranker(_tiny, lambda vlm: llava_onevision1_5_prompt(vlm, frames=3), _visual)


def test_a_padded_batch_of_images_and_videos_matches_single_runs():
    """Samples with different image and frame counts, left-padded; patches and grids concatenated in
    sample order (the order the model scatters them into the placeholders)."""
    vlm = _tiny()
    singles = [
        llava_onevision1_5_prompt(vlm, n_images=1, seed=1, before=2, frames=2),
        llava_onevision1_5_prompt(vlm, n_images=2, seed=2, before=6, frames=3),
    ]
    ids, mask = left_pad([s["input_ids"][0] for s in singles])
    batch = {"input_ids": ids, "attention_mask": mask}
    for key in ("pixel_values", "image_grid_thw", "pixel_values_videos", "video_grid_thw"):
        batch[key] = torch.cat([s[key] for s in singles])
    assert_batch_matches_singles(vlm.model, singles, batch, fastv.FastVConfig(k=2, ratio=0.5))


def test_per_image_budget_on_images():
    vlm = _tiny()
    inputs = llava_onevision1_5_prompt(vlm, n_images=3)
    config = fastv.FastVConfig(k=2, ratio=0.5, budget="per_image")
    check_against_reference(vlm.model, inputs, config, _visual(inputs), segments=image_runs(inputs))


def test_per_image_budget_splits_a_video_into_its_frames_in_a_direct_forward():
    """With the processor's video_grid_thw (a direct forward), every 4-token frame keeps half its tokens;
    the global budget on the same prompt does not, so the split is what makes it so."""
    vlm = _tiny()
    inputs = llava_onevision1_5_prompt(vlm, n_images=0, frames=3)
    video = (inputs["input_ids"][0] == VIDEO_TOKEN).nonzero().squeeze(1)
    frames = video.view(3, 4)

    def kept_per_frame(budget: str) -> list[int]:
        _, kept = prefill_with_fastv(vlm.model, inputs, fastv.FastVConfig(k=2, ratio=0.5, budget=budget))
        return [int(torch.isin(frame, kept).sum()) for frame in frames]

    assert kept_per_frame("per_image") == [2, 2, 2]
    assert kept_per_frame("global") != [2, 2, 2]


def test_per_frame_budget_prefill_matches_the_reference():
    """Images and each video frame ranked on their own in a direct forward (generate passes no grid): the
    kept set is the one eager attention maps give per segment, the logits the reference's on it."""
    vlm = _tiny()
    inputs = llava_onevision1_5_prompt(vlm, n_images=2, frames=3)
    config = fastv.FastVConfig(k=2, ratio=0.5, budget="per_image")
    segments = image_runs(inputs)
    video = (inputs["input_ids"][0] == VIDEO_TOKEN).nonzero().squeeze(1)
    segments[video] = int(segments.max()) + 1 + torch.arange(video.numel()) // 4  # a 4x4-patch frame: 4 tokens
    ids, counts = torch.unique(segments[_visual(inputs)], return_counts=True)
    n_drop = {int(s): config.n_dropped(int(c)) for s, c in zip(ids, counts, strict=True)}
    embeds, _ = decoder_inputs(vlm.model, **inputs)
    out, kept = prefill_with_fastv(vlm.model, inputs, config)
    expected_kept = reference_kept(vlm.model, inputs, _visual(inputs), config.k, n_drop, config.rank, segments)
    assert torch.equal(kept.cpu(), expected_kept)
    expected = reference_logits(vlm.model, embeds, kept, config.k)
    assert float((out.logits - expected).abs().max()) < TOLERANCE


def test_per_image_budget_with_a_video_under_generate_is_refused_not_guessed():
    """transformers 5.25's generate encodes pixels before the forward and passes no video_grid_thw, and the
    decoder's positions are 1-D: a video's frames cannot be told apart, so FastV says so."""
    vlm = _tiny()
    inputs = llava_onevision1_5_prompt(vlm, frames=3)
    fastv.apply(vlm.model, fastv.FastVConfig(k=2, ratio=0.5, budget="per_image"))
    try:
        with pytest.raises(fastv.FastVError, match="without video_grid_thw"):
            vlm.model.generate(**inputs, max_new_tokens=2, do_sample=False)
    finally:
        fastv.remove(vlm.model)


def test_a_video_without_its_grid_is_refused_for_per_image_budgets():
    vlm = _tiny()
    inputs = llava_onevision1_5_prompt(vlm, frames=2)
    family = supported_families()["llava_onevision1_5"]
    with pytest.raises(fastv.FastVError, match="without video_grid_thw"):
        family.segments(vlm.model, inputs["input_ids"], _visual(inputs)[None], {})


def test_vision_markers_are_never_dropped():
    vlm = _tiny()
    inputs = llava_onevision1_5_prompt(vlm, frames=2)
    markers = torch.isin(inputs["input_ids"][0], torch.tensor(LLAVA_ONEVISION1_5_MARKERS))
    assert int(markers.sum()) == 2 * 3  # two images and a video, each between a start and an end marker
    _, kept = prefill_with_fastv(vlm.model, inputs, fastv.FastVConfig(k=2, keep=1))
    assert set(markers.nonzero().squeeze(1).tolist()) <= set(kept.tolist())
    assert kept.numel() == inputs["input_ids"].shape[1] - int(_visual(inputs).sum()) + 1


def test_remove_restores_the_model():
    vlm = _tiny()
    assert_remove_restores(vlm.model, llava_onevision1_5_prompt(vlm, frames=2), fastv.FastVConfig(k=2, ratio=0.75))
