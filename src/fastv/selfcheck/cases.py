"""One self-check case per supported model type: a tiny random-weight model built from its config
(no download) and one prompt that exercises what is special about the family."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from fastv.selfcheck import prompts, tiny
from fastv.selfcheck.checks import PositionFn


@dataclass
class Case:
    model: torch.nn.Module
    inputs: dict
    prunable: torch.Tensor  # (n,) image / video positions
    positions: PositionFn = lambda n: None  # rotary position ids the reference needs (M-RoPE)
    blocks: torch.Tensor | None = None  # (n,) bidirectional image blocks (Gemma 3)


def _prunable(inputs: dict) -> torch.Tensor:
    return torch.isin(inputs["input_ids"][0], torch.tensor([tiny.IMAGE_TOKEN, tiny.VIDEO_TOKEN]))


def _image_case(vlm, **prompt) -> Case:
    inputs = prompts.image_prompt(vlm, **prompt)
    return Case(vlm.model, inputs, _prunable(inputs))


def _llava_next(attn: str) -> Case:
    vlm = tiny.tiny_llava_next(attn)
    inputs = prompts.llava_next_prompt(vlm)
    return Case(vlm.model, inputs, _prunable(inputs))


def _video_case(vlm) -> Case:
    inputs = prompts.video_prompt(vlm, frames=4)
    return Case(vlm.model, inputs, _prunable(inputs))


def _qwen_case(vlm) -> Case:
    inputs = prompts.qwen_prompt(vlm)
    return Case(vlm.model, inputs, _prunable(inputs), positions=prompts.qwen_positions(vlm, inputs))


def _qwen3_vl(attn: str, moe: bool = False) -> Case:
    vlm = tiny.tiny_qwen3_vl(attn, moe=moe)
    inputs = prompts.qwen3_prompt(vlm, video_grid=(4, 4, 4))
    return Case(vlm.model, inputs, _prunable(inputs), positions=prompts.qwen_positions(vlm, inputs))


def _glm4v(attn: str, variant: str) -> Case:
    vlm = tiny.tiny_glm4v(attn, variant=variant)
    inputs = prompts.glm4v_prompt(vlm, image_grid=None, video_grid=(4, 4, 4))
    return Case(vlm.model, inputs, _prunable(inputs), positions=prompts.qwen_positions(vlm, inputs))


def _gemma3(attn: str) -> Case:
    vlm = tiny.tiny_gemma3(attn)
    inputs = prompts.gemma3_prompt(vlm)
    return Case(vlm.model, inputs, _prunable(inputs), blocks=prompts.image_runs(inputs))


def _mistral3(attn: str) -> Case:
    vlm = tiny.tiny_mistral3(attn)
    inputs = prompts.mistral3_prompt(vlm)
    return Case(vlm.model, inputs, _prunable(inputs))


CASES: dict[str, Callable[[str], Case]] = {
    "llava": lambda attn: _image_case(tiny.tiny_llava(attn)),
    "llava_next": _llava_next,
    "llava_next_video": lambda attn: _video_case(tiny.tiny_llava_next_video(attn)),
    "llava_onevision": lambda attn: _video_case(tiny.tiny_llava_onevision(attn, sliding_window=8)),
    "video_llava": lambda attn: _video_case(tiny.tiny_video_llava(attn)),
    "qwen2_vl": lambda attn: _qwen_case(tiny.tiny_qwen2_vl(attn)),
    "qwen2_5_vl": lambda attn: _qwen_case(tiny.tiny_qwen2_5_vl(attn)),
    "qwen3_vl": _qwen3_vl,
    "qwen3_vl_moe": lambda attn: _qwen3_vl(attn, moe=True),
    "glm4v": lambda attn: _glm4v(attn, "glm4v"),
    "glm4v_moe": lambda attn: _glm4v(attn, "glm4v_moe"),
    "glm46v": lambda attn: _glm4v(attn, "glm46v"),
    "gemma3": _gemma3,
    "internvl": lambda attn: _image_case(tiny.tiny_internvl(attn)),
    "idefics3": lambda attn: _image_case(tiny.tiny_idefics3(attn), stacked=True),
    "smolvlm": lambda attn: _image_case(tiny.tiny_idefics3(attn, smolvlm=True), stacked=True),
    "mistral3": _mistral3,
}


def to_device(case: Case, device: torch.device, dtype: torch.dtype) -> Case:
    """The case on ``device``: weights and pixels in ``dtype``, ids and masks as they are."""
    case.model.to(device=device, dtype=dtype)

    def move(value):
        if not isinstance(value, torch.Tensor):
            return value
        return value.to(device, dtype) if value.is_floating_point() else value.to(device)

    case.inputs = {key: move(value) for key, value in case.inputs.items()}
    return case  # prunable, positions and blocks stay on the CPU: the checks and the reference move them
