"""Qwen2-VL and Qwen2.5-VL: M-RoPE positions, images and videos, mixed resolutions in one batch."""

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
from tests.tiny_models import IMAGE_TOKEN, VIDEO_TOKEN, left_pad, mm_prompt, tiny_qwen2_5_vl, tiny_qwen2_vl

BUILDERS = {"qwen2_vl": tiny_qwen2_vl, "qwen2_5_vl": tiny_qwen2_5_vl}


@pytest.fixture(params=sorted(BUILDERS))
def qwen(request):
    return BUILDERS[request.param]()


def _sample(vlm, image_grid=(1, 4, 6), video_grid=(2, 4, 4), seed=0, before=3, after=4) -> dict:
    """One unpadded prompt holding an image and / or a video."""
    parts, inputs = [], {}
    if image_grid is not None:
        patches, grid, count = vlm.visual(image_grid, seed=seed)
        parts.append((IMAGE_TOKEN, count))
        inputs |= {"pixel_values": patches, "image_grid_thw": grid}
    if video_grid is not None:
        patches, grid, count = vlm.visual(video_grid, seed=seed + 100)
        parts.append((VIDEO_TOKEN, count))
        inputs |= {"pixel_values_videos": patches, "video_grid_thw": grid}
    ids, types = mm_prompt(before, parts, after, seed=seed)
    return {
        "input_ids": ids[None],
        "attention_mask": torch.ones(1, ids.numel(), dtype=torch.long),
        "mm_token_type_ids": types[None],
        **inputs,
    }


def _positions(vlm, inputs: dict):
    """M-RoPE positions (3, 1, n_total) of the prompt plus decoded tokens, from the model's own get_rope_index."""
    keys = ("input_ids", "mm_token_type_ids", "image_grid_thw", "video_grid_thw", "attention_mask")
    prompt, _ = vlm.model.model.get_rope_index(**{key: inputs[key] for key in keys if key in inputs})

    def positions(n_total: int) -> torch.Tensor:
        extra = n_total - prompt.shape[-1]
        tail = prompt.max() + 1 + torch.arange(extra)
        return torch.cat([prompt, tail.view(1, 1, -1).expand(3, 1, -1)], dim=-1)

    return positions


def test_ratio_zero_is_identical_to_unpatched_model(qwen):
    assert_ratio_zero_identical(qwen.model, _sample(qwen))


@pytest.mark.parametrize(("k", "rank"), [(1, "last_token"), (2, "mean"), (3, "last_token")])
def test_image_and_video_prefill_and_decode_match_reference(qwen, k, rank):
    inputs = _sample(qwen)
    prunable = torch.isin(inputs["input_ids"][0], torch.tensor([IMAGE_TOKEN, VIDEO_TOKEN]))
    config = fastv.FastVConfig(k=k, ratio=0.5, rank=rank)
    check_against_reference(qwen.model, inputs, config, prunable, positions=_positions(qwen, inputs))


def test_kept_tokens_keep_their_original_3d_positions(qwen):
    """The cos/sin a pruned layer gets are those of the kept tokens' unpruned (t, h, w) positions."""
    model, inputs = qwen.model, _sample(qwen)
    n = inputs["input_ids"].shape[1]
    full_positions = _positions(qwen, inputs)(n)
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
    grids = [((1, 4, 6), None), ((1, 8, 4), (2, 4, 4)), ((1, 2, 2), None)]
    singles = [_sample(qwen, image, video, seed=i, before=2 + 3 * i) for i, (image, video) in enumerate(grids)]
    assert len({int((s["input_ids"] == IMAGE_TOKEN).sum()) for s in singles}) == 3
    ids, mask = left_pad([s["input_ids"][0] for s in singles])
    types, _ = left_pad([s["mm_token_type_ids"][0] for s in singles])
    batch = {
        "input_ids": ids,
        "attention_mask": mask,
        "mm_token_type_ids": types,
        "pixel_values": torch.cat([s["pixel_values"] for s in singles]),
        "image_grid_thw": torch.cat([s["image_grid_thw"] for s in singles]),
        "pixel_values_videos": singles[1]["pixel_values_videos"],
        "video_grid_thw": singles[1]["video_grid_thw"],
    }
    assert_batch_matches_singles(qwen.model, singles, batch, fastv.FastVConfig(k=2, ratio=0.5))


def test_per_image_budget_splits_videos_into_frames(qwen):
    """budget="per_image": the image and each of the video's 2 frames drop floor(ratio * their tokens)."""
    inputs = _sample(qwen, image_grid=(1, 4, 6), video_grid=(2, 4, 4))
    ids = inputs["input_ids"][0]
    segments = torch.full_like(ids, -1)
    image, video = (ids == IMAGE_TOKEN).nonzero().squeeze(1), (ids == VIDEO_TOKEN).nonzero().squeeze(1)
    segments[image] = 0
    segments[video] = 1 + torch.arange(video.numel()) // (video.numel() // 2)
    prunable = segments >= 0
    config = fastv.FastVConfig(k=2, ratio=0.5, budget="per_image")
    check_against_reference(qwen.model, inputs, config, prunable, _positions(qwen, inputs), segments=segments)


def test_remove_restores_the_model(qwen):
    assert_remove_restores(qwen.model, _sample(qwen), fastv.FastVConfig(k=2, ratio=0.75))


def test_eager_attention_matches_reference():
    vlm = tiny_qwen2_vl(attn_implementation="eager")
    inputs = _sample(vlm)
    prunable = torch.isin(inputs["input_ids"][0], torch.tensor([IMAGE_TOKEN, VIDEO_TOKEN]))
    config = fastv.FastVConfig(k=2, ratio=0.5)
    check_against_reference(vlm.model, inputs, config, prunable, positions=_positions(vlm, inputs))
