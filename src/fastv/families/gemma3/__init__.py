"""Gemma 3: sliding-window and full layers, each type with its own rotary base and mask, q/k norms,
``query_pre_attn_scalar`` scaling, and image tokens that attend to each other bidirectionally.

The decoder hands each layer the cos/sin and mask of its type, so the generic per-layer swap
already gathers the right ones. What Gemma adds is the image block: when the outer forward gets
``token_type_ids`` (prefill), tokens of one image see each other both ways; pruned layers must keep
that for the kept image tokens, and the ``mean`` ranker must count it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from fastv.core.segments import contiguous_runs
from fastv.families.base import Family
from fastv.families.layout import LayoutRequest, View, VisualLayout, grid_boxes, square_view
from fastv.families.registry import register_family


class Gemma3Family(Family):
    name = "gemma3"
    model_types = ("gemma3",)
    model_classes = ("Gemma3ForConditionalGeneration", "Gemma3Model")

    def block_ids(self, model: nn.Module, input_ids: torch.Tensor, inputs: dict) -> torch.Tensor | None:
        """Image blocks as Gemma numbers them: consecutive ``token_type_ids == 1`` runs; None without types."""
        token_types = inputs.get("token_type_ids")
        if token_types is None:
            return None
        token_types = token_types.to(input_ids.device)
        return contiguous_runs(torch.where(token_types == 1, token_types, torch.full_like(token_types, -1)))

    def visual_layouts(self, request: LayoutRequest) -> list[VisualLayout]:
        return gemma3_layout(request)


# --- which image region each visual token covers (for fastv show-keep / analyze) ---------------------


def gemma3_layout(request: LayoutRequest) -> list[VisualLayout]:
    """``mm_tokens_per_image`` pooled patches, a square row-major grid over the resized (stretched) image."""
    side = math.isqrt(int(request.config.mm_tokens_per_image))
    out = []
    for n, size in enumerate(request.image_sizes):
        boxes = tuple(grid_boxes(side, side, square_view(size, request.image_processor)))
        view = View(f"image {n + 1}", 0, tuple(range(side * side)), boxes)
        out.append(VisualLayout("image", tuple(size), side * side, (view,)))
    return out


register_family(Gemma3Family())
