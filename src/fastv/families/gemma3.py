"""Gemma 3: sliding-window and full layers, each type with its own rotary base and mask, q/k norms,
``query_pre_attn_scalar`` scaling, and image tokens that attend to each other bidirectionally.

The decoder hands each layer the cos/sin and mask of its type, so the generic per-layer swap
already gathers the right ones. What Gemma adds is the image block: when the outer forward gets
``token_type_ids`` (prefill), tokens of one image see each other both ways; pruned layers must keep
that for the kept image tokens, and the ``mean`` ranker must count it.
"""

from __future__ import annotations

import torch
from torch import nn

from fastv.core.segments import contiguous_runs
from fastv.families.base import Family


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
