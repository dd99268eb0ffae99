"""Qwen2-VL and Qwen2.5-VL: M-RoPE positions, images and videos, mixed resolutions in one batch."""

from __future__ import annotations

import pytest
import torch

import fastv
from fastv.families.qwen_vl.selfcheck import qwen_prompt, tiny_qwen2_5_vl, tiny_qwen2_vl
from fastv.selfcheck.prompts import grid_batch, qwen_positions
from fastv.selfcheck.tiny import IMAGE_TOKEN, VIDEO_TOKEN
from tests.families.equivalence import (
    assert_batch_matches_singles,
    assert_full_width_batch_matches_singles,
    assert_ratio_zero_identical,
    assert_remove_restores,
    check_against_reference,
)

BUILDERS = {"qwen2_vl": tiny_qwen2_vl, "qwen2_5_vl": tiny_qwen2_5_vl}


@pytest.fixture(params=sorted(BUILDERS))
def qwen(request):
    return BUILDERS[request.param]()


def test_ratio_zero_is_identical_to_unpatched_model(qwen):
    assert_ratio_zero_identical(qwen.model, qwen_prompt(qwen))


@pytest.mark.parametrize(("k", "rank"), [(1, "last_token"), (2, "mean"), (3, "last_token")])
def test_image_and_video_prefill_and_decode_match_reference(qwen, k, rank):
    inputs = qwen_prompt(qwen)
    prunable = torch.isin(inputs["input_ids"][0], torch.tensor([IMAGE_TOKEN, VIDEO_TOKEN]))
    config = fastv.FastVConfig(k=k, ratio=0.5, rank=rank)
    check_against_reference(qwen.model, inputs, config, prunable, positions=qwen_positions(qwen, inputs))


def test_kept_tokens_keep_their_original_3dqwen_positions(qwen):
    """The cos/sin a pruned layer gets are those of the kept tokens' unpruned (t, h, w) positions."""
    model, inputs = qwen.model, qwen_prompt(qwen)
    n = inputs["input_ids"].shape[1]
    full_positions = qwen_positions(qwen, inputs)(n)
    seen = {}

    def grab(_module, _args, kwargs):
        seen["cos"], seen["sin"] = kwargs["position_embeddings"]

    fastv.apply(model, fastv.FastVConfig(k=2, ratio=0.75))
    handle = model.model.language_model.layers[2].self_attn.register_forward_pre_hook(grab, with_kwargs=True)
    try:
        with torch.no_grad():
            model(**inputs)
        kept = fastv.last_keep(model)[0]
    finally:
        handle.remove()
        fastv.remove(model)
    assert kept.numel() < n
    kept_positions = full_positions[:, :, kept]
    assert not torch.equal(kept_positions[1], kept_positions[2])  # genuinely 3-D: h and w rows differ
    lm = model.model.language_model
    cos, sin = lm.rotary_emb(torch.zeros(1, 1, lm.config.hidden_size), kept_positions)
    assert torch.equal(seen["cos"], cos)
    assert torch.equal(seen["sin"], sin)


def test_images_of_different_resolution_in_one_padded_batch_match_single_runs(qwen):
    grids = [((1, 4, 6), (2, 4, 6)), ((1, 8, 4), (2, 4, 4)), ((1, 2, 2), None)]  # videos of two sizes too
    singles = [qwen_prompt(qwen, image, video, seed=i, before=2 + 3 * i) for i, (image, video) in enumerate(grids)]
    assert len({int((s["input_ids"] == IMAGE_TOKEN).sum()) for s in singles}) == 3
    batch = grid_batch(singles)
    assert_batch_matches_singles(qwen.model, singles, batch, fastv.FastVConfig(k=2, ratio=0.5))


def test_a_padded_batch_whose_longest_row_keeps_every_image_token(qwen):
    singles = [
        qwen_prompt(qwen, (1, 8, 4), (2, 4, 4), seed=0, before=2),
        qwen_prompt(qwen, (1, 2, 2), None, seed=1, before=60),
    ]
    assert_full_width_batch_matches_singles(qwen.model, singles, grid_batch(singles))


def test_per_image_budget_splits_videos_into_frames(qwen):
    """budget="per_image": the image and each of the video's 2 frames drop floor(ratio * their tokens)."""
    inputs = qwen_prompt(qwen, image_grid=(1, 4, 6), video_grid=(2, 4, 4))
    ids = inputs["input_ids"][0]
    segments = torch.full_like(ids, -1)
    image, video = (ids == IMAGE_TOKEN).nonzero().squeeze(1), (ids == VIDEO_TOKEN).nonzero().squeeze(1)
    segments[image] = 0
    segments[video] = 1 + torch.arange(video.numel()) // (video.numel() // 2)
    prunable = segments >= 0
    config = fastv.FastVConfig(k=2, ratio=0.5, budget="per_image")
    check_against_reference(qwen.model, inputs, config, prunable, qwen_positions(qwen, inputs), segments=segments)


def test_remove_restores_the_model(qwen):
    assert_remove_restores(qwen.model, qwen_prompt(qwen), fastv.FastVConfig(k=2, ratio=0.75))


def test_eager_attention_matches_reference():
    vlm = tiny_qwen2_vl(attn_implementation="eager")
    inputs = qwen_prompt(vlm)
    prunable = torch.isin(inputs["input_ids"][0], torch.tensor([IMAGE_TOKEN, VIDEO_TOKEN]))
    config = fastv.FastVConfig(k=2, ratio=0.5)
    check_against_reference(vlm.model, inputs, config, prunable, positions=qwen_positions(vlm, inputs))


@pytest.mark.parametrize("seed", [0, 2, 3])
def test_per_image_budget_under_generate_splits_video_frames(seed):
    """``generate`` passes no video_grid_thw to the forward (it encodes pixels first); frames then come from
    the temporal M-RoPE row, so generate keeps exactly the direct forward's per-frame set."""
    vlm = tiny_qwen2_vl(seed=seed)
    inputs = qwen_prompt(vlm, image_grid=(1, 4, 6), video_grid=(4, 4, 4))
    video = (inputs["input_ids"][0] == VIDEO_TOKEN).nonzero().squeeze(1)
    fastv.apply(vlm.model, fastv.FastVConfig(k=2, ratio=0.75, budget="per_image"))
    vlm.model(**inputs)
    direct = fastv.last_keep(vlm.model)[0].clone()
    vlm.model.generate(**inputs, max_new_tokens=2, do_sample=False)
    generated = fastv.last_keep(vlm.model)[0]
    kept_video = generated[torch.isin(generated, video)]
    per_frame = video.numel() // 2  # 4 frames = 2 temporal patches
    frame = (kept_video - video[0]) // per_frame
    assert torch.bincount(frame, minlength=2).tolist() == [per_frame - int(0.75 * per_frame)] * 2
    assert torch.equal(generated, direct)


def test_per_image_segments_of_a_video_without_grid_or_positions_is_an_error():
    from fastv.errors import FastVError
    from fastv.families import family_for

    vlm = tiny_qwen2_vl()
    ids = qwen_prompt(vlm, image_grid=(1, 4, 6), video_grid=(2, 4, 4))["input_ids"]
    prunable = torch.isin(ids, torch.tensor([IMAGE_TOKEN, VIDEO_TOKEN]))
    with pytest.raises(FastVError, match="video_grid_thw or 3-D position_ids"):
        family_for(vlm.model).segments(vlm.model, ids, prunable, {})
