"""The self-check of this family: its tiny random-weight model(s) built from a config (no download),
its prompt builder(s) and its doctor case(s)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fastv import compat
from fastv.compat import gemma4_video_inputs
from fastv.selfcheck.case import Case
from fastv.selfcheck.tiny import IMAGE_TOKEN, PAD_TOKEN, VIDEO_TOKEN, VOCAB, finish, left_pad, mm_prompt, seeded

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


@seeded
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
    return TinyGemma4(finish(model, attn_implementation, seed), image_tokens=4, patch_dim=48, side=4)


def gemma4_prompt(
    vlm: TinyGemma4, n_images: int = 3, frames: int = 0, seed: int = 0, before: int = 3, types: bool = True
) -> dict:
    """Images, then a video of ``frames`` frames (one text token, the timestamp, between frames), with the
    ``mm_token_type_ids`` Gemma 4's processor returns (1 image, 2 video: they mark the bidirectional blocks)."""
    segments = [(IMAGE_TOKEN, vlm.image_tokens)] * n_images + [(VIDEO_TOKEN, vlm.image_tokens)] * frames
    ids, token_types = mm_prompt(before, segments, 5, seed=seed)
    ids = ids.masked_fill(ids == IMAGE_TOKEN, GEMMA4_IMAGE_TOKEN).masked_fill(ids == VIDEO_TOKEN, GEMMA4_VIDEO_TOKEN)
    inputs = {"input_ids": ids[None], "attention_mask": torch.ones_like(ids[None])}
    if types:
        inputs["mm_token_type_ids"] = token_types[None]
    if n_images:
        pixels, positions = vlm.patches(n_images, seed)
        inputs.update(pixel_values=pixels, image_position_ids=positions)
    if frames:
        inputs.update(gemma4_video_inputs(*vlm.patches(frames, seed + 100)))
    return inputs


def gemma4_batch(singles: list[dict]) -> dict:
    """A left-padded batch of image-only ``gemma4_prompt``s: patches concatenated in order, types padded with 0."""
    ids, mask = left_pad([s["input_ids"][0] for s in singles])
    types, _ = left_pad([s["mm_token_type_ids"][0] for s in singles])
    types = types.masked_fill(mask == 0, 0)
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "mm_token_type_ids": types,
        "pixel_values": torch.cat([s["pixel_values"] for s in singles]),
        "image_position_ids": torch.cat([s["image_position_ids"] for s in singles]),
    }


def gemma4_visual(inputs: dict) -> torch.Tensor:
    """(n,) bool: the image and video placeholders of a ``gemma4_prompt``."""
    ids = inputs["input_ids"][0]
    return (ids == GEMMA4_IMAGE_TOKEN) | (ids == GEMMA4_VIDEO_TOKEN)


def vision_runs(inputs: dict) -> torch.Tensor:
    """(n,) ids of contiguous image / video token runs (one per image or frame) of a ``gemma4_prompt``, -1
    elsewhere, by hand."""
    ids = inputs["input_ids"][0]
    vision = gemma4_visual(inputs)
    starts = vision & ~torch.cat([torch.tensor([False], device=ids.device), vision[:-1]])
    return torch.where(vision, torch.cumsum(starts.long(), 0) - 1, torch.tensor(-1, device=ids.device))


def _gemma4_case(attn: str) -> Case:
    """Images and a 2-frame video (where the release's Gemma 4 can encode videos): bidirectional blocks on
    sliding layers only."""
    vlm = tiny_gemma4(attn)
    inputs = gemma4_prompt(vlm, frames=2 if compat.gemma4_runs_videos() else 0)
    return Case(vlm.model, inputs, gemma4_visual(inputs), blocks=vision_runs(inputs))


CASES = {"gemma4": _gemma4_case}
