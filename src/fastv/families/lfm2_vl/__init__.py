"""LFM2-VL: SigLIP2 NaFlex vision, pixel-unshuffled into image tokens, in front of a hybrid LFM2 decoder.

LFM2 (and LFM2-MoE) interleave gated short-convolution layers (``"conv"`` in ``text_config.layer_types``)
with full-attention layers. A conv layer is recurrent in FastV's sense: a causal depthwise convolution over
the last ``conv_L_cache`` inputs, whose cached state carries those inputs into decoding. Pruned conv layers
therefore run over the kept tokens only, in order, with the padding mask of the re-packed batch
(``fastv.patch``), and ``k-1`` must be an attention layer. Attention normalises queries and keys per head
with ``q_layernorm`` / ``k_layernorm`` before the rotary embedding.

Each image (or 512px tile, or thumbnail) is one contiguous run of image tokens between the processor's
row/column and start/end markers (its default ``use_image_special_tokens``), so ``budget="per_image"`` ranks
each tile on its own.
"""

from __future__ import annotations

import torch
from torch import nn

from fastv.families.base import Family
from fastv.families.registry import register_family

# LFM2 names its per-head query / key norms differently from the q_norm / k_norm the default adapter reads.
_NORMS = {"q_norm": "q_layernorm", "k_norm": "k_layernorm"}


class Lfm2VlFamily(Family):
    name = "lfm2_vl"
    model_types = ("lfm2_vl",)
    model_classes = ("Lfm2VlForConditionalGeneration", "Lfm2VlModel")
    prunable_token_attrs = ("image_token_id",)
    recurrent_layer_types = ("conv",)

    def _project(self, attention: nn.Module, hidden: torch.Tensor, proj: str, norm: str) -> torch.Tensor:
        return super()._project(attention, hidden, proj, _NORMS[norm])


register_family(Lfm2VlFamily())
