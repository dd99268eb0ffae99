"""PaliGemma and PaliGemma 2 (``paligemma``; Gemma / Gemma 2 decoders): the image tokens and the prompt
form one *prefix* in which every token attends to every other; only a suffix (training targets) and
generated tokens are causal.

How FastV reads this, following the Gemma 3 support (bidirectional image blocks):

* The prefix is one bidirectional block, read from the processor's ``token_type_ids`` (0 = prefix),
  as the model builds its own mask. Layers >= k keep that block among the kept tokens.
* ``last_token`` ranks by the last prompt token's attention row. That token ends the prefix, so its
  row is the same under the bidirectional mask as under a causal one: the attention the prompt's
  final position, which produces the answer, pays to each image token (FastV's definition, and the
  last row of eager attention maps). ``mean`` averages the rows of every prefix token under the
  model's bidirectional mask (image tokens also "see" the question that follows them), i.e. the
  attention each image token actually receives in that layer.
* Positions are 1-based in PaliGemma; FastV takes the model's own cos/sin, so nothing changes.
* Several images form one run of placeholders; ``budget="per_image"`` splits it into images of
  ``(image_size / patch_size)^2`` tokens.

Refused, with the reason: prompts without ``token_type_ids`` (the model's attention then depends
on the backend and on padding: unpadded SDPA / eager prefills run fully bidirectional, padded ones
causal), and PaliGemma 2 prompts whose prefix is longer than the Gemma 2 sliding window. On sliding
layers the model lets the prefix block override the window (``causal & window | block``), while
FastV's pruned masks and ranker apply the window to the block too (Gemma 3's ``(causal | block) &
window``); the two agree exactly when the prefix fits in the window (4096 tokens: every 224 / 448
checkpoint; the 896 ones, with 4096 image tokens, do not fit).
"""

from __future__ import annotations

import torch
from torch import nn

from fastv.core.segments import contiguous_runs, split_runs
from fastv.errors import FastVError
from fastv.families.base import Family
from fastv.families.layout import LayoutRequest, VisualLayout
from fastv.families.llava import llava_layout
from fastv.families.registry import register_family


class PaliGemmaFamily(Family):
    name = "paligemma"
    model_types = ("paligemma",)
    model_classes = ("PaliGemmaForConditionalGeneration", "PaliGemmaModel")

    def block_ids(self, model: nn.Module, input_ids: torch.Tensor, inputs: dict) -> torch.Tensor:
        """Block 0: the valid prefix (``token_type_ids == 0``); -1 for padding and the causal suffix."""
        token_types = inputs.get("token_type_ids")
        if token_types is None:
            raise FastVError(
                "FastV needs PaliGemma's `token_type_ids` (its processor returns them): without them the model's "
                "attention over the prompt depends on the backend and on padding (bidirectional or causal), so "
                "there is no single ranking to reproduce. Pass the processor's token_type_ids."
            )
        prefix = token_types.to(input_ids.device) == 0
        mask = inputs.get("attention_mask")
        if mask is not None:
            prefix &= mask.to(input_ids.device).bool()
        _check_prefix_fits_window(model, int(prefix.sum(dim=1).max()))
        return torch.where(prefix, torch.zeros_like(input_ids), torch.full_like(input_ids, -1))

    def segments(self, model: nn.Module, input_ids: torch.Tensor, prunable: torch.Tensor, inputs: dict) -> torch.Tensor:
        runs = contiguous_runs(torch.where(prunable, input_ids, torch.full_like(input_ids, -1)))
        per_image = _tokens_per_image(model.config)
        n_runs = int(runs.max()) + 1 if bool((runs >= 0).any()) else 0
        parts = torch.ones(runs.shape[0], n_runs, dtype=torch.long)
        for b in range(runs.shape[0]):
            for s in range(n_runs):
                parts[b, s] = max(1, int((runs[b] == s).sum()) // per_image)
        return split_runs(runs, parts)

    def visual_layouts(self, request: LayoutRequest) -> list[VisualLayout]:
        """SigLIP's (image_size / patch_size)^2 row-major grid over the resized square image, no CLS."""
        return llava_layout(request)


def _tokens_per_image(config) -> int:
    return (config.vision_config.image_size // config.vision_config.patch_size) ** 2


def _check_prefix_fits_window(model: nn.Module, prefix: int) -> None:
    text = model.config.get_text_config()
    window = getattr(text, "sliding_window", None)
    types = getattr(text, "layer_types", None) or []
    if window is not None and "sliding_attention" in types and prefix > int(window):
        raise FastVError(
            f"FastV does not support this PaliGemma prompt: its bidirectional prefix ({prefix} tokens) is longer "
            f"than the decoder's sliding window ({window}). The model lets the prefix override the window on "
            "sliding layers, which FastV's pruned masks do not reproduce. Use a prompt (or image resolution) whose "
            "image and prompt tokens fit in the window."
        )


register_family(PaliGemmaFamily())
