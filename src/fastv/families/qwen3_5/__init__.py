"""Qwen3.5 and Qwen3.5-MoE (also the Qwen3.6 checkpoints): a hybrid decoder behind Qwen3-VL style vision.

The decoder interleaves Gated DeltaNet linear-attention layers with gated full-attention layers
(``text_config.layer_types``, 3:1 in the released checkpoints). Only a full-attention layer can
rank, so ``k-1`` must be one; pruned linear-attention layers run their recurrence over the kept
tokens (``fastv.patch``). A full-attention layer's ``q_proj`` packs, per head, the query and an
output gate: ranking uses the query half, through ``q_norm`` and the partial rotary the model applies.
Vision is Qwen3-VL's without DeepStack: interleaved M-RoPE, one run of video tokens per frame
(timestamps between them), so the default per-run segments are per frame.
"""

from __future__ import annotations

import torch
from torch import nn

from fastv.families.base import Family, PositionEmbeddings
from fastv.families.layout import LayoutRequest, VisualLayout
from fastv.families.qwen_vl import qwen2_vl_layout
from fastv.families.registry import register_family


class Qwen3_5Family(Family):
    name = "qwen3_5"
    model_types = ("qwen3_5", "qwen3_5_moe")
    model_classes = ("Qwen3_5ForConditionalGeneration", "Qwen3_5MoeForConditionalGeneration")
    recurrent_layer_types = ("linear_attention",)

    def queries(
        self, attention: nn.Module, hidden: torch.Tensor, position_embeddings: PositionEmbeddings
    ) -> torch.Tensor:
        """The query half of each head's ``[query | gate]`` slice of ``q_proj``, normed and rotated."""
        packed = attention.q_proj(hidden).view(*hidden.shape[:-1], -1, 2 * attention.head_dim)
        queries = attention.q_norm(packed[..., : attention.head_dim]).transpose(1, 2)
        cos, sin = position_embeddings
        return self.rotary(attention)(queries, queries, cos, sin)[0]

    def visual_layouts(self, request: LayoutRequest) -> list[VisualLayout]:
        return qwen2_vl_layout(request)

    def recurrence_macs(self, mixer: nn.Module) -> int:
        """Gated DeltaNet, per value head and token: read the state at the key (``S^T k``), write the
        delta rule's rank-1 update (``k delta^T``), read out at the query (``S^T q``): 3 state-sized MACs."""
        return 3 * mixer.num_v_heads * mixer.head_k_dim * mixer.head_v_dim


register_family(Qwen3_5Family())
