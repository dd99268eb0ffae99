"""Prompts and checks shared by the LLaVA video families (Video-LLaVA, LLaVA-NeXT-Video, LLaVA-OneVision)."""

from __future__ import annotations

import torch

import fastv
import fastv.core.ranking as ranking
from fastv.families.llava.selfcheck import video_prompt as sample
from fastv.selfcheck.tiny import IMAGE_TOKEN, VIDEO_TOKEN, TinyVideoVLM, left_pad
from tests.families.equivalence import (
    assert_batch_matches_singles,
    assert_full_width_batch_matches_singles,
    check_against_reference,
)


def prunable(inputs: dict) -> torch.Tensor:
    return torch.isin(inputs["input_ids"][0], torch.tensor([IMAGE_TOKEN, VIDEO_TOKEN]))


def frame_segments(vlm: TinyVideoVLM, inputs: dict, frames: int) -> torch.Tensor:
    """(n,) segment ids written out by hand: the image is 0, frame f is 1 + f (extra tokens join the last)."""
    ids = inputs["input_ids"][0]
    segments = torch.full_like(ids, -1)
    segments[ids == IMAGE_TOKEN] = 0
    video = (ids == VIDEO_TOKEN).nonzero().squeeze(1)
    frame = (torch.arange(video.numel()) // vlm.video_tokens_per_frame).clamp(max=frames - 1)
    segments[video] = 1 + frame
    return segments


def check_reference(vlm: TinyVideoVLM, config: fastv.FastVConfig, frames: int = 8, **kwargs) -> tuple[float, float]:
    inputs = sample(vlm, frames=frames, **kwargs)
    segments = frame_segments(vlm, inputs, frames) if config.budget == "per_image" else None
    return check_against_reference(vlm.model, inputs, config, prunable(inputs), segments=segments)


def check_mean_ranker_is_chunked(vlm: TinyVideoVLM, monkeypatch, frames: int = 8) -> None:
    """With a small block budget, the mean ranker never holds an n x n score block, and still ranks right."""
    inputs = sample(vlm, frames=frames)
    n = inputs["input_ids"].shape[1]
    heads = vlm.model.config.text_config.num_attention_heads
    budget = 4 * heads * n * 8  # 8 full query rows' worth of scores
    monkeypatch.setattr(ranking, "MEAN_RANK_BLOCK_BYTES", budget)
    blocks = []
    original = ranking._probabilities

    def spy(*args, **kwargs):
        probabilities = original(*args, **kwargs)
        blocks.append(probabilities.numel() * probabilities.element_size())
        return probabilities

    monkeypatch.setattr(ranking, "_probabilities", spy)
    check_against_reference(vlm.model, inputs, fastv.FastVConfig(k=2, ratio=0.5, rank="mean"), prunable(inputs))
    assert len(blocks) > 4 and max(blocks) <= budget


def check_padded_batch(vlm: TinyVideoVLM, config: fastv.FastVConfig) -> None:
    """Sample 0 holds an image and a video, sample 1 only a video of the same frame count; left-padded."""
    singles = [sample(vlm, frames=4, seed=0, before=2), sample(vlm, frames=4, image=None, seed=1, before=6)]
    assert_batch_matches_singles(vlm.model, singles, _batch(singles), config)


def check_full_width_batch(vlm: TinyVideoVLM) -> None:
    """An image and 4 frames in a short row, only the 4 frames in the longest: keep = its video tokens prunes
    only the short row."""
    short = sample(vlm, frames=4, seed=0, before=2)
    extra = short["input_ids"].shape[1] - sample(vlm, frames=4, image=None, seed=1, before=2)["input_ids"].shape[1]
    singles = [short, sample(vlm, frames=4, image=None, seed=1, before=2 + extra + 3)]
    assert_full_width_batch_matches_singles(vlm.model, singles, _batch(singles))


def _batch(singles: list[dict]) -> dict:
    ids, mask = left_pad([s["input_ids"][0] for s in singles])
    batch = {"input_ids": ids, "attention_mask": mask}
    for key in singles[0]:
        if key not in batch:
            batch[key] = torch.cat([s[key] for s in singles if key in s])
    return batch
