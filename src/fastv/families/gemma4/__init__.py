"""Gemma 4 as in 26B-A4B (MoE) and 31B: sliding and full layers that differ in shape, bidirectional images.

What differs from Gemma 3 for FastV:

- sliding and full layers differ in shape, not just window: full layers have their own head size
  (``global_head_dim``), key/value head count and partial ("proportional") rotary. Each attention module
  states its ``head_dim``, and the decoder hands each layer the cos/sin of its type, so the per-layer
  swap and the adapter's projections follow them;
- ``apply_rotary_pos_emb(x, cos, sin, unsqueeze_dim)`` rotates one tensor, not a (q, k) pair;
- with ``use_bidirectional_attention="vision"`` the tokens of one image (or video frame) see each other
  both ways, but on sliding layers only: full layers stay causal. The blocks come from the processor's
  ``mm_token_type_ids`` (1 image, 2 video), as the model builds them;
- attention scaling is 1 (the q/k norms take its place); the MoE block (26B-A4B) routes per token.

Refused, with the reason: per-layer embeddings and KV sharing (E2B / E4B), and all-bidirectional
attention (``use_bidirectional_attention="all"``). Gemma 4 "unified" (``model_type="gemma4_unified"``) is
listed in ``UNSUPPORTED``: its forward puts image blocks on every layer, past the sliding window.

Layout (show-keep / analyze): the processor resizes each image (and video frame) to whole ``k x k`` blocks
of patches (``k = pooling_kernel_size``), keeping its aspect ratio, and the vision pooler averages each
block into one token, row-major; the grid is read from the prompt's patch positions (``image_position_ids``
/ ``video_position_ids``). A video's frames are separate runs (timestamps and delimiters between them).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import torch
from torch import nn

from fastv.core.segments import contiguous_runs
from fastv.errors import FastVError, UnsupportedModelError
from fastv.families.base import Family
from fastv.families.layout import LayoutRequest, View, VisualLayout, grid_boxes, option
from fastv.families.registry import register_family

# mm_token_type_ids values of visual tokens (0 text, 3 audio): consecutive ones form one bidirectional block.
_VISION_TYPES = (1, 2)


class Gemma4Family(Family):
    name = "gemma4"
    model_types = ("gemma4",)
    model_classes = ("Gemma4ForConditionalGeneration", "Gemma4Model")

    def check_supported(self, model: nn.Module, language_model: nn.Module) -> None:
        super().check_supported(model, language_model)
        text = self.text_config(language_model)
        reasons = []
        if getattr(text, "num_kv_shared_layers", 0):
            reasons.append(
                f"its last {text.num_kv_shared_layers} layers have no key/value projections and reuse an earlier "
                "layer's keys and values (num_kv_shared_layers), and under generate transformers runs them on the "
                "last prompt token only, which FastV's pruned layers cannot follow"
            )
        if getattr(text, "hidden_size_per_layer_input", 0):
            reasons.append(
                "every layer adds a per-layer input embedding of each position (hidden_size_per_layer_input), "
                "which FastV does not gather for the kept tokens"
            )
        if getattr(text, "use_bidirectional_attention", None) == "all":
            reasons.append(
                "it attends bidirectionally over the whole sequence (use_bidirectional_attention='all'), so "
                "the last token's attention row is not the causal ranking FastV defines"
            )
        if reasons:
            raise UnsupportedModelError(
                f"FastV does not support this {type(model).__name__} ({self.name!r}): "
                + "; ".join(reasons)
                + ". Per-layer embeddings and shared KV are the Gemma 4 E2B / E4B designs: use a Gemma 4 checkpoint "
                "without them (gemma-4-26B-A4B or gemma-4-31B, vision-only bidirectional attention), or Gemma 3."
            )

    def block_ids(self, model: nn.Module, input_ids: torch.Tensor, inputs: dict) -> torch.Tensor | None:
        """Consecutive image / video tokens (``mm_token_type_ids`` 1 or 2) as one block, as Gemma 4 numbers
        them; None when the model is causal for vision or the call has no types (then it is causal too)."""
        text = model.config.get_text_config()
        types = inputs.get("mm_token_type_ids")
        if getattr(text, "use_bidirectional_attention", None) != "vision" or types is None:
            return None
        types = types.to(input_ids.device)
        vision = torch.isin(types, torch.tensor(_VISION_TYPES, device=types.device))
        return contiguous_runs(torch.where(vision, torch.ones_like(types), torch.full_like(types, -1)))

    def blocks_in_layer(self, layer: nn.Module, text_config) -> bool:
        """Gemma 4 overlays the image blocks on sliding layers only."""
        return self.sliding_window(layer, text_config) is not None

    def rotary(self, attention: nn.Module) -> Callable:
        """The modeling file's one-tensor rotary, as the (q, k) pair the base adapter expects.

        Gemma 4 rotates (B, n, H, d) before the transpose; on (B, H, n, d) the same elementwise ops
        broadcast the same cos/sin, so the keys equal the cached ones bit for bit."""
        rotate = sys.modules[type(attention).__module__].apply_rotary_pos_emb

        def pair(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
            return rotate(q, cos, sin, unsqueeze_dim=1), rotate(k, cos, sin, unsqueeze_dim=1)

        return pair

    def visual_layouts(self, request: LayoutRequest) -> list[VisualLayout]:
        return gemma4_layout(request)


# --- which image region each visual token covers (for fastv show-keep / analyze) ---------------------


def gemma4_layout(request: LayoutRequest) -> list[VisualLayout]:
    """One ``rows x cols`` row-major grid of pooled ``k x k`` patch blocks per image / video frame over the
    whole (resized, aspect-kept) image: ``Gemma4VisionPooler`` numbers block ``(x // k, y // k)`` as
    ``x // k + (cols) * (y // k)``."""
    k = int(request.config.vision_config.pooling_kernel_size)
    out = []
    images = _grids(request, "image", request.image_sizes, request.image_processor, k)
    for n, (size, (rows, cols)) in enumerate(zip(request.image_sizes, images, strict=True)):
        boxes = tuple(grid_boxes(rows, cols, (0.0, 0.0, float(size[1]), float(size[0]))))
        view = View(f"image {n + 1}", 0, tuple(range(rows * cols)), boxes)
        out.append(VisualLayout("image", tuple(size), rows * cols, (view,)))
    frames = request.inputs.get("num_frames_per_video")
    frames = [int(f) for f in frames] if frames is not None else list(request.video_frames)
    if len(frames) != len(request.video_sizes):
        raise FastVError("The Gemma 4 layout needs a frame count for every video (`num_frames_per_video`).")
    firsts = [sum(frames[:n]) for n in range(len(frames))]  # each video's first row of video_position_ids
    videos = _grids(request, "video", request.video_sizes, request.video_processor, k, firsts)
    for n, (size, count, (rows, cols)) in enumerate(zip(request.video_sizes, frames, videos, strict=True)):
        boxes = tuple(grid_boxes(rows, cols, (0.0, 0.0, float(size[1]), float(size[0]))))
        per = rows * cols
        views = tuple(
            View(f"video {n + 1} frame {f}", f, tuple(range(f * per, (f + 1) * per)), boxes) for f in range(count)
        )
        out.append(VisualLayout("video", tuple(size), count * per, views, n_frames=count))
    return out


def _grids(request: LayoutRequest, kind: str, sizes, processor, k: int, rows_of=None) -> list[tuple[int, int]]:
    """(rows, cols) of pooled tokens per input: from the prompt's patch positions, else the processor's resize."""
    positions = request.inputs.get(f"{kind}_position_ids")
    rows_of = list(range(len(sizes))) if rows_of is None else rows_of
    if positions is not None:
        out = []
        for row in rows_of:
            valid = positions[row][(positions[row] != -1).all(dim=-1)]
            out.append(((int(valid[:, 1].max()) + 1) // k, (int(valid[:, 0].max()) + 1) // k))
        return out
    if sizes and processor is None:
        raise FastVError(f"The Gemma 4 layout needs `{kind}_position_ids` or the {kind} processor (for the resize).")
    from transformers.models.gemma4.image_processing_pil_gemma4 import get_aspect_ratio_preserving_size

    out = []
    for h, w in sizes:
        patch, soft = int(option(processor, "patch_size")), int(option(processor, "max_soft_tokens"))
        pool = int(option(processor, "pooling_kernel_size"))
        th, tw = get_aspect_ratio_preserving_size(int(h), int(w), patch, soft * pool**2, pool)
        out.append((th // patch // k, tw // patch // k))
    return out


register_family(Gemma4Family())
