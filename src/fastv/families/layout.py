"""Which image region each visual token covers, per model family (for pictures of what FastV keeps).

The decoder sees image tokens as a flat run of placeholders; where each one came from depends on the
family's preprocessing (LLaVA's fixed grid, LLaVA-NeXT's base tile + unpadded high-res tiles with a
newline token per row, Qwen2-VL's 2x2-merged patches). A layout function turns a prompt's processor
outputs into :class:`VisualLayout` s: for every visual input, which token offset covers which box of
the *original* image. Each family's mapping lives in its own module, as its adapter's
``visual_layouts``; this module holds the types, the dispatch and the shared geometry. Core code never
imports it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from fastv.errors import FastVError, UnsupportedModelError

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in original-image pixels
Size = tuple[int, int]  # (height, width)


@dataclass(frozen=True)
class View:
    """One picture panel: a frame of a visual input and the boxes some of its tokens cover.

    ``tokens`` are offsets into the input's own run of placeholder tokens; ``boxes[i]`` is the region
    of ``tokens[i]``. LLaVA-NeXT gives two views per image (the low-res base tile and the high-res
    grid), since their tokens cover the same pixels at different scales.
    """

    label: str
    frame: int
    tokens: tuple[int, ...]
    boxes: tuple[Box, ...]


@dataclass(frozen=True)
class VisualLayout:
    """One image or video of a prompt: its size, token count and views.

    Tokens in no view (LLaVA-NeXT's ``image_newline``) are listed in ``unplaced``.
    """

    kind: str  # "image" | "video"
    size: Size
    n_tokens: int
    views: tuple[View, ...]
    unplaced: tuple[int, ...] = ()
    n_frames: int = 1
    unplaced_name: str = "CLS"  # what the unplaced tokens are, for captions


@dataclass(frozen=True)
class LayoutRequest:
    """What a layout function may read: model config, image processor, processor outputs, original sizes."""

    config: Any
    image_sizes: Sequence[Size]
    image_processor: Any = None
    inputs: Mapping[str, Any] = field(default_factory=dict)
    video_sizes: Sequence[Size] = ()
    video_frames: Sequence[int] = ()
    video_processor: Any = None


def layouts(request: LayoutRequest) -> list[VisualLayout]:
    """Every visual input's layout, in prompt order within each kind (images, then videos)."""
    from fastv.families import supported_families  # the adapters import this module's helpers

    model_type = getattr(request.config, "model_type", None)
    family = supported_families().get(model_type)
    if family is None:
        raise UnsupportedModelError(f"No FastV adapter for model_type={model_type!r}, so no token -> region layout.")
    return family.visual_layouts(request)


def assign_positions(layouts_: Sequence[VisualLayout], input_ids: torch.Tensor, config: Any) -> list[torch.Tensor]:
    """Prompt positions of each layout's tokens: the k-th image's tokens follow the (k-1)-th's in ``input_ids``.

    ``input_ids`` is one unpadded prompt (1-D). Raises when the counts disagree (a processor the layout
    does not model, or a prompt whose placeholders were not expanded by the processor).
    """
    ids = input_ids.reshape(-1)
    out: list[torch.Tensor] = []
    for kind in ("image", "video"):
        token_id = getattr(config, f"{kind}_token_id", None)
        if token_id is None:
            token_id = getattr(config, f"{kind}_token_index", None)
        mine = [i for i, lay in enumerate(layouts_) if lay.kind == kind]
        if not mine:
            continue
        positions = (ids == int(token_id)).nonzero().squeeze(1)
        expected = sum(layouts_[i].n_tokens for i in mine)
        if positions.numel() != expected:
            raise FastVError(
                f"The prompt has {positions.numel()} {kind} tokens but the layout expects {expected} for "
                f"{len(mine)} {kind}(s); the processor's geometry differs from what the layout models."
            )
        start = 0
        for i in mine:
            out.append((i, positions[start : start + layouts_[i].n_tokens]))
            start += layouts_[i].n_tokens
    return [positions for _, positions in sorted(out, key=lambda item: item[0])]


# --- geometry helpers ------------------------------------------------------------------------------


def grid_boxes(rows: int, cols: int, region: Box) -> list[Box]:
    """Row-major boxes of a ``rows x cols`` grid tiling ``region``."""
    x0, y0, x1, y1 = region
    w, h = (x1 - x0) / cols, (y1 - y0) / rows
    return [(x0 + c * w, y0 + r * h, x0 + (c + 1) * w, y0 + r * h + h) for r in range(rows) for c in range(cols)]


def option(obj: Any, key: str) -> Any:
    """``obj[key]`` or ``obj.key`` (processors and their size dicts come both ways), None when absent."""
    if obj is None:
        return None
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)


def square_view(size: Size, image_processor: Any) -> Box:
    """The original-image region that fills the model's square input, after the processor's resize/crop/pad.

    Handles the CLIP-style processors: pad to square (``do_pad``, LLaVA-1.5's original recipe), resize
    of the shortest edge then centre crop, or a plain resize to height x width (a stretch: the whole
    image). Coordinates may fall outside the image (padding).
    """
    h, w = size
    if image_processor is None:
        return (0.0, 0.0, float(w), float(h))
    if option(image_processor, "do_pad") and not option(image_processor, "image_grid_pinpoints"):
        side = max(h, w)
        h = w = side
        off_x, off_y = (side - size[1]) / 2, (side - size[0]) / 2
    else:
        off_x = off_y = 0.0
    resize = option(image_processor, "size") or {}
    crop = option(image_processor, "crop_size") or {}
    edge = option(resize, "shortest_edge")
    if option(image_processor, "do_resize") is False:
        scale_x = scale_y = 1.0
        rh, rw = h, w
    elif edge:
        scale_x = scale_y = edge / min(h, w)
        rh, rw = h * scale_y, w * scale_x
    elif option(resize, "height") and option(resize, "width"):
        rh, rw = (
            float(resize["height"] if isinstance(resize, Mapping) else resize.height),
            float(resize["width"] if isinstance(resize, Mapping) else resize.width),
        )
        scale_y, scale_x = rh / h, rw / w
    else:
        return (-off_x, -off_y, w - off_x, h - off_y)
    if option(image_processor, "do_center_crop") and option(crop, "height"):
        ch, cw = float(option(crop, "height")), float(option(crop, "width"))
    else:
        ch, cw = rh, rw
    top, left = (rh - ch) / 2, (rw - cw) / 2
    return (left / scale_x - off_x, top / scale_y - off_y, (left + cw) / scale_x - off_x, (top + ch) / scale_y - off_y)


def select_strategy_extra(config: Any) -> int:
    """Vision tokens per tile beyond the patch grid (the CLS token, kept by the "full" strategy)."""
    return 1 if getattr(config, "vision_feature_select_strategy", "default") == "full" else 0


def tiled_layouts(
    request: LayoutRequest,
    side: int,
    grids: Sequence[tuple[int, int]],
    thumbnail_first: bool = False,
) -> list[VisualLayout]:
    """Images cut into ``cols x rows`` tiles of the stretched image (row-major) plus a whole-image thumbnail
    when tiled (after the tiles, or before with ``thumbnail_first``); each tile a ``side x side`` token grid.

    ``grids[n]`` is image n's ``(cols, rows)``.
    """
    out = []
    for n, (size, (cols, rows)) in enumerate(zip(request.image_sizes, grids, strict=True)):
        h, w = float(size[0]), float(size[1])
        tiles = [
            (f"tile {r + 1},{c + 1}", (c * w / cols, r * h / rows, (c + 1) * w / cols, (r + 1) * h / rows))
            for r in range(rows)
            for c in range(cols)
        ]
        if len(tiles) == 1:
            regions = [("", (0.0, 0.0, w, h))]
        else:
            thumbnail = ("thumbnail", (0.0, 0.0, w, h))
            regions = [thumbnail, *tiles] if thumbnail_first else [*tiles, thumbnail]
        views = []
        for i, (name, region) in enumerate(regions):
            tokens = tuple(range(i * side * side, (i + 1) * side * side))
            views.append(View(f"image {n + 1} {name}".strip(), 0, tokens, tuple(grid_boxes(side, side, region))))
        out.append(VisualLayout("image", (int(size[0]), int(size[1])), len(regions) * side * side, tuple(views)))
    return out


def count_tiles(grids: Sequence[tuple[int, int]]) -> int:
    """Tiles the processor makes for these ``(cols, rows)`` grids (a thumbnail joins every tiled image)."""
    return sum(1 if cols * rows == 1 else cols * rows + 1 for cols, rows in grids)


def pick_grids(request: LayoutRequest, tiled: Sequence[tuple[int, int]], default: bool) -> list[tuple[int, int]]:
    """``tiled`` or one tile per image, whichever the prompt's ``pixel_values`` (one row per tile) holds;
    ``default`` (tiled or not) without them. The call's ``crop_to_patches`` may differ from the processor's."""
    untiled = [(1, 1)] * len(tiled)
    pixels = request.inputs.get("pixel_values")
    if pixels is None:
        return list(tiled) if default else untiled
    for grids in (tiled, untiled):
        if int(pixels.shape[0]) == count_tiles(grids):
            return list(grids)
    raise FastVError(
        f"The prompt's pixel_values hold {int(pixels.shape[0])} tiles, but the image processor's tiling gives "
        f"{count_tiles(tiled)} (or {len(tiled)} untiled); the layout does not model this processor's settings."
    )
