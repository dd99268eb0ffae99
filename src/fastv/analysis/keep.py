"""Which image regions FastV keeps: run one pruned prefill, map kept prompt positions to image boxes.

The family-specific part (token offset -> box of the original image) lives in
``fastv.families.layout``; this module only joins it with ``fastv.last_keep``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from fastv.config import FastVConfig
from fastv.families.layout import LayoutRequest, VisualLayout, assign_positions, layouts


@dataclass
class KeepPicture:
    """Everything a keep picture shows: per visual input its layout, frames and prompt positions."""

    layouts: list[VisualLayout]
    frames: list[list[Image.Image]]  # per layout: one image, or a video's frames
    positions: list[torch.Tensor]  # per layout: prompt position of each of its tokens
    selections: dict[str, set[int]]  # label -> kept prompt positions

    def kept_tokens(self, label: str, index: int) -> set[int]:
        """Token offsets of layout ``index`` kept by selection ``label``."""
        kept = self.selections[label]
        return {offset for offset, pos in enumerate(self.positions[index].tolist()) if pos in kept}


def kept_positions(model: torch.nn.Module, inputs: dict[str, Any], config: FastVConfig) -> torch.Tensor:
    """Prompt positions FastV(config) keeps for this one-prompt ``inputs`` (one prefill, then unpatched)."""
    from fastv.patch import apply, last_keep, remove

    apply(model, config)
    try:
        with torch.no_grad():
            model(**inputs, logits_to_keep=1)
        return last_keep(model)[0]
    finally:
        remove(model)


def selection_label(config: FastVConfig) -> str:
    kept = f"keep {config.keep}" if config.keep is not None else f"R={config.ratio:.0%}"
    name = "random" if config.rank == "random" else f"FastV ({config.rank})"
    return f"{name}, K={config.k}, {kept}"


def keep_picture(
    model: torch.nn.Module,
    processor: Any,
    inputs: dict[str, Any],
    images: Sequence[Image.Image],
    configs: Sequence[FastVConfig],
    videos: Sequence[Sequence[Image.Image]] = (),
) -> KeepPicture:
    """Kept positions under each of ``configs`` (e.g. FastV and random), placed on the input images."""
    request = LayoutRequest(
        config=model.config,
        image_sizes=[(im.height, im.width) for im in images],
        image_processor=getattr(processor, "image_processor", None),
        inputs=inputs,
        video_sizes=[(v[0].height, v[0].width) for v in videos],
        video_frames=[len(v) for v in videos],
        video_processor=getattr(processor, "video_processor", None),
    )
    lays = layouts(request)
    positions = assign_positions(lays, inputs["input_ids"][0].cpu(), model.config)
    frames = [[im] for im in images] + [list(v) for v in videos]  # layouts list images, then videos
    selections = {selection_label(c): set(kept_positions(model, inputs, c).tolist()) for c in configs}
    return KeepPicture(lays, frames, positions, selections)
