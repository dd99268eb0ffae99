"""The self-check of this family: its tiny random-weight model(s) built from a config (no download),
its prompt builder(s) and its doctor case(s)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fastv.selfcheck.case import Case, case_of
from fastv.selfcheck.prompts import text_tokens
from fastv.selfcheck.tiny import IMAGE_TOKEN, PAD_TOKEN, VOCAB, finish, left_pad, seeded

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


@seeded
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
    return TinyHunYuanVL(finish(model, attn_implementation, seed), patch=4, merge=2)


def hunyuan_vl_prompt(vlm, grids: tuple[tuple[int, int], ...] = ((4, 6),), seed: int = 0, before: int = 3) -> dict:
    """HunYuan-VL: text, then per image of ``grids`` ((h, w) patches) <img_start>, its placeholders (begin,
    merged rows each with a newline, end), <img_end> and a text token, then text; with the mm_token_type_ids
    (1 on the placeholders) its processor returns."""
    from fastv.families.hunyuan_vl.selfcheck import HUNYUAN_IMAGE_END, HUNYUAN_IMAGE_START

    text = text_tokens(seed)
    ids, patches, thw = text(before), [], []
    for i, grid in enumerate(grids):
        pixels, grid_thw, count = vlm.image(grid, seed=seed + i)
        ids += [HUNYUAN_IMAGE_START] + [IMAGE_TOKEN] * count + [HUNYUAN_IMAGE_END] + text(1)
        patches.append(pixels)
        thw.append(grid_thw)
    ids = torch.tensor(ids + text(4))[None]
    return {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "mm_token_type_ids": (ids == IMAGE_TOKEN).long(),
        "pixel_values": torch.cat(patches),
        "image_grid_thw": torch.cat(thw),
    }


def hunyuan_prompt_positions(vlm, inputs: dict) -> torch.Tensor:
    """(axes, B, n) XD-RoPE ids of a prompt from the model's own ``get_rope_index``."""
    keys = ("input_ids", "mm_token_type_ids", "image_grid_thw", "attention_mask")
    return vlm.model.model.get_rope_index(**{key: inputs[key] for key in keys})[0]


def hunyuan_positions(vlm, inputs: dict):
    """positions(n_total): XD-RoPE ids (axes, 1, n_total) of the prompt plus decoded tokens; decoded tokens
    continue after the last prompt position on every axis, as ``generate`` extends them."""
    prompt = hunyuan_prompt_positions(vlm, inputs)

    def positions(n_total: int) -> torch.Tensor:
        tail = prompt[..., -1:] + 1 + torch.arange(n_total - prompt.shape[-1])
        return torch.cat([prompt, tail], dim=-1)

    return positions


def hunyuan_vl_batch(vlm, singles: list[dict]) -> dict:
    """A left-padded batch of ``hunyuan_vl_prompt``s with explicit ``position_ids``: each row's own, as if
    alone. (transformers' ``get_rope_index`` numbers images across the whole batch, so without them a row's
    image-index axis depends on the rows before it, and the unpatched model's batch differs from its
    single runs.)"""
    ids, mask = left_pad([s["input_ids"][0] for s in singles])
    types, _ = left_pad([s["mm_token_type_ids"][0] for s in singles])
    rows = [hunyuan_prompt_positions(vlm, s)[:, 0] for s in singles]
    positions = torch.zeros(rows[0].shape[0], len(rows), ids.shape[1], dtype=torch.long)
    for b, row in enumerate(rows):
        positions[:, b, ids.shape[1] - row.shape[1] :] = row
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "mm_token_type_ids": types,
        "position_ids": positions,
        "pixel_values": torch.cat([s["pixel_values"] for s in singles]),
        "image_grid_thw": torch.cat([s["image_grid_thw"] for s in singles]),
    }


def _hunyuan_vl_case(attn: str) -> Case:
    """HunYuan-VL: two images of different sizes; the reference needs the model's own XD-RoPE positions."""
    vlm = tiny_hunyuan_vl(attn)
    inputs = hunyuan_vl_prompt(vlm, ((4, 6), (4, 4)))
    return case_of(vlm, inputs, positions=hunyuan_positions(vlm, inputs))


CASES = {"hunyuan_vl": _hunyuan_vl_case}
