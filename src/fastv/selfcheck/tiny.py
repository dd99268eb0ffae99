"""Tiny VLMs of each supported family plus prompt builders, for tests (random weights, CPU, fp32)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch
from transformers import (
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaNextConfig,
    LlavaNextForConditionalGeneration,
)

IMAGE_TOKEN = 120
PAD_TOKEN = 0
VOCAB = 128


@dataclass
class TinyVLM:
    model: torch.nn.Module
    image_tokens: int  # per image for fixed-grid families
    image_size: int

    def pixel_values(self, n_images: int, seed: int = 0) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        return torch.randn(n_images, 3, self.image_size, self.image_size, generator=generator)


def text_config(layers: int = 4, hidden: int = 64, heads: int = 4, kv_heads: int = 2) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=1024,
        pad_token_id=PAD_TOKEN,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=False,
    )


def vision_config(image_size: int = 16, patch_size: int = 4) -> CLIPVisionConfig:
    return CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=image_size,
        patch_size=patch_size,
        projection_dim=32,
    )


Built = TypeVar("Built")


def _seeded(build: Callable[..., Built]) -> Callable[..., Built]:
    """Seed the global RNG with the builder's ``seed`` before it constructs the model: parameters the
    constructor draws and ``_finish`` does not redraw (conv patch embeddings, class embeddings, fused
    experts) are then the same on every build, so the doctor and the tests see one model per seed."""
    signature = inspect.signature(build)

    @functools.wraps(build)
    def wrapper(*args, **kwargs) -> Built:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        torch.manual_seed(bound.arguments["seed"])
        return build(*args, **kwargs)

    return wrapper


def _finish(model: torch.nn.Module, attn_implementation: str, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model.apply(_scaled_init)
    model.set_attn_implementation(attn_implementation)
    return model.eval()


def _scaled_init(module: torch.nn.Module) -> None:
    # Larger-than-default weights make attention peaked, so rankings are decisive and errors visible.
    if isinstance(module, (torch.nn.Linear, torch.nn.Embedding)):
        torch.nn.init.normal_(module.weight, std=0.2)
        if getattr(module, "bias", None) is not None:
            torch.nn.init.zeros_(module.bias)


@_seeded
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
    return TinyVLM(_finish(model, attn_implementation, seed), image_tokens=16, image_size=16)


@_seeded
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
    return TinyVLM(_finish(model, attn_implementation, seed), image_tokens=16, image_size=16)


def prompt_ids(n_before: int, image_token_counts: list[int], n_after: int, seed: int = 0) -> torch.Tensor:
    """One prompt: text, then each image's placeholder tokens separated by a text token, then text."""
    generator = torch.Generator().manual_seed(seed)

    def text(n: int) -> list[int]:
        return torch.randint(3, IMAGE_TOKEN, (n,), generator=generator).tolist()

    ids = text(n_before)
    for count in image_token_counts:
        ids += [IMAGE_TOKEN] * count + text(1)
    ids += text(n_after)
    return torch.tensor(ids)


def left_pad(prompts: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded (input_ids, attention_mask) for a list of 1-D prompts."""
    width = max(p.numel() for p in prompts)
    ids = torch.full((len(prompts), width), PAD_TOKEN, dtype=torch.long)
    mask = torch.zeros(len(prompts), width, dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - prompt.numel() :] = prompt
        mask[row, width - prompt.numel() :] = 1
    return ids, mask


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


# --- Qwen2-VL / Qwen2.5-VL (M-RoPE) -------------------------------------------------------------------

VIDEO_TOKEN = 121


@dataclass
class TinyQwenVL:
    """A tiny Qwen2(.5)-VL and helpers to make its flattened patches and grids."""

    model: torch.nn.Module
    patch_dim: int  # channels * temporal_patch * patch * patch
    merge: int  # spatial merge size

    def visual(self, grid: tuple[int, int, int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Flattened patches, grid_thw (1, 3) and the LLM token count of one image / video of ``grid`` patches."""
        t, h, w = grid
        generator = torch.Generator().manual_seed(seed)
        patches = torch.randn(t * h * w, self.patch_dim, generator=generator)
        return patches, torch.tensor([grid]), t * h * w // self.merge**2


def _qwen_text_kwargs(layers: int, hidden: int = 64, heads: int = 4, kv_heads: int = 2) -> dict:
    head_dim = hidden // heads
    third = head_dim // 2 // 3
    section = [head_dim // 2 - 2 * third, third, third]
    return {
        "vocab_size": VOCAB,
        "hidden_size": hidden,
        "intermediate_size": 2 * hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "max_position_embeddings": 1024,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": section},
        "pad_token_id": PAD_TOKEN,
        "bos_token_id": 1,
        "eos_token_id": 2,
    }


def _grid_vlm(name: str, attn_implementation: str, seed: int, **config) -> TinyQwenVL:
    """A VLM fed flattened patches + ``grid_thw`` (Qwen-VL, GLM-4V) from transformers' ``{name}Config``:
    our image / video token ids, Qwen's vision start / end markers unless ``config`` names its own."""
    import transformers

    markers = {} if "image_start_token_id" in config else {"vision_start_token_id": 122, "vision_end_token_id": 123}
    options = {"image_token_id": IMAGE_TOKEN, "video_token_id": VIDEO_TOKEN, "tie_word_embeddings": False}
    config_class = getattr(transformers, f"{name}Config")
    model = getattr(transformers, f"{name}ForConditionalGeneration")(config_class(**options, **markers, **config))
    return TinyQwenVL(_finish(model, attn_implementation, seed), patch_dim=3 * 2 * 4 * 4, merge=2)


@_seeded
def tiny_qwen2_vl(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0, **text) -> TinyQwenVL:
    return _grid_vlm(
        "Qwen2VL",
        attn_implementation,
        seed,
        text_config={**_qwen_text_kwargs(layers), **text},
        vision_config={
            "depth": 2,
            "embed_dim": 32,
            "hidden_size": 64,
            "num_heads": 2,
            "mlp_ratio": 2,
            "patch_size": 4,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
    )


@_seeded
def tiny_qwen2_5_vl(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0, **text) -> TinyQwenVL:
    return _grid_vlm(
        "Qwen2_5_VL",
        attn_implementation,
        seed,
        text_config={**_qwen_text_kwargs(layers), **text},
        vision_config=dict(_QWEN25_VISION),
    )


# The Qwen2.5-VL vision tower (window attention, one full-attention block), shared by the Qwen2.5-VL and
# Qwen2.5-Omni tiny models.
_QWEN25_VISION = {
    "depth": 2,
    "hidden_size": 32,
    "intermediate_size": 64,
    "out_hidden_size": 64,
    "num_heads": 2,
    "patch_size": 4,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "window_size": 16,
    "fullatt_block_indexes": [1],
}
# The Qwen3-VL vision tower (DeepStack from all three blocks), shared by Qwen3-VL and Qwen3-Omni tiny models.
_QWEN3_VISION = {
    "depth": 3,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_heads": 2,
    "patch_size": 4,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "out_hidden_size": 64,
    "num_position_embeddings": 64,
    "deepstack_visual_indexes": [0, 1, 2],
}


@_seeded
def tiny_qwen3_vl(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0, moe: bool = False) -> TinyQwenVL:
    """Qwen3-VL (or Qwen3-VL-MoE: 4 experts, 2 per token): interleaved M-RoPE, q/k norms, DeepStack features
    added after decoder layers 0-2."""
    text = _qwen_text_kwargs(layers)
    text["head_dim"] = 16
    text["rope_parameters"] = {**text["rope_parameters"], "mrope_section": [4, 2, 2], "mrope_interleaved": True}
    if moe:
        text |= {"num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32, "decoder_sparse_step": 1}
    return _grid_vlm(
        "Qwen3VLMoe" if moe else "Qwen3VL",
        attn_implementation,
        seed,
        text_config=text,
        vision_config=dict(_QWEN3_VISION),
    )


@_seeded
def tiny_qwen3_5(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0, moe: bool = False) -> TinyQwenVL:
    """Qwen3.5 (or Qwen3.5-MoE: 4 experts, 2 per token, a gated shared expert): a hybrid decoder alternating
    Gated DeltaNet linear-attention and gated full-attention layers (so k=2 ranks with full layer 1 and prunes
    a linear and a full layer), partial interleaved M-RoPE, Qwen3-VL vision without DeepStack."""
    text = _qwen_text_kwargs(layers)
    text["head_dim"] = 16
    text["layer_types"] = ["linear_attention", "full_attention"] * (layers // 2) + ["linear_attention"] * (layers % 2)
    text["rope_parameters"] = {
        **text["rope_parameters"],
        "mrope_section": [2, 1, 1],
        "mrope_interleaved": True,
        "partial_rotary_factor": 0.5,
    }
    text |= {
        "linear_conv_kernel_dim": 4,
        "linear_key_head_dim": 8,
        "linear_value_head_dim": 8,
        "linear_num_key_heads": 2,
        "linear_num_value_heads": 4,
    }
    if moe:
        text |= {
            "num_experts": 4,
            "num_experts_per_tok": 2,
            "moe_intermediate_size": 32,
            "shared_expert_intermediate_size": 32,
        }
    vision = {key: value for key, value in _QWEN3_VISION.items() if key != "deepstack_visual_indexes"}
    return _grid_vlm(
        "Qwen3_5Moe" if moe else "Qwen3_5", attn_implementation, seed, text_config=text, vision_config=vision
    )


@_seeded
def tiny_glm4v(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0, variant: str = "glm4v") -> TinyQwenVL:
    """GLM-4.1V (``glm4v``), GLM-4.5V (``glm4v_moe``: 4 routed experts after one dense layer) or GLM-4.6V
    (``glm46v``): partial M-RoPE (half of each head rotated), q/k/v biases."""
    text = {
        "vocab_size": VOCAB,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": layers,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 1024,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 10000.0,
            "mrope_section": [2, 1, 1],
            "partial_rotary_factor": 0.5,
        },
        "pad_token_id": PAD_TOKEN,
    }
    if variant == "glm4v_moe":
        text |= {
            "moe_intermediate_size": 32,
            "num_experts_per_tok": 2,
            "n_routed_experts": 4,
            "first_k_dense_replace": 1,
        }
    return _grid_vlm(
        {"glm4v": "Glm4v", "glm4v_moe": "Glm4vMoe", "glm46v": "Glm46V"}[variant],
        attn_implementation,
        seed,
        text_config=text,
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "patch_size": 4,
            "image_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "out_hidden_size": 64,
        },
        image_start_token_id=122,
        image_end_token_id=123,
        video_start_token_id=124,
        video_end_token_id=125,
    )


def mm_prompt(
    n_before: int, segments: list[tuple[int, int]], n_after: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """A prompt of text and (placeholder id, count) segments separated by a text token, with mm_token_type_ids.

    Types are 1 for IMAGE_TOKEN and 2 for VIDEO_TOKEN, as Qwen-VL processors return them.
    """
    generator = torch.Generator().manual_seed(seed)

    def text(n: int) -> list[int]:
        return torch.randint(3, IMAGE_TOKEN, (n,), generator=generator).tolist()

    ids = text(n_before)
    for token, count in segments:
        ids += [token] * count + text(1)
    ids += text(n_after)
    ids = torch.tensor(ids)
    types = torch.zeros_like(ids)
    types[ids == IMAGE_TOKEN] = 1
    types[ids == VIDEO_TOKEN] = 2
    return ids, types


# --- LLaVA video families -----------------------------------------------------------------------------


@dataclass
class TinyVideoVLM(TinyVLM):
    """A tiny LLaVA-style VLM that takes videos as (B, frames, 3, s, s) pixels."""

    video_tokens_per_frame: int = 0
    video_extra_tokens: int = 0  # tokens after the frames (LLaVA-OneVision's newline)

    def pixel_values_videos(self, n_videos: int, frames: int, seed: int = 0) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        return torch.randn(n_videos, frames, 3, self.image_size, self.image_size, generator=generator)

    def video_token_count(self, frames: int) -> int:
        return frames * self.video_tokens_per_frame + self.video_extra_tokens


@_seeded
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
        _finish(model, attn_implementation, seed), image_tokens=16, image_size=16, video_tokens_per_frame=17
    )


@_seeded
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
        _finish(model, attn_implementation, seed), image_tokens=0, image_size=16, video_tokens_per_frame=4
    )


def qwen2_text_config(layers: int = 4, sliding_window: int | None = None, window_from: int = 2):
    """A tiny Qwen2 decoder; with ``sliding_window``, layers >= ``window_from`` attend within that window."""
    from transformers import Qwen2Config

    return Qwen2Config(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        use_sliding_window=sliding_window is not None,
        sliding_window=sliding_window,
        max_window_layers=window_from,
        pad_token_id=PAD_TOKEN,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=False,
    )


@_seeded
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
        _finish(model, attn_implementation, seed),
        image_tokens=0,
        image_size=16,
        video_tokens_per_frame=4,
        video_extra_tokens=1,
    )
    return vlm


# --- Gemma 3 --------------------------------------------------------------------------------------------


@_seeded
def tiny_gemma3(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0, sliding_window: int = 8) -> TinyVLM:
    """Gemma 3: sliding / full layer types with their own rotary bases, q/k norms, query_pre_attn_scalar
    (not head_dim), 4 tokens per image attending to each other bidirectionally."""
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, SiglipVisionConfig

    text = {
        "vocab_size": VOCAB,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": layers,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "query_pre_attn_scalar": 24,
        "sliding_window": sliding_window,
        "layer_types": ["sliding_attention", "sliding_attention", "full_attention", "sliding_attention"][:layers],
        "rope_parameters": {
            "full_attention": {"rope_type": "default", "rope_theta": 1_000_000.0},
            "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
        },
        "max_position_embeddings": 1024,
        "pad_token_id": PAD_TOKEN,
        "bos_token_id": 1,
        "eos_token_id": 2,
    }
    vision = SiglipVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=16, patch_size=4
    )
    config = Gemma3Config(
        text_config=text,
        vision_config=vision,
        mm_tokens_per_image=4,
        image_token_id=IMAGE_TOKEN,
        boi_token_id=122,
        eoi_token_id=123,
        tie_word_embeddings=False,
    )
    model = Gemma3ForConditionalGeneration(config)
    return TinyVLM(_finish(model, attn_implementation, seed), image_tokens=4, image_size=16)


# --- Gemma 4 --------------------------------------------------------------------------------------------


# Gemma 4 embeds every image / video / audio placeholder id as padding, a decoded one too, while the reference
# embeds decoded tokens as they are; placeholders outside the vocabulary can never be decoded.
GEMMA4_NO_AUDIO = VOCAB + 1
GEMMA4_IMAGE_TOKEN = VOCAB + 2
GEMMA4_VIDEO_TOKEN = VOCAB + 3


@dataclass
class TinyGemma4:
    """Gemma 4's vision inputs are patch rows with (x, y) patch positions, ``side x side`` patches per image
    (and per video frame), pooled to ``image_tokens`` soft tokens."""

    model: torch.nn.Module
    image_tokens: int
    patch_dim: int  # pixel values per patch row (3 * patch pixels**2)
    side: int

    def patches(self, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """(n, side**2, patch_dim) pixels in [0, 1) and (n, side**2, 2) row-major (x, y) patch positions."""
        generator = torch.Generator().manual_seed(seed)
        pixels = torch.rand(n, self.side**2, self.patch_dim, generator=generator)
        ys, xs = torch.meshgrid(torch.arange(self.side), torch.arange(self.side), indexing="ij")
        positions = torch.stack([xs.flatten(), ys.flatten()], dim=-1)
        return pixels, positions[None].expand(n, -1, -1).clone()


def gemma4_text_kwargs(layers: int = 4, sliding_window: int = 8) -> dict:
    """Sliding / full layers where full ones have their own head size (32 vs 16), key/value heads (2 vs 4,
    keys doubling as values: ``attention_k_eq_v``) and partial "proportional" rotary; vision blocks
    bidirectional on sliding layers."""
    types = ["sliding_attention", "full_attention"] * (layers // 2) + ["full_attention"] * (layers % 2)
    return {
        "vocab_size": VOCAB,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": layers,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "head_dim": 16,
        "global_head_dim": 32,
        "num_global_key_value_heads": 2,
        "attention_k_eq_v": True,
        "sliding_window": sliding_window,
        "layer_types": types,
        "rope_parameters": {
            "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
            "full_attention": {"rope_type": "proportional", "partial_rotary_factor": 0.5, "rope_theta": 1_000_000.0},
        },
        "use_bidirectional_attention": "vision",
        "final_logit_softcapping": 30.0,
        "num_kv_shared_layers": 0,
        "max_position_embeddings": 1024,
        "pad_token_id": PAD_TOKEN,
        "bos_token_id": 1,
        "eos_token_id": 2,
    }


@_seeded
def tiny_gemma4(
    attn_implementation: str = "sdpa",
    layers: int = 4,
    seed: int = 0,
    sliding_window: int = 8,
    moe: bool = False,
    **text,
) -> TinyGemma4:
    """Gemma 4 as in 26B-A4B (``moe``: a routed expert block next to the MLP) and 31B: no per-layer
    embeddings, no shared KV. 4x4 patches of 4 px pooled 2x2: 4 tokens per image or video frame."""
    from transformers import Gemma4Config, Gemma4ForConditionalGeneration

    text_config = {**gemma4_text_kwargs(layers, sliding_window), "hidden_size_per_layer_input": 0, **text}
    if moe:
        text_config.update(enable_moe_block=True, num_experts=4, top_k_experts=2, moe_intermediate_size=32)
    vision = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "patch_size": 4,
        "pooling_kernel_size": 2,
        "position_embedding_size": 16,
    }
    config = Gemma4Config(
        text_config=text_config,
        vision_config=vision,
        audio_config=None,
        image_token_id=GEMMA4_IMAGE_TOKEN,
        video_token_id=GEMMA4_VIDEO_TOKEN,
        boi_token_id=122,
        eoi_token_id=123,
        audio_token_id=GEMMA4_NO_AUDIO,
        boa_token_id=125,
        eoa_token_index=126,
        tie_word_embeddings=False,
    )
    model = Gemma4ForConditionalGeneration(config)
    return TinyGemma4(_finish(model, attn_implementation, seed), image_tokens=4, patch_dim=48, side=4)


# --- InternVL, Idefics3 / SmolVLM, Mistral 3 -----------------------------------------------------------


@_seeded
def tiny_internvl(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0) -> TinyVLM:
    """InternVL with a Qwen2 decoder: each 16x16 tile gives (16/4)^2 * 0.5^2 = 4 image tokens."""
    from transformers import InternVLConfig, InternVLForConditionalGeneration

    config = InternVLConfig(
        vision_config={
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "image_size": [16, 16],
            "patch_size": [4, 4],
        },
        text_config=qwen2_text_config(layers=layers).to_dict(),
        image_token_id=IMAGE_TOKEN,
        image_seq_length=4,
        downsample_ratio=0.5,
        tie_word_embeddings=False,
    )
    model = InternVLForConditionalGeneration(config)
    return TinyVLM(_finish(model, attn_implementation, seed), image_tokens=4, image_size=16)


@_seeded
def tiny_idefics3(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0, smolvlm: bool = False) -> TinyVLM:
    """Idefics3 (or SmolVLM) with a Llama decoder: a 16x16 image gives (16/4)^2 / 2^2 = 4 image tokens."""
    if smolvlm:
        from transformers import SmolVLMConfig as Config
        from transformers import SmolVLMForConditionalGeneration as Model
    else:
        from transformers import Idefics3Config as Config
        from transformers import Idefics3ForConditionalGeneration as Model

    config = Config(
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 16,
            "patch_size": 4,
        },
        text_config=text_config(layers=layers).to_dict(),
        image_token_id=IMAGE_TOKEN,
        scale_factor=2,
        tie_word_embeddings=False,
    )
    model = Model(config)
    return TinyVLM(_finish(model, attn_implementation, seed), image_tokens=4, image_size=16)


# --- VipLLaVA ------------------------------------------------------------------------------------------


@_seeded
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
    return TinyVLM(_finish(model, attn_implementation, seed), image_tokens=16, image_size=16)


# --- FastVLM --------------------------------------------------------------------------------------------


@_seeded
def tiny_fast_vlm(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0) -> TinyVLM:
    """FastVLM: LLaVA's layout around a Qwen2 decoder, fed a vision tower's flattened (B, C, h, w) feature map.

    The real tower is timm's FastViTHD (``timm_wrapper``), and timm is not a dependency: a tiny SAM ViT
    encoder stands in (an ``AutoModel`` with a (B, C, h, w) ``last_hidden_state`` that supports SDPA, as
    FastVLM's code needs; C = ``hidden_size``). A 16x16 image gives a 2x2 map: 4 image tokens. FastV only
    sees the decoder and the tokens.
    """
    from transformers import FastVlmConfig, FastVlmForConditionalGeneration, SamVisionConfig

    tower = SamVisionConfig(
        hidden_size=32,
        output_channels=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        mlp_dim=64,
        image_size=16,
        patch_size=8,
        global_attn_indexes=[0],
    )
    config = FastVlmConfig(
        vision_config=tower.to_dict(),
        text_config=qwen2_text_config(layers=layers).to_dict(),
        image_token_index=IMAGE_TOKEN,
        image_seq_length=4,
    )
    model = FastVlmForConditionalGeneration(config)
    return TinyVLM(_finish(model, attn_implementation, seed), image_tokens=4, image_size=16)


# --- PerceptionLM ---------------------------------------------------------------------------------------


@_seeded
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
        _finish(model, attn_implementation, seed), image_tokens=4, image_size=16, video_tokens_per_frame=4
    )


# --- Aya Vision / Command A Vision (Cohere2 decoder) ---------------------------------------------------


def cohere2_text_config(layers: int = 4, sliding_window: int = 8) -> dict:
    """A tiny Cohere2 decoder: sliding layers (RoPE, window) alternate with full layers (no RoPE at all)."""
    return {
        "model_type": "cohere2",
        "vocab_size": VOCAB,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": layers,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "sliding_window": sliding_window,
        "layer_types": ["sliding_attention", "full_attention"] * (layers // 2) + ["sliding_attention"] * (layers % 2),
        "max_position_embeddings": 1024,
        "pad_token_id": PAD_TOKEN,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "tie_word_embeddings": False,
    }


def _siglip(image_size: int = 16, patch_size: int = 4) -> dict:
    return {
        "model_type": "siglip_vision_model",
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "image_size": image_size,
        "patch_size": patch_size,
    }


@_seeded
def tiny_cohere_vlm(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0, variant: str = "aya_vision"):
    """Aya Vision (``aya_vision``) or Command A Vision (``cohere2_vision``): SigLIP features of a 16x16 tile,
    pixel-shuffled 2x2 into 4 image tokens, and a Cohere2 decoder (``cohere2_text_config``)."""
    import transformers

    common = {
        "vision_config": _siglip(),
        "text_config": cohere2_text_config(layers=layers),
        "downsample_factor": 2,
        "tie_word_embeddings": False,
    }
    if variant == "aya_vision":
        config = transformers.AyaVisionConfig(**common, image_token_index=IMAGE_TOKEN)
        model = transformers.AyaVisionForConditionalGeneration(config)
    else:
        config = transformers.Cohere2VisionConfig(**common, image_token_id=IMAGE_TOKEN, alignment_intermediate_size=128)
        model = transformers.Cohere2VisionForConditionalGeneration(config)
    return TinyVLM(_finish(model, attn_implementation, seed), image_tokens=4, image_size=16)


def mistral_text_config(layers: int, sliding_window: int | None):
    """A tiny Mistral decoder (Idefics2, Mistral 3): the window, when set, applies to every layer."""
    from transformers import MistralConfig

    return MistralConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=1024,
        sliding_window=sliding_window,
        pad_token_id=PAD_TOKEN,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=False,
    )


# --- Idefics2 -------------------------------------------------------------------------------------------


@_seeded
def tiny_idefics2(
    attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0, sliding_window: int | None = 12
) -> TinyVLM:
    """Idefics2: SigLIP-style patches resampled by a perceiver into 4 latent image tokens per image, and a
    Mistral decoder (by default window 12 on every layer) under ``model.text_model``; images as (B, images, 3, H, W)."""
    from transformers import Idefics2Config, Idefics2ForConditionalGeneration

    text = mistral_text_config(layers, sliding_window=sliding_window)
    config = Idefics2Config(
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 16,
            "patch_size": 4,
        },
        perceiver_config={
            "hidden_size": 64,
            "resampler_n_latents": 4,
            "resampler_depth": 1,
            "resampler_n_heads": 2,
            "resampler_head_dim": 16,
            "num_key_value_heads": 1,
        },
        text_config=text.to_dict(),
        image_token_id=IMAGE_TOKEN,
        tie_word_embeddings=False,
    )
    model = Idefics2ForConditionalGeneration(config)
    return TinyVLM(_finish(model, attn_implementation, seed), image_tokens=4, image_size=16)


# --- PaliGemma / PaliGemma 2 ---------------------------------------------------------------------------


@_seeded
def tiny_paligemma(
    attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0, gemma2: bool = False, sliding_window: int = 64
) -> TinyVLM:
    """PaliGemma: 16 SigLIP tokens per 16x16 image, then the prompt, all one bidirectional prefix.

    PaliGemma 1's Gemma decoder, or with ``gemma2`` PaliGemma 2's Gemma 2 decoder: sliding / full layers,
    attention-logit and final-logit soft-capping, ``query_pre_attn_scalar``. Gemma 2 has no SDPA in
    transformers (soft-capping): build it with ``attn_implementation="eager"``. The window (64) holds the
    test prompts' prefixes (FastV refuses longer ones, see ``fastv.families.paligemma``).
    """
    from transformers import Gemma2Config, GemmaConfig, PaliGemmaConfig, PaliGemmaForConditionalGeneration

    text = {
        "vocab_size": VOCAB,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": layers,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "max_position_embeddings": 1024,
        "pad_token_id": PAD_TOKEN,
        "bos_token_id": 1,
        "eos_token_id": 2,
    }
    if gemma2:
        extra = {"sliding_window": sliding_window, "query_pre_attn_scalar": 24}
        text = Gemma2Config(**text, **extra, attn_logit_softcapping=50.0, final_logit_softcapping=30.0)
    else:
        text = GemmaConfig(**text)
    config = PaliGemmaConfig(
        vision_config=_siglip(),
        text_config=text.to_dict(),
        image_token_index=IMAGE_TOKEN,
        projection_dim=64,
        hidden_size=64,
        vocab_size=VOCAB,
        tie_word_embeddings=False,
    )
    model = PaliGemmaForConditionalGeneration(config)
    return TinyVLM(_finish(model, attn_implementation, seed), image_tokens=16, image_size=16)


# --- Ovis2 ----------------------------------------------------------------------------------------------

OVIS2_INDICATORS = (122, 123, 124, 125, 126)  # visual indicator ids (image / tile delimiters), text-side tokens


@_seeded
def tiny_ovis2(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0) -> TinyVLM:
    """Ovis2: each 16x16 image's 16 patches merged 2x2 (``hidden_stride``) into 4 probabilistic visual
    tokens (softmax over a 64-entry visual vocabulary, embedded by a table), a Qwen2 decoder, and 5
    visual indicator tokens whose embeddings come from the same table (they are not image tokens)."""
    from transformers import Ovis2Config, Ovis2ForConditionalGeneration

    config = Ovis2Config(
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 16,
            "patch_size": 4,
            "vocab_size": 64,
            "hidden_stride": 2,
            "num_visual_indicator_tokens": len(OVIS2_INDICATORS),
        },
        text_config=qwen2_text_config(layers=layers).to_dict(),
        image_token_id=IMAGE_TOKEN,
        visual_indicator_token_ids=list(OVIS2_INDICATORS),
        vocab_size=VOCAB,
        hidden_size=64,
        tie_word_embeddings=False,
    )
    model = Ovis2ForConditionalGeneration(config)
    return TinyVLM(_finish(model, attn_implementation, seed), image_tokens=4, image_size=16)


OVIS2_5_MARKERS = (122, 123, 124, 125)  # Ovis2.5's image start / end and video start / end (indicator embeddings)


@_seeded
def tiny_ovis2_5(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0) -> TinyQwenVL:
    """Ovis2.5: packed 4x4-pixel patches with ``grid_thw`` through a 2-layer NaViT tower (window and full
    attention), merged 2x2 into probabilistic visual tokens (64-entry visual vocabulary), a Qwen3 decoder
    (q/k norms, 1-D positions); images and videos sit between start / end markers that get indicator
    embeddings. A (t, h, w) grid of patches gives t * h * w / 4 tokens."""
    from transformers import Ovis2_5Config, Ovis2_5ForConditionalGeneration

    image_start, image_end, video_start, video_end = OVIS2_5_MARKERS
    text = {
        "model_type": "qwen3",
        "vocab_size": VOCAB,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": layers,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "max_position_embeddings": 1024,
        "pad_token_id": PAD_TOKEN,
        "tie_word_embeddings": False,
    }
    vision = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "patch_size": 4,
        "image_size": 16,
        "spatial_merge_size": 2,
        "window_size": 16,
        "vocab_size": 64,
        "num_visual_indicator_tokens": 4,
        "temporal_patch_size": 1,
    }
    config = Ovis2_5Config(
        vision_config=vision,
        text_config=text,
        image_token_id=IMAGE_TOKEN,
        video_token_id=VIDEO_TOKEN,
        image_start_token_id=image_start,
        image_end_token_id=image_end,
        video_start_token_id=video_start,
        video_end_token_id=video_end,
    )
    model = Ovis2_5ForConditionalGeneration(config)
    return TinyQwenVL(_finish(model, attn_implementation, seed), patch_dim=3 * 4 * 4, merge=2)


LLAVA_ONEVISION1_5_MARKERS = (122, 123)  # LLaVA-OneVision-1.5's vision start / end, around every image and video


@_seeded
def tiny_llava_onevision1_5(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0) -> TinyQwenVL:
    """LLaVA-OneVision-1.5: packed 4x4-pixel patches (no temporal patch) with ``grid_thw`` through a 2-layer
    Rice ViT (2-D rotary, a class token per frame, each frame attending within itself), merged 2x2, a Qwen3
    decoder (q/k norms, 1-D positions); images and videos sit between vision start / end markers (text
    tokens). A (t, h, w) grid of patches gives t * h * w / 4 tokens."""
    from transformers import LlavaOnevision15Config, LlavaOnevision15ForConditionalGeneration

    start, end = LLAVA_ONEVISION1_5_MARKERS
    text = {
        "model_type": "qwen3",
        "vocab_size": VOCAB,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": layers,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "max_position_embeddings": 1024,
        "pad_token_id": PAD_TOKEN,
        "tie_word_embeddings": False,
    }
    vision = {
        "depth": 2,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "patch_size": 4,
        "spatial_merge_size": 2,
        "out_hidden_size": 64,
    }
    config = LlavaOnevision15Config(
        vision_config=vision,
        text_config=text,
        image_token_id=IMAGE_TOKEN,
        video_token_id=VIDEO_TOKEN,
        vision_start_token_id=start,
        vision_end_token_id=end,
    )
    model = LlavaOnevision15ForConditionalGeneration(config)
    return TinyQwenVL(_finish(model, attn_implementation, seed), patch_dim=3 * 4 * 4, merge=2)


IMAGE_BREAK_TOKEN = 124  # Pixtral's [IMG_BREAK] / [IMG_END]: text tokens between an image's rows
IMAGE_END_TOKEN = 125


@_seeded
def tiny_mistral3(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0, sliding_window: int | None = 12):
    """Mistral 3 (Pixtral vision tower, Mistral decoder whose window applies to every layer).

    A (h, w)-pixel image gives (h/8) x (w/8) image tokens; ``mistral3_image`` lays them out in rows
    closed by [IMG_BREAK] and the last by [IMG_END], as the processor does.
    """
    from transformers import Mistral3Config, Mistral3ForConditionalGeneration

    text = mistral_text_config(layers, sliding_window)
    config = Mistral3Config(
        vision_config={
            "model_type": "pixtral",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 4,
            "head_dim": 16,
        },
        text_config=text.to_dict(),
        image_token_index=IMAGE_TOKEN,
        spatial_merge_size=2,
        vision_feature_layer=-1,
        tie_word_embeddings=False,
    )
    model = Mistral3ForConditionalGeneration(config)
    return TinyVLM(_finish(model, attn_implementation, seed), image_tokens=0, image_size=32)


def mistral3_image_ids(size: tuple[int, int]) -> list[int]:
    """An image's placeholder ids: rows of image tokens, each closed by [IMG_BREAK], the last by [IMG_END]."""
    rows, cols = size[0] // 8, size[1] // 8
    ids: list[int] = []
    for row in range(rows):
        ids += [IMAGE_TOKEN] * cols + [IMAGE_END_TOKEN if row == rows - 1 else IMAGE_BREAK_TOKEN]
    return ids


# --- Qwen2.5-Omni / Qwen3-Omni thinkers: images, videos and audio --------------------------------------

AUDIO_TOKEN = 124  # the thinkers' <|AUDIO|> placeholder, between audio start / end markers
AUDIO_START_TOKEN = 125
AUDIO_END_TOKEN = 126


@dataclass
class TinyQwenOmni(TinyQwenVL):
    """A tiny Omni thinker: Qwen-VL style patches and grids, plus log-mel audio features."""

    mel_bins: int = 8

    def audio(self, frames: int, seed: int = 0) -> tuple[torch.Tensor, int]:
        """Log-mel features (mel_bins, frames) of one clip and the number of audio tokens the model makes of it
        (counted by its own audio tower; the thinker's ``get_audio_features``, which every release has)."""
        generator = torch.Generator().manual_seed(seed)
        features = torch.randn(self.mel_bins, frames, generator=generator)
        with torch.no_grad():
            out = self.model.get_audio_features(features[None], torch.ones(1, frames, dtype=torch.long))
        return features, int(out.last_hidden_state.shape[0])


def _omni_audio(**extra) -> dict:
    return {
        "num_mel_bins": 8,
        "encoder_layers": 1,
        "encoder_attention_heads": 2,
        "encoder_ffn_dim": 64,
        "d_model": 32,
        "max_source_positions": 64,
        "output_dim": 64,
        **extra,
    }


def _omni(name: str, attn_implementation: str, seed: int, **config) -> TinyQwenOmni:
    markers = {"audio_start_token_id": AUDIO_START_TOKEN, "audio_end_token_id": AUDIO_END_TOKEN}
    vlm = _grid_vlm(name, attn_implementation, seed, audio_token_id=AUDIO_TOKEN, **markers, **config)
    return TinyQwenOmni(vlm.model, vlm.patch_dim, vlm.merge)


@_seeded
def tiny_qwen2_5_omni(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0) -> TinyQwenOmni:
    """The Qwen2.5-Omni thinker: Qwen2.5-VL's decoder, vision tower and M-RoPE, plus a Whisper-style audio
    tower (a clip of f mel frames gives ((f - 1) // 2 + 1 - 2) // 2 + 1 audio tokens)."""
    return _omni(
        "Qwen2_5OmniThinker",
        attn_implementation,
        seed,
        text_config=_qwen_text_kwargs(layers),
        vision_config=dict(_QWEN25_VISION),
        audio_config=_omni_audio(),
    )


@_seeded
def tiny_qwen3_omni(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0) -> TinyQwenOmni:
    """The Qwen3-Omni-MoE thinker (4 experts, 2 per token): Qwen3-VL's q/k norms, interleaved M-RoPE and
    DeepStack (features added after decoder layers 0-2), plus a conv-downsampling audio tower."""
    text = _qwen_text_kwargs(layers)
    text["head_dim"] = 16
    text["rope_parameters"] = {**text["rope_parameters"], "mrope_section": [4, 2, 2], "interleaved": True}
    text |= {"num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32, "decoder_sparse_step": 1}
    return _omni(
        "Qwen3OmniMoeThinker",
        attn_implementation,
        seed,
        text_config=text,
        vision_config=dict(_QWEN3_VISION),
        audio_config=_omni_audio(downsample_hidden_size=8),
    )


# --- LFM2-VL (hybrid short-convolution decoder) ----------------------------------------------------------

LFM2_LAYER_TYPES = ("conv", "full_attention", "conv", "full_attention")


@dataclass
class TinyNaFlexVLM:
    """A tiny VLM fed patch rows of images at their own (h, w) in patches: LFM2-VL's SigLIP2 NaFlex tower
    (patches padded to ``max_patches`` per image) or MiniCPM-V 4.6's packed NaViT tower (one row of patches)."""

    model: torch.nn.Module
    patch: int  # pixels per patch side
    tokens_per_patch_block: int  # patches per image token (LFM2-VL: 2x2 unshuffle; MiniCPM-V: two 2x2 merges)
    max_patches: int = 64

    def tokens(self, size: tuple[int, int]) -> int:
        return size[0] * size[1] // self.tokens_per_patch_block

    def lfm2_images(self, sizes: list[tuple[int, int]], seed: int = 0) -> dict:
        """pixel_values (images, max_patches, 3*p*p), their pixel_attention_mask and spatial_shapes."""
        generator = torch.Generator().manual_seed(seed)
        pixels = torch.randn(len(sizes), self.max_patches, 3 * self.patch**2, generator=generator)
        mask = torch.zeros(len(sizes), self.max_patches, dtype=torch.long)
        for row, (h, w) in enumerate(sizes):
            mask[row, : h * w] = 1
        pixels = pixels * mask[..., None]
        return {"pixel_values": pixels, "pixel_attention_mask": mask, "spatial_shapes": torch.tensor(sizes)}

    def packed_patches(self, sizes: list[tuple[int, int]], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """MiniCPM-V's NaViT packing: every image's patches side by side, (1, 3, p, p * patches), and the sizes."""
        generator = torch.Generator().manual_seed(seed)
        n = sum(h * w for h, w in sizes)
        return torch.randn(1, 3, self.patch, self.patch * n, generator=generator), torch.tensor(sizes)


@_seeded
def tiny_lfm2_vl(
    attn_implementation: str = "sdpa",
    seed: int = 0,
    moe: bool = False,
    layer_types: tuple[str, ...] = LFM2_LAYER_TYPES,
) -> TinyNaFlexVLM:
    """LFM2-VL: SigLIP2 NaFlex patches, 2x2 pixel-unshuffled into one image token each, and an LFM2 decoder
    (or LFM2-MoE: 4 experts, 2 per token, after one dense layer) mixing gated short-convolution layers
    (kernel 3) and full-attention layers per ``layer_types`` (by default conv / full alternating, so k=2
    ranks with full layer 1 and prunes a conv and a full layer)."""
    from transformers import Lfm2VlConfig, Lfm2VlForConditionalGeneration

    text = {
        "model_type": "lfm2_moe" if moe else "lfm2",
        "vocab_size": VOCAB,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": len(layer_types),
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 1024,
        "layer_types": list(layer_types),
        "conv_L_cache": 3,
        "pad_token_id": PAD_TOKEN,
        "tie_word_embeddings": False,
    }
    if moe:
        text |= {"num_dense_layers": 1, "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32}
    else:
        text["block_auto_adjust_ff_dim"] = False
    config = Lfm2VlConfig(
        vision_config={
            "model_type": "siglip2_vision_model",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_patches": 64,
            "patch_size": 4,
        },
        text_config=text,
        image_token_id=IMAGE_TOKEN,
        projector_hidden_size=32,
        downsample_factor=2,
        tie_word_embeddings=False,
    )
    model = Lfm2VlForConditionalGeneration(config)
    return TinyNaFlexVLM(_finish(model, attn_implementation, seed), patch=4, tokens_per_patch_block=4)


# --- MiniCPM-V 4.6 (Qwen3.5 hybrid decoder) --------------------------------------------------------------


@_seeded
def tiny_minicpmv4_6(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0) -> TinyNaFlexVLM:
    """MiniCPM-V 4.6: a NaViT vision tower whose window-attention merger (after block 0) and final merger each
    merge 2x2 patches (an (h, w)-patch image gives h * w / 16 tokens), and Qwen3.5's hybrid text decoder
    (Gated DeltaNet / gated full attention alternating) with plain 1-D positions."""
    from transformers import MiniCPMV4_6Config, MiniCPMV4_6ForConditionalGeneration

    text = _qwen_text_kwargs(layers)
    text |= {
        "model_type": "qwen3_5_text",
        "head_dim": 16,
        "layer_types": ["linear_attention", "full_attention"] * (layers // 2) + ["linear_attention"] * (layers % 2),
        "linear_conv_kernel_dim": 4,
        "linear_key_head_dim": 8,
        "linear_value_head_dim": 8,
        "linear_num_key_heads": 2,
        "linear_num_value_heads": 4,
        "tie_word_embeddings": False,
    }
    text["rope_parameters"] = {
        **text["rope_parameters"],
        "mrope_section": [2, 1, 1],
        "mrope_interleaved": True,
        "partial_rotary_factor": 0.5,
    }
    config = MiniCPMV4_6Config(
        text_config=text,
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 4,
        },
        insert_layer_id=0,
        image_token_id=IMAGE_TOKEN,
        video_token_id=VIDEO_TOKEN,
        tie_word_embeddings=False,
    )
    model = MiniCPMV4_6ForConditionalGeneration(config)
    return TinyNaFlexVLM(_finish(model, attn_implementation, seed), patch=4, tokens_per_patch_block=16)


# --- HunYuan-VL -----------------------------------------------------------------------------------------

HUNYUAN_IMAGE_START, HUNYUAN_IMAGE_END = 122, 123  # <img_start> / <img_end>: text tokens around each image


@dataclass
class TinyHunYuanVL:
    """A tiny HunYuan-VL and helpers to make one image's flattened patches and grid."""

    model: torch.nn.Module
    patch: int  # pixels per patch side
    merge: int  # spatial merge size

    def image(self, grid: tuple[int, int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Flattened patches, grid_thw (1, 3) and placeholder count of one image of ``grid`` (h, w) patches:
        a begin row, each merged grid row plus a newline row, an end row."""
        h, w = grid
        generator = torch.Generator().manual_seed(seed)
        patches = torch.randn(h * w, 3 * self.patch * self.patch, generator=generator)
        return patches, torch.tensor([[1, h, w]]), (h // self.merge) * (w // self.merge + 1) + 2


@_seeded
def tiny_hunyuan_vl(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0) -> TinyHunYuanVL:
    """HunYuan-VL: a HunYuan dense decoder with 4-axis XD-RoPE (position, width, height, image index),
    queries and keys rotated before their per-head RMS norms; a ViT whose patch merger adds begin, end
    and per-row newline features around each image's merged 2x2 patches."""
    from transformers import HunYuanVLConfig, HunYuanVLForConditionalGeneration

    text = {
        "vocab_size": VOCAB,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": layers,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "max_position_embeddings": 1024,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 2, 2, 2]},
        "pad_token_id": PAD_TOKEN,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "tie_word_embeddings": False,
    }
    vision = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "patch_size": 4,
        "spatial_merge_size": 2,
        "max_image_size": 32,
    }
    config = HunYuanVLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=IMAGE_TOKEN,
        im_start_id=HUNYUAN_IMAGE_START,
        im_end_id=HUNYUAN_IMAGE_END,
        im_newline_id=124,
        tie_word_embeddings=False,
    )
    model = HunYuanVLForConditionalGeneration(config)
    return TinyHunYuanVL(_finish(model, attn_implementation, seed), patch=4, merge=2)


# --- Molmo2 ---------------------------------------------------------------------------------------------

MOLMO2_MARKERS = {  # config attribute -> tiny token id (text tokens around image views and video frames)
    "image_start_token_id": 122,
    "image_end_token_id": 123,
    "low_res_image_start_token_id": 124,
    "frame_start_token_id": 125,
    "frame_end_token_id": 126,
}
MOLMO2_COLUMN = 127  # <im_col>, closing each row of patches in an image view (not in the config)


@dataclass
class TinyMolmo2:
    """A tiny Molmo2 and helpers to make the processor's crops, pooling indices, grids and token layout.

    Every crop is 16x16 pixels, 4x4 patches of 4 pixels; every visual token pools 4 patches.
    """

    model: torch.nn.Module
    patches_per_crop: int = 16
    patch_dim: int = 3 * 4 * 4

    def image(self, low: tuple[int, int], high: tuple[int, int], seed: int = 0) -> tuple[dict, list[int]]:
        """One image: a low-res view of ``low`` (rows, cols) tokens pooled from crop 0 and a high-res view of
        ``high`` tokens pooled from the next crops; its inputs and token ids (views closed by <im_end>,
        rows closed by <im_col>)."""
        (rh, rw), (h, w) = low, high
        assert rh * rw * 4 <= self.patches_per_crop
        crops = 1 + -(-h * w * 4 // self.patches_per_crop)
        pooling = torch.cat([torch.arange(rh * rw * 4), self.patches_per_crop + torch.arange(h * w * 4)]).view(-1, 4)
        generator = torch.Generator().manual_seed(seed)
        inputs = {
            "pixel_values": torch.randn(crops, self.patches_per_crop, self.patch_dim, generator=generator),
            "image_token_pooling": pooling,
            "image_grids": torch.tensor([[rh, rw, h, w]]),
        }
        m = MOLMO2_MARKERS
        ids = [m["low_res_image_start_token_id"]] + ([IMAGE_TOKEN] * rw + [MOLMO2_COLUMN]) * rh
        ids += [m["image_end_token_id"], m["image_start_token_id"]] + ([IMAGE_TOKEN] * w + [MOLMO2_COLUMN]) * h
        return inputs, [*ids, m["image_end_token_id"]]

    def video(self, frames: int, rows: int, cols: int, seed: int = 0) -> tuple[dict, list[list[int]]]:
        """One video of ``frames`` frames of (rows, cols) tokens (each pooled from its own frame); its inputs
        and each frame's token ids (<frame_start>, patches, <frame_end>; no column tokens)."""
        assert rows * cols * 4 <= self.patches_per_crop
        pooling = torch.stack(
            [self.patches_per_crop * f + 4 * t + torch.arange(4) for f in range(frames) for t in range(rows * cols)]
        )
        generator = torch.Generator().manual_seed(seed)
        inputs = {
            "pixel_values_videos": torch.randn(frames, self.patches_per_crop, self.patch_dim, generator=generator),
            "video_token_pooling": pooling,
            "video_grids": torch.tensor([[frames, rows, cols]]),
        }
        m = MOLMO2_MARKERS
        frame = [m["frame_start_token_id"]] + [IMAGE_TOKEN] * (rows * cols) + [m["frame_end_token_id"]]
        return inputs, [list(frame) for _ in range(frames)]


@_seeded
def tiny_molmo2(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0, variant: str = "molmo2"):
    """Molmo2 as on Qwen3 (``variant="molmo2"``: per-head q/k norms, pre-norm layers) or on OLMo
    (``"molmo2_o"``: q/k norms over the whole projection, post-norm layers, scaled RoPE on layers 1 and 3
    only); a ViT whose features of two layers are pooled (4 patches per token) by a cross-attention adapter."""
    from transformers import Molmo2Config, Molmo2ForConditionalGeneration

    text = {
        "vocab_size": VOCAB,
        "additional_vocab_size": 0,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": layers,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "max_position_embeddings": 1024,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
        "qk_norm_type": "qwen3",
        "pad_token_id": PAD_TOKEN,
        "bos_token_id": 1,
        "eos_token_id": 2,
    }
    if variant == "molmo2_o":
        text |= {
            "qk_norm_type": "olmo",
            "norm_after": True,
            "rope_parameters": {"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0},
            "rope_scaling_layers": [i for i in range(layers) if i % 2],
        }
    config = Molmo2Config(
        text_config=text,
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "head_dim": 16,
            "patch_size": 4,
            "image_size": [16, 16],
        },
        adapter_config={
            "hidden_size": 32,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "head_dim": 16,
            "intermediate_size": 64,
            "text_hidden_size": 64,
            "vision_feature_layer": [-1, 0],
        },
        image_patch_id=IMAGE_TOKEN,
        **MOLMO2_MARKERS,
    )
    model = Molmo2ForConditionalGeneration(config)
    return TinyMolmo2(_finish(model, attn_implementation, seed))
