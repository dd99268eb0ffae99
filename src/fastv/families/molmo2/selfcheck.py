"""The self-check of this family: its tiny random-weight model(s) built from a config (no download),
its prompt builder(s) and its doctor case(s)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fastv.compat import molmo2_concat_images
from fastv.selfcheck.case import Case
from fastv.selfcheck.prompts import text_tokens
from fastv.selfcheck.tiny import IMAGE_TOKEN, PAD_TOKEN, VOCAB, finish, left_pad, seeded

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


@seeded
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
    return TinyMolmo2(finish(model, attn_implementation, seed))


def molmo2_prompt(
    vlm,
    images: tuple[tuple[tuple[int, int], tuple[int, int]], ...] = (((2, 2), (2, 3)),),
    video: tuple[int, int, int] | None = None,
    seed: int = 0,
    before: int = 3,
) -> dict:
    """Molmo2: BOS, text, then each image ((low-res rows, cols), (high-res rows, cols)) and a text token, or
    a ``video`` (frames, rows, cols) with a timestamp token before each frame, then text; the crops of all
    images concatenated in this release's convention (``compat.molmo2_concat_images``), and the processor's mm_token_type_ids (1 on
    patches, column tokens and every view / frame marker)."""
    from fastv.families.molmo2.selfcheck import MOLMO2_COLUMN, MOLMO2_MARKERS

    if images and video:
        raise ValueError("transformers' Molmo2 takes images or a video per prompt, not both")
    text = text_tokens(seed)
    ids, inputs = [1, *text(before)], {}
    views = []
    for i, (low, high) in enumerate(images):
        image, tokens = vlm.image(low, high, seed=seed + i)
        views.append(image)
        ids += tokens + text(1)
    if images:
        inputs |= molmo2_concat_images(views) | {"image_grids": torch.cat([v["image_grids"] for v in views])}
    if video is not None:
        clip, frames = vlm.video(*video, seed=seed + 100)
        inputs |= clip
        for frame in frames:
            ids += text(1) + frame
    ids = torch.tensor(ids + text(4))[None]
    markers = torch.tensor([IMAGE_TOKEN, MOLMO2_COLUMN, *MOLMO2_MARKERS.values()])
    types = torch.isin(ids, markers).long()
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "mm_token_type_ids": types, **inputs}


def molmo2_batch(singles: list[dict]) -> dict:
    """A left-padded batch of image ``molmo2_prompt``s: crops and pooling concatenated in this release's
    convention (``compat.molmo2_concat_images``), grids concatenated, types padded with 0."""
    ids, mask = left_pad([s["input_ids"][0] for s in singles])
    types, _ = left_pad([s["mm_token_type_ids"][0] for s in singles])
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "mm_token_type_ids": types,
        **molmo2_concat_images(singles),
        "image_grids": torch.cat([s["image_grids"] for s in singles]),
    }


def _molmo2_case(attn: str) -> Case:
    """Molmo2 on OLMo (q/k norms over the whole projection, post-norm, per-layer rotary): two images, every
    image-typed token in one bidirectional block."""
    vlm = tiny_molmo2(attn, variant="molmo2_o")
    inputs = molmo2_prompt(vlm, (((2, 2), (2, 3)), ((2, 1), (1, 2))))
    blocks = torch.where(inputs["mm_token_type_ids"][0] == 1, 0, -1)
    return Case(vlm.model, inputs, inputs["input_ids"][0] == IMAGE_TOKEN, blocks=blocks)


CASES = {"molmo2": _molmo2_case}
