"""One unpadded prompt per kind of tiny VLM (``fastv.selfcheck.tiny``), shared by the tests and the doctor."""

from __future__ import annotations

import torch

from fastv.compat import (
    gemma4_video_inputs,
    generate_expands_multi_image_prompts,
    minicpmv4_6_packs_mixed_sizes,
    molmo2_concat_images,
    video_llava_image_keyword,
)
from fastv.selfcheck.tiny import (
    AUDIO_END_TOKEN,
    AUDIO_START_TOKEN,
    AUDIO_TOKEN,
    GEMMA4_IMAGE_TOKEN,
    GEMMA4_VIDEO_TOKEN,
    IMAGE_TOKEN,
    VIDEO_TOKEN,
    TinyGemma4,
    TinyNaFlexVLM,
    TinyQwenOmni,
    TinyQwenVL,
    TinyVideoVLM,
    TinyVLM,
    left_pad,
    llava_next_image,
    mistral3_image_ids,
    mm_prompt,
    prompt_ids,
)


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


def paligemma_prompt(vlm: TinyVLM, n_images: int = 1, seed: int = 0, before: int = 3, types: bool = True) -> dict:
    """PaliGemma's layout: every image's tokens first, then BOS, the prompt and its closing token, with the
    ``token_type_ids`` its processor returns (0: the bidirectional prefix, here the whole prompt)."""
    generator = torch.Generator().manual_seed(seed)
    text = torch.randint(3, IMAGE_TOKEN, (before + 5,), generator=generator).tolist()
    ids = torch.tensor([IMAGE_TOKEN] * (vlm.image_tokens * n_images) + [1] + text)[None]
    inputs = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "pixel_values": vlm.pixel_values(n_images, seed),
    }
    if types:
        inputs["token_type_ids"] = torch.zeros_like(ids)
    return inputs


def one_based_positions(n: int) -> torch.Tensor:
    """PaliGemma's rotary positions of the first n tokens: 1, 2, ..., n."""
    return torch.arange(1, n + 1)[None]


def ovis2_prompt(vlm: TinyVLM, n_images: int = 2, seed: int = 0, before: int = 3) -> dict:
    """Ovis2: each image's tokens between visual indicator tokens (start / end markers, embedded from the
    visual table; never pruned), images separated by text."""
    from fastv.selfcheck.tiny import OVIS2_INDICATORS

    generator = torch.Generator().manual_seed(seed)

    def text(n: int) -> list[int]:
        return torch.randint(3, IMAGE_TOKEN, (n,), generator=generator).tolist()

    ids = text(before)
    for _ in range(n_images):
        ids += [OVIS2_INDICATORS[0]] + [IMAGE_TOKEN] * vlm.image_tokens + [OVIS2_INDICATORS[4]] + text(1)
    ids = torch.tensor(ids + text(5))[None]
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "pixel_values": vlm.pixel_values(n_images, seed)}


def ovis2_5_prompt(vlm: TinyQwenVL, n_images: int = 2, seed: int = 0, before: int = 3, frames: int = 0) -> dict:
    """Ovis2.5: images of alternating 4x4 / 4x6-patch grids, then a video of ``frames`` 4x4-patch frames (one
    run of video tokens), each between its start / end markers and followed by text."""
    from fastv.selfcheck.tiny import OVIS2_5_MARKERS

    image_start, image_end, video_start, video_end = OVIS2_5_MARKERS
    generator = torch.Generator().manual_seed(seed)

    def text(n: int) -> list[int]:
        return torch.randint(3, IMAGE_TOKEN, (n,), generator=generator).tolist()

    ids, inputs, patches, grids = text(before), {}, [], []
    for i in range(n_images):
        pixels, grid, count = vlm.visual((1, 4, 4 + 2 * (i % 2)), seed=seed + i)
        ids += [image_start] + [IMAGE_TOKEN] * count + [image_end] + text(1)
        patches.append(pixels)
        grids.append(grid)
    if patches:
        inputs |= {"pixel_values": torch.cat(patches), "image_grid_thw": torch.cat(grids)}
    if frames:
        pixels, grid, count = vlm.visual((frames, 4, 4), seed=seed + 100)
        ids += [video_start] + [VIDEO_TOKEN] * count + [video_end] + text(1)
        inputs |= {"pixel_values_videos": pixels, "video_grid_thw": grid}
    ids = torch.tensor(ids + text(4))[None]
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), **inputs}


def llava_onevision1_5_prompt(
    vlm: TinyQwenVL, n_images: int = 2, seed: int = 0, before: int = 3, frames: int = 0
) -> dict:
    """LLaVA-OneVision-1.5 (its processor is Exaone 4.5's, Qwen2-VL's layout): images of alternating 4x4 /
    4x6-patch grids, then a video of ``frames`` 4x4-patch frames (one run of video tokens), each as
    ``<|vision_start|>`` + grid_thw.prod() / 4 placeholders + ``<|vision_end|>``, followed by text."""
    from fastv.selfcheck.tiny import LLAVA_ONEVISION1_5_MARKERS

    start, end = LLAVA_ONEVISION1_5_MARKERS
    generator = torch.Generator().manual_seed(seed)

    def text(n: int) -> list[int]:
        return torch.randint(3, IMAGE_TOKEN, (n,), generator=generator).tolist()

    ids, inputs, patches, grids = text(before), {}, [], []
    for i in range(n_images):
        pixels, grid, count = vlm.visual((1, 4, 4 + 2 * (i % 2)), seed=seed + i)
        ids += [start] + [IMAGE_TOKEN] * count + [end] + text(1)
        patches.append(pixels)
        grids.append(grid)
    if patches:
        inputs |= {"pixel_values": torch.cat(patches), "image_grid_thw": torch.cat(grids)}
    if frames:
        pixels, grid, count = vlm.visual((frames, 4, 4), seed=seed + 100)
        ids += [start] + [VIDEO_TOKEN] * count + [end] + text(1)
        inputs |= {"pixel_values_videos": pixels, "video_grid_thw": grid}
    ids = torch.tensor(ids + text(4))[None]
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), **inputs}


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
    return _continued(prompt)


def _continued(prompt: torch.Tensor):
    def positions(n_total: int) -> torch.Tensor:
        extra = n_total - prompt.shape[-1]
        tail = prompt.max() + 1 + torch.arange(extra, device=prompt.device)
        return torch.cat([prompt, tail.view(1, 1, -1).expand(3, 1, -1).to(prompt.dtype)], dim=-1)

    return positions


# --- Qwen2.5-Omni / Qwen3-Omni thinkers ----------------------------------------------------------------

VISION_START, VISION_END = 122, 123  # the tiny thinkers' vision markers (``tiny._grid_vlm``)


def omni_prompt(
    vlm: TinyQwenOmni,
    image_grid=(1, 4, 6),
    video_grid=(2, 4, 4),
    audio_frames: int | None = 40,
    seed: int = 0,
    before: int = 3,
    after: int = 4,
    order: tuple[str, ...] = ("audio", "image", "video"),
    audio_in_video: bool = False,
) -> dict:
    """Text, then an audio clip, an image and a video (each between its start / end markers, as the Omni
    processors write them, in ``order``; None leaves one out), then text. Videos take 1 second per
    temporal patch (``video_second_per_grid``).

    ``audio_in_video``: the clip is the video's soundtrack instead (``use_audio_in_video=True``): the
    video's tokens and the clip's are interleaved in time, as ``interleave_audio`` lays them out.
    """
    generator = torch.Generator().manual_seed(seed)

    def text(n: int) -> list[int]:
        return torch.randint(3, IMAGE_TOKEN, (n,), generator=generator).tolist()

    ids, inputs, n_audio = text(before), {}, 0
    if audio_frames is not None:
        features, n_audio = vlm.audio(audio_frames, seed=seed + 200)
        inputs |= {"input_features": features[None], "feature_attention_mask": torch.ones(1, audio_frames).long()}
    for part in order:
        if part == "audio" and audio_frames is not None and not audio_in_video:
            ids += [AUDIO_START_TOKEN] + [AUDIO_TOKEN] * n_audio + [AUDIO_END_TOKEN] + text(1)
        elif part == "image" and image_grid is not None:
            patches, grid, count = vlm.visual(image_grid, seed=seed)
            ids += [VISION_START] + [IMAGE_TOKEN] * count + [VISION_END] + text(1)
            inputs |= {"pixel_values": patches, "image_grid_thw": grid}
        elif part == "video" and video_grid is not None:
            patches, grid, count = vlm.visual(video_grid, seed=seed + 100)
            if audio_in_video:
                tokens = [AUDIO_START_TOKEN, *interleave_audio(vlm, video_grid, n_audio), AUDIO_END_TOKEN]
            else:
                tokens = [VIDEO_TOKEN] * count
            ids += [VISION_START, *tokens, VISION_END, *text(1)]
            inputs |= {"pixel_values_videos": patches, "video_grid_thw": grid, "video_second_per_grid": torch.ones(1)}
    if audio_in_video:
        inputs["use_audio_in_video"] = True
    ids = torch.tensor(ids + text(after))[None]
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), **inputs}


def interleave_audio(vlm: TinyQwenOmni, video_grid, n_audio: int, second_per_grid: float = 1.0) -> list[int]:
    """A video's tokens interleaved with its soundtrack's ``n_audio`` tokens, in time order, as the Omni
    processors write them: Qwen2.5-Omni in chunks of ``seconds_per_chunk`` (video then audio per chunk),
    Qwen3-Omni token by token (a video token first on a tie)."""
    config = vlm.model.config
    t, h, w = video_grid
    per_patch = h * w // vlm.merge**2
    video = [frame * second_per_grid * config.position_id_per_seconds for frame in range(t) for _ in range(per_patch)]
    audio = list(range(n_audio))
    out: list[int] = []
    if config.model_type == "qwen2_5_omni_thinker":
        per_chunk = int(config.position_id_per_seconds * config.seconds_per_chunk)
        chunked = vlm.model.get_chunked_index
        video_chunks = chunked(torch.tensor(video), per_chunk, 0)
        audio_chunks = chunked(torch.tensor(audio), per_chunk, 0)
        for j in range(max(len(video_chunks), len(audio_chunks))):
            if j < len(video_chunks):
                out += [VIDEO_TOKEN] * (video_chunks[j][1] - video_chunks[j][0])
            if j < len(audio_chunks):
                out += [AUDIO_TOKEN] * (audio_chunks[j][1] - audio_chunks[j][0])
        return out
    v = a = 0
    while v < len(video) and a < len(audio):
        if video[v] <= audio[a]:
            out.append(VIDEO_TOKEN)
            v += 1
        else:
            out.append(AUDIO_TOKEN)
            a += 1
    return out + [VIDEO_TOKEN] * (len(video) - v) + [AUDIO_TOKEN] * (len(audio) - a)


def omni_batch(singles: list[dict]) -> dict:
    """A left-padded batch of ``omni_prompt``s: every sample's images, videos and audio clips concatenated in
    order (clips right-padded to the longest, with their feature_attention_mask)."""
    ids, mask = left_pad([s["input_ids"][0] for s in singles])
    batch = {"input_ids": ids, "attention_mask": mask}
    for key in ("pixel_values", "image_grid_thw", "pixel_values_videos", "video_grid_thw", "video_second_per_grid"):
        parts = [s[key] for s in singles if key in s]
        if parts:
            batch[key] = torch.cat(parts)
    clips = [s for s in singles if "input_features" in s]
    if clips:
        frames = max(s["input_features"].shape[-1] for s in clips)
        pad = torch.nn.functional.pad
        batch["input_features"] = torch.cat(
            [pad(s["input_features"], (0, frames - s["input_features"].shape[-1])) for s in clips]
        )
        batch["feature_attention_mask"] = torch.cat(
            [pad(s["feature_attention_mask"], (0, frames - s["feature_attention_mask"].shape[-1])) for s in clips]
        )
    return batch


def omni_positions(vlm: TinyQwenOmni, inputs: dict):
    """positions(n_total) for an Omni thinker, from its own get_rope_index (audio lengths from the
    feature_attention_mask, video time steps from video_second_per_grid)."""
    lengths = inputs["feature_attention_mask"].sum(-1) if "feature_attention_mask" in inputs else None
    prompt, _ = vlm.model.get_rope_index(
        inputs["input_ids"],
        inputs.get("image_grid_thw"),
        inputs.get("video_grid_thw"),
        inputs["attention_mask"],
        bool(inputs.get("use_audio_in_video", False)),
        lengths,
        inputs.get("video_second_per_grid"),
    )
    return _continued(prompt)


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


def lfm2_vl_prompt(
    vlm: TinyNaFlexVLM, sizes: tuple[tuple[int, int], ...] = ((4, 6), (8, 4)), seed: int = 0, before: int = 3
) -> dict:
    """LFM2-VL: text, then images of ``sizes`` (h, w patches) at their own aspect, one run of tokens each."""
    ids, _ = mm_prompt(before, [(IMAGE_TOKEN, vlm.tokens(size)) for size in sizes], 5, seed=seed)
    return {"input_ids": ids[None], "attention_mask": torch.ones_like(ids[None]), **vlm.lfm2_images(list(sizes), seed)}


def lfm2_vl_batch(singles: list[dict]) -> dict:
    """A left-padded batch of ``lfm2_vl_prompt``s, images concatenated in order."""
    ids, mask = left_pad([s["input_ids"][0] for s in singles])
    keys = ("pixel_values", "pixel_attention_mask", "spatial_shapes")
    return {"input_ids": ids, "attention_mask": mask, **{key: torch.cat([s[key] for s in singles]) for key in keys}}


def minicpmv_prompt(
    vlm: TinyNaFlexVLM,
    sizes: tuple[tuple[int, int], ...] = ((8, 8), (8, 16)),
    frames: int = 0,
    seed: int = 0,
    before: int = 3,
    packable: bool = True,
) -> dict:
    """MiniCPM-V 4.6: text, images of ``sizes`` (h, w patches), then a video of ``frames`` 8x8-patch frames,
    each image and frame its own run of tokens; patches NaViT-packed into one row, as its processor does.

    ``packable``: where the release's vision tower cannot pack images of different sizes (up to 5.18), every image
    is 8x8 patches instead (also across a ``minicpmv_batch``); False keeps ``sizes`` to test the refusal.
    """
    if packable and not minicpmv4_6_packs_mixed_sizes():
        sizes = tuple((8, 8) for _ in sizes)
    segments = [(IMAGE_TOKEN, vlm.tokens(size)) for size in sizes] + [(VIDEO_TOKEN, vlm.tokens((8, 8)))] * frames
    ids, _ = mm_prompt(before, segments, 5, seed=seed)
    inputs = {"input_ids": ids[None], "attention_mask": torch.ones_like(ids[None])}
    if sizes:
        inputs["pixel_values"], inputs["target_sizes"] = vlm.packed_patches(list(sizes), seed)
    if frames:
        inputs["pixel_values_videos"], inputs["target_sizes_videos"] = vlm.packed_patches([(8, 8)] * frames, seed + 1)
    return inputs


def minicpmv_batch(singles: list[dict]) -> dict:
    """A left-padded batch of image-only ``minicpmv_prompt``s: every image's patches packed into one row."""
    ids, mask = left_pad([s["input_ids"][0] for s in singles])
    pixels = torch.cat([s["pixel_values"] for s in singles], dim=-1)
    sizes = torch.cat([s["target_sizes"] for s in singles])
    return {"input_ids": ids, "attention_mask": mask, "pixel_values": pixels, "target_sizes": sizes}


# --- HunYuan-VL -----------------------------------------------------------------------------------------


def _text_tokens(seed: int):
    generator = torch.Generator().manual_seed(seed)
    return lambda n: torch.randint(3, IMAGE_TOKEN, (n,), generator=generator).tolist()


def hunyuan_vl_prompt(vlm, grids: tuple[tuple[int, int], ...] = ((4, 6),), seed: int = 0, before: int = 3) -> dict:
    """HunYuan-VL: text, then per image of ``grids`` ((h, w) patches) <img_start>, its placeholders (begin,
    merged rows each with a newline, end), <img_end> and a text token, then text; with the mm_token_type_ids
    (1 on the placeholders) its processor returns."""
    from fastv.selfcheck.tiny import HUNYUAN_IMAGE_END, HUNYUAN_IMAGE_START

    text = _text_tokens(seed)
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


# --- Molmo2 ---------------------------------------------------------------------------------------------


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
    from fastv.selfcheck.tiny import MOLMO2_COLUMN, MOLMO2_MARKERS

    if images and video:
        raise ValueError("transformers' Molmo2 takes images or a video per prompt, not both")
    text = _text_tokens(seed)
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
