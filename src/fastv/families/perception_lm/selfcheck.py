"""The self-check of this family: its tiny random-weight model(s) built from a config (no download),
its prompt builder(s) and its doctor case(s)."""

from __future__ import annotations

import torch

from fastv.selfcheck.case import on
from fastv.selfcheck.tiny import (
    IMAGE_TOKEN,
    VIDEO_TOKEN,
    TinyVideoVLM,
    finish,
    mm_prompt,
    seeded,
    text_config,
    vision_config,
)


@seeded
def tiny_perception_lm(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0) -> TinyVideoVLM:
    """PerceptionLM: images (one tile each here) and video frames through one tower, CLS dropped, 2x2
    average-pooled by the projector, into a Llama decoder: 4 tokens per 16x16 image or frame.

    The real tower is timm's Perception Encoder (``timm_wrapper``), and timm is not a dependency: a tiny
    CLIP ViT stands in (a CLS token then a patch grid, as PE gives; the projector reads its width from
    ``model_args["embed_dim"]``). FastV only sees the decoder and the tokens.
    """
    from transformers import PerceptionLMConfig, PerceptionLMForConditionalGeneration

    tower = vision_config()
    tower.model_args = {"embed_dim": 32}
    config = PerceptionLMConfig(
        vision_config=tower.to_dict(),
        text_config=text_config(layers=layers).to_dict(),
        vision_use_cls_token=True,
        projector_pooling_ratio=2,
        image_token_id=IMAGE_TOKEN,
        video_token_id=VIDEO_TOKEN,
    )
    config.vision_config = tower  # up to 5.19 the config wraps any vision config as timm's: keep the stand-in
    model = PerceptionLMForConditionalGeneration(config)
    return TinyVideoVLM(
        finish(model, attn_implementation, seed), image_tokens=4, image_size=16, video_tokens_per_frame=4
    )


def perception_lm_prompt(vlm: TinyVideoVLM, n_images: int = 2, seed: int = 0, before: int = 3, frames: int = 4) -> dict:
    """PerceptionLM: ``n_images`` one-tile images as (images, 1, 3, H, W), then a video of ``frames`` frames
    (one run of placeholders), as its processor lays them out; ``frames=0`` leaves the video out."""
    parts, inputs = [(IMAGE_TOKEN, vlm.image_tokens)] * n_images, {}
    if n_images:
        inputs["pixel_values"] = vlm.pixel_values(n_images, seed)[:, None]
    if frames:
        parts.append((VIDEO_TOKEN, vlm.video_token_count(frames)))
        inputs["pixel_values_videos"] = vlm.pixel_values_videos(1, frames, seed=seed + 1)
    ids, _ = mm_prompt(before, parts, 5, seed=seed)
    return {"input_ids": ids[None], "attention_mask": torch.ones(1, ids.numel(), dtype=torch.long), **inputs}


CASES = {"perception_lm": on(tiny_perception_lm, perception_lm_prompt)}
