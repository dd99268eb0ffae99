"""What a doctor case is, and the small builders the families' self-check modules make theirs from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from fastv.selfcheck.checks import PositionFn
from fastv.selfcheck.prompts import qwen_positions
from fastv.selfcheck.tiny import IMAGE_TOKEN, VIDEO_TOKEN

# A family's doctor case: tiny model and one prompt, for one attention backend ("sdpa", "eager", ...).
CaseBuilder = Callable[[str], "Case"]

# The ranking layer of Gemma 3, Idefics2 and Mistral 3 (k - 1 = 1) is a sliding-window one. The last prompt
# token scores only the keys inside its window, every other key exactly 0, so with the tiny models' windows
# (8, 12) the zeros filled the dropped set, their order chose the kept set, and a wrong ranking passed. Their
# cases put WINDOW_TEXT text tokens before the images and use a window (prompt length - WINDOW_TEXT - 1) that
# reaches every image token but the first: the kept set is decided by real scores, and the pruned layers'
# window (which counts kept tokens) is still shorter than the kept sequence. ``tests/selfcheck`` checks both
# for every case.
WINDOW_TEXT = 12


@dataclass
class Case:
    model: torch.nn.Module
    inputs: dict
    prunable: torch.Tensor  # (n,) image / video positions
    positions: PositionFn = lambda n: None  # rotary position ids the reference needs (M-RoPE)
    blocks: torch.Tensor | None = None  # (n,) bidirectional image blocks (Gemma 3)


def case_of(vlm, inputs: dict, **extra) -> Case:
    """A case whose prunable tokens are the shared image / video placeholder ids."""
    prunable = torch.isin(inputs["input_ids"][0], torch.tensor([IMAGE_TOKEN, VIDEO_TOKEN]))
    return Case(vlm.model, inputs, prunable, **extra)


def mrope_case(vlm, inputs: dict) -> Case:
    """Qwen-VL / GLM-4V: the reference needs the model's own 3-D positions."""
    return case_of(vlm, inputs, positions=qwen_positions(vlm, inputs))


def on(build: Callable[[str], Any], prompt: Callable[..., dict], case=case_of, **options) -> CaseBuilder:
    """A case builder: tiny model ``build(attn)``, one ``prompt(vlm, **options)``, wrapped by ``case``."""

    def make(attn: str) -> Case:
        vlm = build(attn)
        return case(vlm, prompt(vlm, **options))

    return make


def to_device(case: Case, device: torch.device, dtype: torch.dtype) -> Case:
    """The case on ``device``: weights and pixels in ``dtype``, ids and masks as they are."""
    case.model.to(device=device, dtype=dtype)

    def move(value):
        if not isinstance(value, torch.Tensor):
            return value
        return value.to(device, dtype) if value.is_floating_point() else value.to(device)

    case.inputs = {key: move(value) for key, value in case.inputs.items()}
    return case  # prunable, positions and blocks stay on the CPU: the checks and the reference move them
