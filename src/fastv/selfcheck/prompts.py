"""One unpadded prompt per kind of tiny VLM (``fastv.selfcheck.tiny``), shared by the tests and the doctor."""

from __future__ import annotations

import torch

from fastv.compat import generate_expands_multi_image_prompts
from fastv.selfcheck.tiny import IMAGE_TOKEN, VIDEO_TOKEN, TinyQwenVL, TinyVLM, left_pad, mm_prompt, prompt_ids


def copied_prompt_images() -> int:
    """Images per prompt for checks that let ``generate`` copy the prompt (beams, ``num_return_sequences``):
    two, or one where this release's ``generate`` copies a several-image prompt wrongly (see compat)."""
    return 2 if generate_expands_multi_image_prompts() else 1


def image_prompt(vlm: TinyVLM, n_images: int = 2, seed: int = 0, before: int = 3, stacked: bool = False) -> dict:
    """Text, ``n_images`` fixed-grid images, text. ``stacked``: pixels as (1, images, 3, H, W) (Idefics3)."""
    ids = prompt_ids(before, [vlm.image_tokens] * n_images, 5, seed=seed)[None]
    pixels = vlm.pixel_values(n_images, seed)
    return {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "pixel_values": pixels[None] if stacked else pixels,
    }


def image_batch(singles: list[dict]) -> dict:
    """A left-padded batch of fixed-grid image prompts (``image_prompt``), pixels concatenated in order."""
    ids, mask = left_pad([s["input_ids"][0] for s in singles])
    return {"input_ids": ids, "attention_mask": mask, "pixel_values": torch.cat([s["pixel_values"] for s in singles])}


def image_runs(inputs: dict) -> torch.Tensor:
    """(n,) ids of contiguous image-token runs (one per image), -1 elsewhere, written out by hand."""
    image = inputs["input_ids"][0] == IMAGE_TOKEN
    starts = image & ~torch.cat([torch.tensor([False], device=image.device), image[:-1]])
    return torch.where(image, torch.cumsum(starts.long(), 0) - 1, torch.tensor(-1, device=image.device))


def qwen3_prompt(
    vlm: TinyQwenVL, image_grid=(1, 4, 6), video_grid=(2, 4, 4), seed: int = 0, before: int = 3, after: int = 4
) -> dict:
    """Qwen3-VL: like ``qwen_prompt``, but every video frame is its own run of video tokens with a text
    token (the processor's timestamp) before it."""
    return grid_prompt(vlm, image_grid, video_grid, seed, before, after, run_per_frame=True)


def grid_prompt(vlm: TinyQwenVL, image_grid, video_grid, seed: int, before: int, after: int, run_per_frame: bool):
    parts, inputs = [], {}
    if image_grid is not None:
        patches, grid, count = vlm.visual(image_grid, seed=seed)
        parts.append((IMAGE_TOKEN, count))
        inputs |= {"pixel_values": patches, "image_grid_thw": grid}
    if video_grid is not None:
        patches, grid, count = vlm.visual(video_grid, seed=seed + 100)
        frames = int(video_grid[0]) if run_per_frame else 1  # temporal patches, one run each
        parts += [(VIDEO_TOKEN, count // frames)] * frames
        inputs |= {"pixel_values_videos": patches, "video_grid_thw": grid}
    ids, types = mm_prompt(before, parts, after, seed=seed)
    return {
        "input_ids": ids[None],
        "attention_mask": torch.ones(1, ids.numel(), dtype=torch.long),
        "mm_token_type_ids": types[None],
        **inputs,
    }


def grid_batch(singles: list[dict]) -> dict:
    """A left-padded batch of Qwen-VL / GLM-4V style prompts: ids, mask and token types padded, the
    flattened patches and grids of every sample's images and videos concatenated in order."""
    ids, mask = left_pad([s["input_ids"][0] for s in singles])
    types, _ = left_pad([s["mm_token_type_ids"][0] for s in singles])
    batch = {"input_ids": ids, "attention_mask": mask, "mm_token_type_ids": types}
    for key in ("pixel_values", "image_grid_thw", "pixel_values_videos", "video_grid_thw"):
        parts = [s[key] for s in singles if key in s]
        if parts:
            batch[key] = torch.cat(parts)
    return batch


def qwen_positions(vlm: TinyQwenVL, inputs: dict):
    """positions(n_total): M-RoPE ids (3, 1, n_total) of the prompt plus decoded tokens, from the model's
    own get_rope_index (decoded tokens continue after the prompt's largest position)."""
    keys = ("input_ids", "mm_token_type_ids", "image_grid_thw", "video_grid_thw", "attention_mask")
    prompt, _ = vlm.model.model.get_rope_index(**{key: inputs[key] for key in keys if key in inputs})
    return continued_positions(prompt)


def continued_positions(prompt: torch.Tensor):
    def positions(n_total: int) -> torch.Tensor:
        extra = n_total - prompt.shape[-1]
        tail = prompt.max() + 1 + torch.arange(extra, device=prompt.device)
        return torch.cat([prompt, tail.view(1, 1, -1).expand(3, 1, -1).to(prompt.dtype)], dim=-1)

    return positions


# --- HunYuan-VL -----------------------------------------------------------------------------------------


def text_tokens(seed: int):
    generator = torch.Generator().manual_seed(seed)
    return lambda n: torch.randint(3, IMAGE_TOKEN, (n,), generator=generator).tolist()
