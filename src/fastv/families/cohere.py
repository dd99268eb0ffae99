"""Aya Vision and Command A Vision (``aya_vision``, ``cohere2_vision``): SigLIP tiles, pixel-shuffled by
the projector into image placeholders, and a Cohere2 decoder (Command R7B / Command A).

Cohere2 interleaves sliding-window layers, which apply RoPE, with full-attention layers, which apply
*no* positional encoding at all (``Cohere2Attention`` rotates only when its ``sliding_window`` is
set). The ranking layer's queries and keys must be rebuilt the same way, or the first prefill's
adapter check (recomputed keys vs the keys the layer cached) refuses the run. Cohere2's rotary
rotates interleaved pairs; the module's own ``apply_rotary_pos_emb`` does that. A Cohere (v1)
decoder (no sliding layers, optional q/k layer norms, RoPE everywhere) needs nothing more.

No token -> image-region layout: images are split into a processor-chosen grid of tiles plus a
thumbnail, with tile marker tokens between them, which this adapter does not model.
"""

from __future__ import annotations

import torch
from torch import nn

from fastv.families.base import Family, PositionEmbeddings


def applies_rope(attention: nn.Module) -> bool:
    """Whether the layer rotates queries and keys: not on Cohere2's full-attention (non-sliding) layers."""
    model_type = getattr(getattr(attention, "config", None), "model_type", None)
    return not (model_type == "cohere2" and getattr(attention, "sliding_window", None) is None)


class CohereFamily(Family):
    """Skips RoPE where the Cohere2 layer does (its full-attention layers)."""

    def queries(
        self, attention: nn.Module, hidden: torch.Tensor, position_embeddings: PositionEmbeddings
    ) -> torch.Tensor:
        if applies_rope(attention):
            return super().queries(attention, hidden, position_embeddings)
        return self._project(attention, hidden, "q_proj", "q_norm")

    def keys(self, attention: nn.Module, hidden: torch.Tensor, position_embeddings: PositionEmbeddings) -> torch.Tensor:
        if applies_rope(attention):
            return super().keys(attention, hidden, position_embeddings)
        return self._project(attention, hidden, "k_proj", "k_norm")


class AyaVisionFamily(CohereFamily):
    name = "aya_vision"
    model_types = ("aya_vision",)
    model_classes = ("AyaVisionForConditionalGeneration", "AyaVisionModel")


class Cohere2VisionFamily(CohereFamily):
    name = "cohere2_vision"
    model_types = ("cohere2_vision",)
    model_classes = ("Cohere2VisionForConditionalGeneration", "Cohere2VisionModel")
