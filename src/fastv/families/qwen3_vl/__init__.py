"""Qwen3-VL and Qwen3-VL-MoE: interleaved 3-D M-RoPE, q/k norms, and DeepStack.

DeepStack adds visual features from inside the vision tower to the image positions' hidden states
after the first decoder layers (``_deepstack_process`` of the text model, one feature row per image
or video token of the full prompt, in order). When FastV prunes at k <= those layers, the pruned
layers' outputs hold only kept tokens: each kept image token must still get its own row, and no
row may land on a text token. Video frames are separate runs of video tokens (timestamps between
them), so ``budget="per_image"`` gives one segment per frame by default.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from fastv.core import gather_sequence
from fastv.families.base import Family
from fastv.families.layout import LayoutRequest, VisualLayout
from fastv.families.qwen_vl import qwen2_vl_layout
from fastv.families.registry import register_family


class _Restore:
    """Undo an instance-level override of a method."""

    def __init__(self, module: nn.Module, name: str) -> None:
        self.module, self.name = module, name

    def remove(self) -> None:
        self.module.__dict__.pop(self.name, None)


class Qwen3VLFamily(Family):
    name = "qwen3_vl"
    model_types = ("qwen3_vl", "qwen3_vl_moe")
    model_classes = ("Qwen3VLForConditionalGeneration", "Qwen3VLMoeForConditionalGeneration")

    def patch_language_model(self, language_model: nn.Module, current_plan: Callable[[], Any]) -> list[Any]:
        return patch_deepstack(language_model, current_plan)

    def visual_layouts(self, request: LayoutRequest) -> list[VisualLayout]:
        """Qwen2-VL's merged-patch grid: the processor resizes without cropping (16 px patches here)."""
        return qwen2_vl_layout(request)


def patch_deepstack(language_model: nn.Module, current_plan: Callable[[], Any]) -> list[Any]:
    """Make the decoder's ``_deepstack_process`` add each kept visual token's own feature row on pruned layers
    (Qwen3-VL, and Qwen3-Omni's thinker, whose text model has the same step).

    ``current_plan()`` is None until layer k has swapped in the kept tokens: the call's own state, not a
    comparison of widths (a pruned batch whose longest row dropped nothing is as wide as the full one).
    """
    original = language_model._deepstack_process  # bound method of this decoder

    def deepstack_on_kept_tokens(hidden: torch.Tensor, visual_mask: torch.Tensor, features: torch.Tensor):
        plan = current_plan()
        if plan is None:  # a layer that sees every token (before k, or nothing was dropped)
            return original(hidden, visual_mask, features)
        visual_mask = visual_mask.to(hidden.device)
        row = (visual_mask.flatten().long().cumsum(0) - 1).view(visual_mask.shape)  # feature row per token
        kept_mask = gather_sequence(visual_mask, plan.indices, seq_dim=1) & plan.valid.to(hidden.device)
        kept_rows = gather_sequence(row, plan.indices, seq_dim=1)[kept_mask]
        return original(hidden, kept_mask, features[kept_rows.to(features.device)])

    language_model._deepstack_process = deepstack_on_kept_tokens
    return [_Restore(language_model, "_deepstack_process")]


register_family(Qwen3VLFamily())
