"""The self-check of this family: its tiny random-weight model(s) built from a config (no download),
its prompt builder(s) and its doctor case(s)."""

from __future__ import annotations

from functools import partial

import torch
from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaNextConfig, LlavaNextForConditionalGeneration

from fastv.compat import video_llava_image_keyword
from fastv.selfcheck.case import on
from fastv.selfcheck.prompts import image_prompt
from fastv.selfcheck.tiny import (
    IMAGE_TOKEN,
    VIDEO_TOKEN,
    TinyVideoVLM,
    TinyVLM,
    finish,
    mm_prompt,
    prompt_ids,
    qwen2_text_config,
    seeded,
    text_config,
    vision_config,
)


@seeded
def tiny_llava(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0) -> TinyVLM:
    config = LlavaConfig(
        vision_config=vision_config(),
        text_config=text_config(layers=layers),
        image_token_id=IMAGE_TOKEN,
        projector_hidden_act="gelu",
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
    )
    model = LlavaForConditionalGeneration(config)
    return TinyVLM(finish(model, attn_implementation, seed), image_tokens=16, image_size=16)


@seeded
def tiny_llava_next(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0) -> TinyVLM:
    config = LlavaNextConfig(
        vision_config=vision_config(),
        text_config=text_config(layers=layers),
        image_token_id=IMAGE_TOKEN,
        image_grid_pinpoints=[[16, 32], [32, 16], [32, 32]],
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
    )
    model = LlavaNextForConditionalGeneration(config)
    return TinyVLM(finish(model, attn_implementation, seed), image_tokens=16, image_size=16)


def llava_next_image(vlm: TinyVLM, size: tuple[int, int], seed: int = 0) -> tuple[torch.Tensor, int]:
    """Pixel tiles (n_tiles, 3, s, s) for an image of ``size`` (h, w) and the image-token count anyres gives it."""
    from transformers.models.llava_next.modeling_llava_next import image_size_to_num_patches

    model = vlm.model
    n_tiles = image_size_to_num_patches(list(size), model.config.image_grid_pinpoints, vlm.image_size)
    generator = torch.Generator().manual_seed(seed)
    tiles = torch.randn(n_tiles, 3, vlm.image_size, vlm.image_size, generator=generator)
    with torch.no_grad():
        features = model.model.get_image_features(pixel_values=tiles[None], image_sizes=torch.tensor([size]))
    return tiles, int(features.pooler_output[0].shape[0])


@seeded
def tiny_video_llava(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0) -> TinyVideoVLM:
    from transformers import VideoLlavaConfig, VideoLlavaForConditionalGeneration

    config = VideoLlavaConfig(
        vision_config=vision_config(),
        text_config=text_config(layers=layers),
        image_token_index=IMAGE_TOKEN,
        video_token_index=VIDEO_TOKEN,
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
        image_seq_length=16,
        video_seq_length=17,
    )
    model = VideoLlavaForConditionalGeneration(config)
    return TinyVideoVLM(
        finish(model, attn_implementation, seed), image_tokens=16, image_size=16, video_tokens_per_frame=17
    )


@seeded
def tiny_llava_next_video(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0) -> TinyVideoVLM:
    from transformers import LlavaNextVideoConfig, LlavaNextVideoForConditionalGeneration

    config = LlavaNextVideoConfig(
        vision_config=vision_config(),
        text_config=text_config(layers=layers),
        image_token_index=IMAGE_TOKEN,
        video_token_index=VIDEO_TOKEN,
        image_grid_pinpoints=[[16, 32], [32, 16], [32, 32]],
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
        spatial_pool_stride=2,
    )
    model = LlavaNextVideoForConditionalGeneration(config)
    return TinyVideoVLM(  # image_tokens=0: anyres images, counted per image size
        finish(model, attn_implementation, seed), image_tokens=0, image_size=16, video_tokens_per_frame=4
    )


@seeded
def tiny_llava_onevision(
    attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0, sliding_window: int | None = None
) -> TinyVideoVLM:
    from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration

    config = LlavaOnevisionConfig(
        vision_config=vision_config(),
        text_config=qwen2_text_config(layers=layers, sliding_window=sliding_window),
        image_token_index=IMAGE_TOKEN,
        video_token_index=VIDEO_TOKEN,
        image_grid_pinpoints=[[16, 32], [32, 16], [32, 32]],
        vision_feature_select_strategy="default",  # CLIP has a CLS token (SigLIP in the real model has none)
        vision_feature_layer=-1,
        vision_aspect_ratio="anyres_max_9",
    )
    model = LlavaOnevisionForConditionalGeneration(config)
    vlm = TinyVideoVLM(
        finish(model, attn_implementation, seed),
        image_tokens=0,
        image_size=16,
        video_tokens_per_frame=4,
        video_extra_tokens=1,
    )
    return vlm


@seeded
def tiny_vipllava(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0) -> TinyVLM:
    """VipLLaVA: LLaVA whose projector reads the CLS-stripped features of several vision layers, concatenated."""
    from transformers import VipLlavaConfig, VipLlavaForConditionalGeneration

    config = VipLlavaConfig(
        vision_config=vision_config(),
        text_config=text_config(layers=layers),
        image_token_index=IMAGE_TOKEN,
        vision_feature_layers=[-2, -1],
        image_seq_length=16,
    )
    model = VipLlavaForConditionalGeneration(config)
    return TinyVLM(finish(model, attn_implementation, seed), image_tokens=16, image_size=16)


def llava_next_prompt(vlm: TinyVLM, size: tuple[int, int] = (20, 30), seed: int = 0, before: int = 4) -> dict:
    """One anyres image of ``size`` (h, w) pixels: its token count depends on the size."""
    tiles, n_tokens = llava_next_image(vlm, size, seed=seed)
    ids = prompt_ids(before, [n_tokens], 5, seed=seed)[None]
    return {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "pixel_values": tiles[None],
        "image_sizes": torch.tensor([size]),
    }


def video_prompt(
    vlm: TinyVideoVLM, frames: int = 8, image: tuple[int, int] | None = (16, 16), seed: int = 0, before: int = 3
) -> dict:
    """An image (anyres ``image`` size, or a fixed grid), then a video of ``frames`` (LLaVA video families)."""
    parts, inputs = [], {}
    if image is not None:
        if vlm.image_tokens:  # fixed-grid image tower (Video-LLaVA)
            parts.append((IMAGE_TOKEN, vlm.image_tokens))
            inputs[video_llava_image_keyword()] = vlm.pixel_values(1, seed)
        else:
            tiles, count = llava_next_image(vlm, image, seed=seed)
            parts.append((IMAGE_TOKEN, count))
            inputs |= {"pixel_values": tiles[None], "image_sizes": torch.tensor([image])}
    if frames:
        parts.append((VIDEO_TOKEN, vlm.video_token_count(frames)))
        inputs["pixel_values_videos"] = vlm.pixel_values_videos(1, frames, seed=seed + 1)
    ids, _ = mm_prompt(before, parts, 4, seed=seed)
    return {"input_ids": ids[None], "attention_mask": torch.ones(1, ids.numel(), dtype=torch.long), **inputs}


CASES = {
    "llava": on(tiny_llava, image_prompt),
    "llava_next": on(tiny_llava_next, llava_next_prompt),
    "llava_next_video": on(tiny_llava_next_video, video_prompt, frames=4),
    "llava_onevision": on(partial(tiny_llava_onevision, sliding_window=8), video_prompt, frames=4),
    "video_llava": on(tiny_video_llava, video_prompt, frames=4),
    "vipllava": on(tiny_vipllava, image_prompt),
}
