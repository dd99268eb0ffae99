"""One unpadded prompt per kind of tiny VLM (``fastv.selfcheck.tiny``), shared by the tests and the doctor."""

from __future__ import annotations

import torch

from fastv.selfcheck.tiny import (
    IMAGE_TOKEN,
    VIDEO_TOKEN,
    TinyQwenVL,
    TinyVideoVLM,
    TinyVLM,
    left_pad,
    llava_next_image,
    mistral3_image_ids,
    mm_prompt,
    prompt_ids,
)


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


def gemma3_prompt(vlm: TinyVLM, n_images: int = 4, seed: int = 0, before: int = 3, types: bool = True) -> dict:
    """An image prompt with the ``token_type_ids`` Gemma 3's processor returns (they mark the bidirectional blocks)."""
    inputs = image_prompt(vlm, n_images, seed, before)
    if types:
        inputs["token_type_ids"] = (inputs["input_ids"] == IMAGE_TOKEN).long()
    return inputs


def image_runs(inputs: dict) -> torch.Tensor:
    """(n,) ids of contiguous image-token runs (one per image), -1 elsewhere, written out by hand."""
    image = inputs["input_ids"][0] == IMAGE_TOKEN
    starts = image & ~torch.cat([torch.tensor([False], device=image.device), image[:-1]])
    return torch.where(image, torch.cumsum(starts.long(), 0) - 1, torch.tensor(-1, device=image.device))


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
            key = "pixel_values_images" if type(vlm.model).__name__.startswith("VideoLlava") else "pixel_values"
            inputs[key] = vlm.pixel_values(1, seed)
        else:
            tiles, count = llava_next_image(vlm, image, seed=seed)
            parts.append((IMAGE_TOKEN, count))
            inputs |= {"pixel_values": tiles[None], "image_sizes": torch.tensor([image])}
    if frames:
        parts.append((VIDEO_TOKEN, vlm.video_token_count(frames)))
        inputs["pixel_values_videos"] = vlm.pixel_values_videos(1, frames, seed=seed + 1)
    ids, _ = mm_prompt(before, parts, 4, seed=seed)
    return {"input_ids": ids[None], "attention_mask": torch.ones(1, ids.numel(), dtype=torch.long), **inputs}


def qwen_prompt(
    vlm: TinyQwenVL, image_grid=(1, 4, 6), video_grid=(2, 4, 4), seed: int = 0, before: int = 3, after: int = 4
) -> dict:
    """An image and / or a video for Qwen2(.5)-VL, with the mm_token_type_ids its processor returns."""
    return _grid_prompt(vlm, image_grid, video_grid, seed, before, after, run_per_frame=False)


def qwen3_prompt(
    vlm: TinyQwenVL, image_grid=(1, 4, 6), video_grid=(2, 4, 4), seed: int = 0, before: int = 3, after: int = 4
) -> dict:
    """Qwen3-VL: like ``qwen_prompt``, but every video frame is its own run of video tokens with a text
    token (the processor's timestamp) before it."""
    return _grid_prompt(vlm, image_grid, video_grid, seed, before, after, run_per_frame=True)


def _grid_prompt(vlm: TinyQwenVL, image_grid, video_grid, seed: int, before: int, after: int, run_per_frame: bool):
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


def glm4v_prompt(vlm: TinyQwenVL, image_grid=(1, 4, 6), video_grid=None, seed: int = 0, before: int = 3) -> dict:
    """GLM-4V: Qwen3-VL's layout (one run per video frame), but video frames carry the image token id;
    only mm_token_type_ids (2) tells them apart, so one prompt holds images or a video, not both."""
    inputs = qwen3_prompt(vlm, image_grid, video_grid, seed, before)
    ids = inputs["input_ids"]
    inputs["input_ids"] = torch.where(ids == VIDEO_TOKEN, torch.full_like(ids, IMAGE_TOKEN), ids)
    return inputs


def qwen_positions(vlm: TinyQwenVL, inputs: dict):
    """positions(n_total): M-RoPE ids (3, 1, n_total) of the prompt plus decoded tokens, from the model's
    own get_rope_index (decoded tokens continue after the prompt's largest position)."""
    keys = ("input_ids", "mm_token_type_ids", "image_grid_thw", "video_grid_thw", "attention_mask")
    prompt, _ = vlm.model.model.get_rope_index(**{key: inputs[key] for key in keys if key in inputs})

    def positions(n_total: int) -> torch.Tensor:
        extra = n_total - prompt.shape[-1]
        tail = prompt.max() + 1 + torch.arange(extra, device=prompt.device)
        return torch.cat([prompt, tail.view(1, 1, -1).expand(3, 1, -1)], dim=-1)

    return positions


MISTRAL3_SIZES = [(16, 32), (32, 16), (16, 16)]


def mistral3_prompt(vlm: TinyVLM, n_images: int = 2, seed: int = 0, before: int = 3) -> dict:
    """Images of different sizes, each laid out in rows closed by [IMG_BREAK] / [IMG_END] text tokens."""
    generator = torch.Generator().manual_seed(seed)
    sizes = [MISTRAL3_SIZES[(seed + i) % len(MISTRAL3_SIZES)] for i in range(n_images)]
    ids = torch.randint(3, IMAGE_TOKEN, (before,), generator=generator).tolist()
    for size in sizes:
        ids += mistral3_image_ids(size) + torch.randint(3, IMAGE_TOKEN, (1,), generator=generator).tolist()
    ids += torch.randint(3, IMAGE_TOKEN, (5,), generator=generator).tolist()
    ids = torch.tensor(ids)[None]
    pixels = torch.randn(n_images, 3, 32, 32, generator=generator)
    return {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "pixel_values": pixels,
        "image_sizes": torch.tensor(sizes),
    }
