"""One self-check case per supported model type: a tiny random-weight model built from its config
(no download) and one prompt that exercises what is special about the family."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch

from fastv import compat
from fastv.selfcheck import prompts, tiny
from fastv.selfcheck.checks import PositionFn


@dataclass
class Case:
    model: torch.nn.Module
    inputs: dict
    prunable: torch.Tensor  # (n,) image / video positions
    positions: PositionFn = lambda n: None  # rotary position ids the reference needs (M-RoPE)
    blocks: torch.Tensor | None = None  # (n,) bidirectional image blocks (Gemma 3)


def _case(vlm, inputs: dict, **extra) -> Case:
    prunable = torch.isin(inputs["input_ids"][0], torch.tensor([tiny.IMAGE_TOKEN, tiny.VIDEO_TOKEN]))
    return Case(vlm.model, inputs, prunable, **extra)


def _mrope_case(vlm, inputs: dict) -> Case:
    """Qwen-VL / GLM-4V: the reference needs the model's own 3-D positions."""
    return _case(vlm, inputs, positions=prompts.qwen_positions(vlm, inputs))


def _omni_case(vlm, inputs: dict) -> Case:
    """Qwen Omni thinkers: 3-D positions from the thinker's get_rope_index (audio lengths, video time steps)."""
    return _case(vlm, inputs, positions=prompts.omni_positions(vlm, inputs))


# The ranking layer of Gemma 3, Idefics2 and Mistral 3 (k - 1 = 1) is a sliding-window one. The last prompt
# token scores only the keys inside its window, every other key exactly 0, so with the tiny models' windows
# (8, 12) the zeros filled the dropped set, their order chose the kept set, and a wrong ranking passed. Their
# cases put WINDOW_TEXT text tokens before the images and use a window that reaches every image token but the
# first: the kept set is decided by real scores, and the pruned layers' window (which counts kept tokens) is
# still shorter than the kept sequence. ``tests/selfcheck`` checks both for every case.
WINDOW_TEXT = 12
RANK_WINDOW = {"gemma3": 24, "idefics2": 24, "mistral3": 28}  # prompt length - WINDOW_TEXT - 1


def _gemma3(attn: str) -> Case:
    vlm = tiny.tiny_gemma3(attn, sliding_window=RANK_WINDOW["gemma3"])
    inputs = prompts.gemma3_prompt(vlm, before=WINDOW_TEXT)
    return _case(vlm, inputs, blocks=prompts.image_runs(inputs))


def _gemma4(attn: str) -> Case:
    """Images and a 2-frame video (where the release's Gemma 4 can encode videos): bidirectional blocks on
    sliding layers only."""
    vlm = tiny.tiny_gemma4(attn)
    inputs = prompts.gemma4_prompt(vlm, frames=2 if compat.gemma4_runs_videos() else 0)
    return Case(vlm.model, inputs, prompts.gemma4_visual(inputs), blocks=prompts.vision_runs(inputs))


def _paligemma(attn: str) -> Case:
    """PaliGemma 1 (Gemma decoder; PaliGemma 2's Gemma 2 has no SDPA): two images and the prompt, one
    bidirectional prefix, at 1-based positions."""
    vlm = tiny.tiny_paligemma(attn)
    inputs = prompts.paligemma_prompt(vlm, n_images=2)
    prefix = torch.zeros(inputs["input_ids"].shape[1], dtype=torch.long)
    return _case(vlm, inputs, positions=prompts.one_based_positions, blocks=prefix)


def _hunyuan_vl(attn: str) -> Case:
    """HunYuan-VL: two images of different sizes; the reference needs the model's own XD-RoPE positions."""
    vlm = tiny.tiny_hunyuan_vl(attn)
    inputs = prompts.hunyuan_vl_prompt(vlm, ((4, 6), (4, 4)))
    return _case(vlm, inputs, positions=prompts.hunyuan_positions(vlm, inputs))


def _molmo2(attn: str) -> Case:
    """Molmo2 on OLMo (q/k norms over the whole projection, post-norm, per-layer rotary): two images, every
    image-typed token in one bidirectional block."""
    vlm = tiny.tiny_molmo2(attn, variant="molmo2_o")
    inputs = prompts.molmo2_prompt(vlm, (((2, 2), (2, 3)), ((2, 1), (1, 2))))
    blocks = torch.where(inputs["mm_token_type_ids"][0] == 1, 0, -1)
    return Case(vlm.model, inputs, inputs["input_ids"][0] == tiny.IMAGE_TOKEN, blocks=blocks)


def _on(build: Callable[[str], Any], prompt: Callable[..., dict], case=_case, **options) -> Callable[[str], Case]:
    """A case builder: tiny model ``build(attn)``, one ``prompt(vlm, **options)``, wrapped by ``case``."""

    def make(attn: str) -> Case:
        vlm = build(attn)
        return case(vlm, prompt(vlm, **options))

    return make


def _glm4v(variant: str) -> Callable[[str], Case]:
    """GLM-4V takes images or a video per prompt, not both: the video (frames on the image id) is the case."""
    return _on(
        partial(tiny.tiny_glm4v, variant=variant),
        prompts.glm4v_prompt,
        _mrope_case,
        image_grid=None,
        video_grid=(4, 4, 4),
    )


CASES: dict[str, Callable[[str], Case]] = {
    "llava": _on(tiny.tiny_llava, prompts.image_prompt),
    "llava_next": _on(tiny.tiny_llava_next, prompts.llava_next_prompt),
    "llava_next_video": _on(tiny.tiny_llava_next_video, prompts.video_prompt, frames=4),
    "llava_onevision": _on(partial(tiny.tiny_llava_onevision, sliding_window=8), prompts.video_prompt, frames=4),
    "video_llava": _on(tiny.tiny_video_llava, prompts.video_prompt, frames=4),
    "qwen2_vl": _on(tiny.tiny_qwen2_vl, prompts.qwen_prompt, _mrope_case),
    "qwen2_5_vl": _on(tiny.tiny_qwen2_5_vl, prompts.qwen_prompt, _mrope_case),
    "qwen3_vl": _on(tiny.tiny_qwen3_vl, prompts.qwen3_prompt, _mrope_case, video_grid=(4, 4, 4)),
    "qwen3_vl_moe": _on(partial(tiny.tiny_qwen3_vl, moe=True), prompts.qwen3_prompt, _mrope_case, video_grid=(4, 4, 4)),
    # hybrid decoder: Gated DeltaNet linear-attention layers 0 and 2 (pruned from 2), full attention 1 and 3
    "qwen3_5": _on(tiny.tiny_qwen3_5, prompts.qwen3_prompt, _mrope_case, video_grid=(4, 4, 4)),
    "qwen3_5_moe": _on(partial(tiny.tiny_qwen3_5, moe=True), prompts.qwen3_prompt, _mrope_case, video_grid=(4, 4, 4)),
    "glm4v": _glm4v("glm4v"),
    "glm4v_moe": _glm4v("glm4v_moe"),
    "glm46v": _glm4v("glm46v"),
    "gemma3": _gemma3,
    "gemma4": _gemma4,
    "internvl": _on(tiny.tiny_internvl, prompts.image_prompt),
    "idefics3": _on(tiny.tiny_idefics3, prompts.image_prompt, stacked=True),
    "smolvlm": _on(partial(tiny.tiny_idefics3, smolvlm=True), prompts.image_prompt, stacked=True),
    "mistral3": _on(
        partial(tiny.tiny_mistral3, sliding_window=RANK_WINDOW["mistral3"]), prompts.mistral3_prompt, before=WINDOW_TEXT
    ),
    "vipllava": _on(tiny.tiny_vipllava, prompts.image_prompt),
    "fast_vlm": _on(tiny.tiny_fast_vlm, prompts.image_prompt),
    "perception_lm": _on(tiny.tiny_perception_lm, prompts.perception_lm_prompt),
    "aya_vision": _on(tiny.tiny_cohere_vlm, prompts.image_prompt, n_images=4),
    "cohere2_vision": _on(partial(tiny.tiny_cohere_vlm, variant="cohere2_vision"), prompts.image_prompt, n_images=4),
    "idefics2": _on(
        partial(tiny.tiny_idefics2, sliding_window=RANK_WINDOW["idefics2"]),
        prompts.image_prompt,
        n_images=4,
        stacked=True,
        before=WINDOW_TEXT,
    ),
    "paligemma": _paligemma,
    "ovis2": _on(tiny.tiny_ovis2, prompts.ovis2_prompt),
    "ovis2_5": _on(tiny.tiny_ovis2_5, prompts.ovis2_5_prompt, frames=2),  # transformers 5.25 on
    "llava_onevision1_5": _on(tiny.tiny_llava_onevision1_5, prompts.llava_onevision1_5_prompt, frames=2),  # 5.25 on
    # audio, image and video in one prompt: audio tokens are never candidates
    "qwen2_5_omni_thinker": _on(tiny.tiny_qwen2_5_omni, prompts.omni_prompt, _omni_case),
    "qwen3_omni_moe_thinker": _on(tiny.tiny_qwen3_omni, prompts.omni_prompt, _omni_case),
    # hybrid decoders: LFM2's short-convolution layers 0 and 2 (pruned from 2); MiniCPM-V 4.6's Qwen3.5 decoder
    "lfm2_vl": _on(tiny.tiny_lfm2_vl, prompts.lfm2_vl_prompt),
    "minicpmv4_6": _on(tiny.tiny_minicpmv4_6, prompts.minicpmv_prompt, frames=3),
    "hunyuan_vl": _hunyuan_vl,
    "molmo2": _molmo2,
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
