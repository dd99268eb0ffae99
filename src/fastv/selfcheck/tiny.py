"""Tiny VLMs of each supported family plus prompt builders, for tests (random weights, CPU, fp32)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch
from transformers import CLIPVisionConfig, LlamaConfig

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


def seeded(build: Callable[..., Built]) -> Callable[..., Built]:
    """Seed the global RNG with the builder's ``seed`` before it constructs the model: parameters the
    constructor draws and ``finish`` does not redraw (conv patch embeddings, class embeddings, fused
    experts) are then the same on every build, so the doctor and the tests see one model per seed."""
    signature = inspect.signature(build)

    @functools.wraps(build)
    def wrapper(*args, **kwargs) -> Built:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        torch.manual_seed(bound.arguments["seed"])
        return build(*args, **kwargs)

    return wrapper


def finish(model: torch.nn.Module, attn_implementation: str, seed: int) -> torch.nn.Module:
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


def qwen_text_kwargs(layers: int, hidden: int = 64, heads: int = 4, kv_heads: int = 2) -> dict:
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


def grid_vlm(name: str, attn_implementation: str, seed: int, **config) -> TinyQwenVL:
    """A VLM fed flattened patches + ``grid_thw`` (Qwen-VL, GLM-4V) from transformers' ``{name}Config``:
    our image / video token ids, Qwen's vision start / end markers unless ``config`` names its own."""
    import transformers

    markers = {} if "image_start_token_id" in config else {"vision_start_token_id": 122, "vision_end_token_id": 123}
    options = {"image_token_id": IMAGE_TOKEN, "video_token_id": VIDEO_TOKEN, "tie_word_embeddings": False}
    config_class = getattr(transformers, f"{name}Config")
    model = getattr(transformers, f"{name}ForConditionalGeneration")(config_class(**options, **markers, **config))
    return TinyQwenVL(finish(model, attn_implementation, seed), patch_dim=3 * 2 * 4 * 4, merge=2)


# The Qwen2.5-VL vision tower (window attention, one full-attention block), shared by the Qwen2.5-VL and
# Qwen2.5-Omni tiny models.
QWEN25_VISION = {
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
QWEN3_VISION = {
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


def siglip_config(image_size: int = 16, patch_size: int = 4) -> dict:
    return {
        "model_type": "siglip_vision_model",
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "image_size": image_size,
        "patch_size": patch_size,
    }


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
