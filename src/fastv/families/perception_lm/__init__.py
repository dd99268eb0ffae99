"""PerceptionLM (Meta): LLaVA-style image and video placeholders in ``input_ids`` filled with pooled
Perception Encoder features, and a Llama decoder, so the default adapter ranks and prunes as is.

Each image tile and each video frame goes through the tower on its own, so a video is one run of
``frames x tokens-per-frame`` placeholders. For ``budget="per_image"`` the run is split into its
frames: the frame count is the second axis of ``pixel_values_videos`` (all videos of a batch share
it), or, under ``generate`` (which hands the forward precomputed features), each frame's token count
is the second axis of those features.

Layout (show-keep / analyze): with ``vision_input_type="thumb+tile"`` an image is a whole-image thumbnail
then ``cols x rows`` tiles of the stretched image, row-major (always both, even for a 1 x 1 canvas); else
one stretched tile. A video frame is one stretched tile. Each tile's tokens are its patch grid average-pooled
``projector_pooling_ratio``-fold, row-major. The grid side depends on the timm tower (patch size in its
architecture name), so it is read from the prompt: image (video) tokens per tile (frame), a square.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from fastv.core.segments import contiguous_runs, frame_segments
from fastv.errors import FastVError
from fastv.families.base import Family
from fastv.families.layout import Box, LayoutRequest, View, VisualLayout, grid_boxes, option
from fastv.families.registry import register_family


class PerceptionLMFamily(Family):
    name = "perception_lm"
    model_types = ("perception_lm",)
    model_classes = ("PerceptionLMForConditionalGeneration", "PerceptionLMModel")

    def segments(self, model: nn.Module, input_ids: torch.Tensor, prunable: torch.Tensor, inputs: dict) -> torch.Tensor:
        labels = torch.where(prunable, input_ids, torch.full_like(input_ids, -1))
        frames = _frames(inputs)
        if frames is None:
            return contiguous_runs(labels)
        return frame_segments(labels, int(model.config.video_token_id), lambda _, length: max(1, frames(length)))

    def visual_layouts(self, request: LayoutRequest) -> list[VisualLayout]:
        return perception_lm_layout(request)


def _frames(inputs: dict):
    """length -> frame count of a video run, from the video pixels or the precomputed video features."""
    pixels = inputs.get("pixel_values_videos")
    if pixels is not None:
        return lambda length: int(pixels.shape[1])
    encoded = (inputs.get("mm_encoder_outputs") or {}).get("video")
    features = getattr(encoded, "pooler_output", None)
    if features is not None:
        return lambda length: length // int(features.shape[1])
    return None


# --- which image region each visual token covers (for fastv show-keep / analyze) ---------------------


def perception_lm_layout(request: LayoutRequest) -> list[VisualLayout]:
    """Images: thumbnail then tiles (the image processor's canvas choice); videos: one tile per frame."""
    processor = request.image_processor
    grids = []
    for h, w in request.image_sizes:
        if processor is None:
            raise FastVError("The PerceptionLM layout needs the image processor (for the tiling).")
        if option(processor, "vision_input_type") != "thumb+tile":
            grids.append(None)
            continue
        tile = int(processor.tile_size)  # the processor's own canvas choice, as its _get_num_multimodal_tokens
        canvas = processor._fit_image_to_canvas(img_width=int(w), img_height=int(h), tile_size=tile)
        if canvas is None:
            canvas = processor._find_closest_aspect_ratio(img_width=int(w), img_height=int(h), tile_size=tile)
        grids.append((int(canvas[0]), int(canvas[1])))
    tiles = sum(1 if g is None else g[0] * g[1] + 1 for g in grids)
    out = []
    if grids:
        side = _side(request, "image", tiles)
        for n, (size, grid) in enumerate(zip(request.image_sizes, grids, strict=True)):
            h, w = float(size[0]), float(size[1])
            regions: list[tuple[str, Box]] = [("" if grid is None else "thumbnail", (0.0, 0.0, w, h))]
            if grid is not None:
                cols, rows = grid
                regions += [
                    (f"tile {r + 1},{c + 1}", (c * w / cols, r * h / rows, (c + 1) * w / cols, (r + 1) * h / rows))
                    for r in range(rows)
                    for c in range(cols)
                ]
            views = tuple(
                View(
                    f"image {n + 1} {name}".strip(),
                    0,
                    tuple(range(i * side * side, (i + 1) * side * side)),
                    tuple(grid_boxes(side, side, region)),
                )
                for i, (name, region) in enumerate(regions)
            )
            out.append(VisualLayout("image", (int(size[0]), int(size[1])), len(regions) * side * side, views))
    pixels = request.inputs.get("pixel_values_videos")
    frames = [int(pixels.shape[1])] * len(request.video_sizes) if pixels is not None else list(request.video_frames)
    if request.video_sizes:
        side = _side(request, "video", sum(frames))
        for n, (size, count) in enumerate(zip(request.video_sizes, frames, strict=True)):
            boxes = tuple(grid_boxes(side, side, (0.0, 0.0, float(size[1]), float(size[0]))))
            per = side * side
            views = tuple(
                View(f"video {n + 1} frame {f}", f, tuple(range(f * per, (f + 1) * per)), boxes) for f in range(count)
            )
            out.append(VisualLayout("video", (int(size[0]), int(size[1])), count * per, views, n_frames=count))
    return out


def _side(request: LayoutRequest, kind: str, tiles: int) -> int:
    """Tokens per tile side, from the prompt's ``kind`` tokens over its ``tiles`` tiles (or frames)."""
    ids = request.inputs.get("input_ids")
    if ids is None:
        raise FastVError(f"The PerceptionLM layout needs the prompt's input_ids (the {kind} tokens per tile).")
    per_tile, rest = divmod(int((ids == int(getattr(request.config, f"{kind}_token_id"))).sum()), max(tiles, 1))
    side = math.isqrt(per_tile)
    if rest or side * side != per_tile:
        raise FastVError(f"The prompt's {kind} tokens are not {tiles} square tile grids; the layout cannot place them.")
    return side


register_family(PerceptionLMFamily())
