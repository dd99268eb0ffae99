"""MiniCPM-V 4.6: a SigLIP-style NaViT vision tower with window-attention mergers, in front of Qwen3.5's
hybrid text decoder (``qwen3_5_text``: Gated DeltaNet linear-attention layers between gated full-attention
layers), so the Qwen3.5 adapter's query half of ``q_proj`` ranks and the hybrid core prunes.

The decoder gets plain 1-D positions (no M-RoPE grids: the outer model passes none), which every rotary
section reads alike. Each image, image slice and video frame is one contiguous run of image / video tokens
between start / end markers, so ``budget="per_image"`` ranks each slice and frame on its own.
"""

from __future__ import annotations

import torch
from torch import nn

from fastv.compat import minicpmv4_6_packs_mixed_sizes, transformers_version
from fastv.errors import FastVError, UnsupportedModelError
from fastv.families.base import Family
from fastv.families.qwen3_5 import Qwen3_5Family
from fastv.families.registry import register_family

# The decoders whose gated full attention (``[query | gate]`` per head in q_proj) this adapter ranks with.
_TEXT_TYPES = ("qwen3_5_text", "qwen3_5_moe_text")


class MiniCPMV4_6Family(Qwen3_5Family):
    name = "minicpmv4_6"
    model_types = ("minicpmv4_6",)
    model_classes = ("MiniCPMV4_6ForConditionalGeneration", "MiniCPMV4_6Model")
    visual_layouts = Family.visual_layouts  # its NaViT slices are not Qwen's merged grid: no layout yet

    def check_supported(self, model: nn.Module, language_model: nn.Module) -> None:
        """The adapter splits Qwen3.5's gated ``q_proj``; another decoder's queries would be misread silently."""
        text_type = getattr(self.text_config(language_model), "model_type", None)
        if text_type not in _TEXT_TYPES:
            raise UnsupportedModelError(
                f"FastV does not support this {type(model).__name__} with a {text_type!r} text decoder: the "
                f"{self.name!r} adapter ranks with Qwen3.5's gated query projection (each head's q_proj packs "
                f"[query | gate]) and knows only the {list(_TEXT_TYPES)} decoders MiniCPM-V 4.6 ships with."
            )
        super().check_supported(model, language_model)

    def check_inputs(self, model: nn.Module, inputs: dict) -> None:
        """Refuse a NaViT pack of differently sized images where the release's window merger reads every image
        with the first one's patch grid (it would fail or, where the counts fit, encode them wrongly)."""
        mode = inputs.get("downsample_mode") or getattr(model.config, "downsample_mode", None)
        for key in ("target_sizes", "target_sizes_videos"):
            sizes = inputs.get(key)
            if sizes is None or len(sizes) < 2 or not bool((torch.as_tensor(sizes) != sizes[0]).any()):
                continue
            if mode == "4x" or minicpmv4_6_packs_mixed_sizes():  # "4x" skips the window merger
                return
            raise FastVError(
                f"transformers {transformers_version()}'s MiniCPM-V 4.6 window merger reads every image of a pack "
                f"with the first one's patch grid, so {key} {torch.as_tensor(sizes).tolist()} would be encoded "
                "wrongly (with or without FastV). Upgrade transformers to 5.19 or later, pass images of one "
                "size per pack, or downsample_mode='4x'."
            )


register_family(MiniCPMV4_6Family())
