"""Everything fastv knows about transformers' internal names, in one place.

transformers renames forward keywords and helper arguments between minor releases (5.24 renamed
``past_key_values`` to ``cache`` in every forward, its outputs and the mask builders). fastv finds
arguments by what they are where it can (the ``Cache`` among a hook's arguments) and reads the few
remaining names from here, so the next rename costs one line.
"""

from __future__ import annotations

import functools
import inspect
import re
import sys
import warnings
from collections.abc import Callable
from typing import Any

import torch
from packaging.version import Version
from transformers import masking_utils
from transformers.cache_utils import Cache

# The oldest and newest transformers releases CI runs the whole suite on (locks/oldest.txt, locks/newest.txt;
# locks/vllm.txt holds the newest a current vLLM accepts, between them).
TESTED_TRANSFORMERS = ("5.16.1", "5.25.0")
# The torch releases CI runs the suite on (every lock pins it); fastv needs torch>=2.5 (torch.distributed.tensor).
TESTED_TORCH = ("2.13.0",)


# The keyword forwards and mask builders take the KV cache by: ``cache`` from 5.24, ``past_key_values`` before.
CACHE_KEYWORD = (
    "cache" if "cache" in inspect.signature(masking_utils.create_causal_mask).parameters else "past_key_values"
)


def cache_keyword() -> str:
    return CACHE_KEYWORD


def find_cache(*arguments: dict[str, Any]) -> Cache | None:
    """The KV cache among a call's arguments, whatever keyword carried it."""
    for mapping in arguments:
        for value in mapping.values():
            if isinstance(value, Cache):
                return value
    return None


def output_cache(output: Any) -> Cache | None:
    """The KV cache a model returned (``output.cache`` from 5.24, ``output.past_key_values`` before)."""
    for name in ("cache", "past_key_values"):
        value = getattr(output, name, None)
        if isinstance(value, Cache):
            return value
    return None


def with_cache(cache_value: Cache | None, **kwargs: Any) -> dict[str, Any]:
    """Keyword arguments for a forward or mask builder call, with the cache under this release's name."""
    return {**kwargs, cache_keyword(): cache_value}


def bind_arguments(module: torch.nn.Module, args: tuple, kwargs: dict) -> dict[str, Any]:
    """A forward's arguments by parameter name, however the caller passed them (positionally or not).

    A forward pre-hook gets positional and keyword arguments apart; FastV must read ``input_ids`` and
    ``attention_mask`` the same way either way.
    """
    if not args:
        return dict(kwargs)
    signature = inspect.signature(module.forward)
    try:
        bound = signature.bind_partial(*args, **kwargs)
    except TypeError as error:
        raise TypeError(f"{type(module).__name__}.forward{signature} cannot take these arguments: {error}") from None
    named = dict(bound.arguments)
    for parameter in signature.parameters.values():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            named.update(named.pop(parameter.name, {}))
    return named


def transformers_version() -> Version:
    """The installed release (read from ``sys.modules``: building some models replaces the module object)."""
    return Version(sys.modules["transformers"].__version__)


def is_newer_than_tested(version: Version | None = None) -> bool:
    """Any release past the newest tested one, patch releases included: CI has not run them."""
    version = version or transformers_version()
    return version.release > Version(TESTED_TRANSFORMERS[1]).release


_warned: set[str] = set()


def warn_if_untested() -> None:
    """Warn once per process when transformers is newer than the newest release CI tested."""
    version = transformers_version()
    if str(version) in _warned or not is_newer_than_tested(version):
        return
    _warned.add(str(version))
    oldest, newest = TESTED_TRANSFORMERS
    warnings.warn(
        f"fastv is tested on transformers {oldest} to {newest}; you have {version}. FastV patches transformers "
        "internals that change between releases: run `fastv doctor` to check that pruning is exact on your stack.",
        UserWarning,
        stacklevel=3,
    )


def molmo2_offsets_pooling() -> bool:
    """Whether Molmo2's model offsets each image's ``image_token_pooling`` itself (from transformers 5.25:
    it takes ``image_num_crops`` and needs it for several images) rather than the processor doing it.

    Read off ``Molmo2Model.get_image_features``' parameters, not the version number.
    """
    from transformers.models.molmo2.modeling_molmo2 import Molmo2Model

    return "image_num_crops" in inspect.signature(Molmo2Model.get_image_features).parameters


def molmo2_concat_images(groups: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Molmo2's ``pixel_values`` / ``image_token_pooling`` (and, where the model offsets, ``image_num_crops``)
    for several groups of images (one image as ``Molmo2`` crops it, or a prompt's inputs), in this release's
    convention: the model offsets each image's pooling past the crops before it (5.25 on), or the pooling
    indices arrive offset already (the processor's job before).
    """
    pixels = [g["pixel_values"] for g in groups]
    merged = {"pixel_values": torch.cat(pixels)}
    if molmo2_offsets_pooling():
        merged["image_token_pooling"] = torch.cat([g["image_token_pooling"] for g in groups])
        merged["image_num_crops"] = torch.cat(
            [g.get("image_num_crops", torch.tensor([p.shape[0]])) for g, p in zip(groups, pixels, strict=True)]
        )
        return merged
    offsets = torch.tensor([0] + [p.shape[0] * p.shape[1] for p in pixels[:-1]]).cumsum(0).tolist()
    merged["image_token_pooling"] = torch.cat(
        [
            torch.where(g["image_token_pooling"] >= 0, g["image_token_pooling"] + offset, g["image_token_pooling"])
            for g, offset in zip(groups, offsets, strict=True)
        ]
    )
    return merged


def gemma4_nests_videos() -> bool:
    """Whether Gemma 4 takes videos nested, ``pixel_values_videos`` / ``video_position_ids`` as
    (videos, frames, patches, ...) with no frame counts (up to 5.18), rather than frames flattened with
    ``num_frames_per_video`` (5.19 on). Read off ``get_video_features``' source, not the version number."""
    from transformers.models.gemma4.modeling_gemma4 import Gemma4Model

    return "video_position_ids.flatten(0, 1)" in inspect.getsource(Gemma4Model.get_video_features)


def gemma4_runs_videos() -> bool:
    """Whether this release's ``Gemma4Model`` can encode videos: up to 5.18 nested (see
    ``gemma4_nests_videos``), from 5.23 with frame counts; 5.19 to 5.22 take ``num_frames_per_video`` but do
    not hand it to ``get_video_features``, which then raises, so a Gemma 4 video prompt fails in stock
    transformers (with or without FastV).

    Read off the forward's source (the call that forwards the frame counts), not the version number.
    """
    from transformers.models.gemma4.modeling_gemma4 import Gemma4Model

    source = inspect.getsource(Gemma4Model.forward)
    forwards_counts = re.search(r"get_video_features\([^)]*num_frames_per_video", source) is not None
    return forwards_counts or gemma4_nests_videos()


def gemma4_video_inputs(pixels: torch.Tensor, positions: torch.Tensor) -> dict[str, torch.Tensor]:
    """One video's inputs from its (frames, patches, ...) ``pixels`` and ``positions``, in this release's layout."""
    if gemma4_nests_videos():
        return {"pixel_values_videos": pixels[None], "video_position_ids": positions[None]}
    return {
        "pixel_values_videos": pixels,
        "video_position_ids": positions,
        "num_frames_per_video": torch.tensor([pixels.shape[0]]),
    }


def decoder_under_model(model: torch.nn.Module) -> torch.nn.Module | None:
    """The decoder stack where the outer model holds it directly as ``model.model``, or None.

    An Omni thinker (Qwen2.5-Omni, Qwen3-Omni) in 5.16 holds its audio / vision towers, the
    ``get_*_features`` helpers and its text decoder itself (``thinker.model`` has the ``layers``); by 5.22 a
    ``*ThinkerModel`` wraps them and the decoder is ``thinker.model.language_model``, as in other VLMs.
    Read off the module tree, not the version number.
    """
    inner = getattr(model, "model", None)
    return inner if isinstance(inner, torch.nn.Module) and hasattr(inner, "layers") else None


_APPLIES_MULTIMODAL_ROTARY: dict[type, bool] = {}  # a plain dict: torch.compile traces lookups, not lru_cache


def _applies_multimodal_rotary(attention_class: type) -> bool:
    if attention_class not in _APPLIES_MULTIMODAL_ROTARY:
        source = inspect.getsource(attention_class.forward)
        _APPLIES_MULTIMODAL_ROTARY[attention_class] = "apply_multimodal_rotary_pos_emb(" in source
    return _APPLIES_MULTIMODAL_ROTARY[attention_class]


def multimodal_rotary(attention: torch.nn.Module) -> Callable | None:
    """The rotary an M-RoPE attention applies itself, as ``(q, k, cos, sin) -> (q, k)``, or None.

    Up to 5.16 M-RoPE decoders (Qwen2-VL, Qwen2.5-VL, the Qwen2.5-Omni thinker; HunYuan-VL with four XD-RoPE
    axes) hand every layer per-axis (axes, B, n, d) cos/sin tables and the attention interleaves the axes'
    ``mrope_section`` bands in ``apply_multimodal_rotary_pos_emb``; from 5.17 the rotary embedding folds the
    bands and attention applies a plain ``apply_rotary_pos_emb``.
    Read off the attention's forward source, not the version number.
    """
    if not _applies_multimodal_rotary(type(attention)):
        return None
    module = sys.modules[type(attention).__module__]
    section = getattr(attention, "mrope_section", None) or attention.config.rope_parameters["mrope_section"]
    return functools.partial(module.apply_multimodal_rotary_pos_emb, mrope_section=section)


def generate_expands_multi_image_prompts() -> bool:
    """Whether ``generate`` copies a several-image prompt correctly for beams / ``num_return_sequences``.

    Up to 5.17 it ``repeat_interleave``s ``pixel_values`` image by image, so the copies of a two-image
    prompt see [a, a, b, b] instead of [a, b, a, b]: stock transformers decodes them wrongly, FastV or not.
    From 5.18 it encodes the images first and copies the features per prompt. Read off the expansion's
    source, not the version number.
    """
    from transformers.generation.utils import GenerationMixin

    return "_expand_multimodal_outputs" in inspect.getsource(GenerationMixin._expand_inputs_for_generation)


def minicpmv4_6_packs_mixed_sizes() -> bool:
    """Whether MiniCPM-V 4.6's window-attention merger takes images of different sizes in one NaViT pack.

    From 5.19 it merges each 2x2 window where the window index placed it. Up to 5.18 it reshapes the pack as equal
    images of the first image's patch grid: other sizes fail in ``view`` or, where the patch counts happen
    to fit (8x16 and 16x8), are merged with the wrong grid silently (with or without FastV).

    Read off the merger's forward source (its call of ``get_vision_merged_shape``), not the version number.
    """
    from transformers.models.minicpmv4_6.modeling_minicpmv4_6 import MiniCPMV4_6ViTWindowAttentionMerger

    return "get_vision_merged_shape" not in inspect.getsource(MiniCPMV4_6ViTWindowAttentionMerger.forward)


def stacked_image_features(features: torch.Tensor | list[torch.Tensor] | tuple[torch.Tensor, ...]) -> torch.Tensor:
    """``get_image_features(...).pooler_output`` as one ``(images, tokens, hidden)`` tensor, for towers whose
    images all give the same token count: FastVLM returns that tensor from 5.18 (up to 5.17: a list of
    ``(tokens, hidden)`` per image), LLaVA a list on every release.

    Read off the returned value's type, not the version number.
    """
    if isinstance(features, torch.Tensor):
        return features
    return torch.stack(list(features))


def rotary_table_is_matmul(rotary: torch.nn.Module) -> bool:
    """Whether ``rotary`` (a rotary embedding module) builds its cos/sin table with a matmul.

    Up to 5.18 every rotary embedding computes its angles as ``inv_freq_expanded @ position_ids_expanded``,
    a batched matmul with an inner size of 1 that ``FlopCounterMode`` counts (2 FLOPs per angle); from 5.19
    it is a broadcast ``position_ids[..., None] * inv_freq``, which it does not count. Neither is a FLOP of
    fastv's exact count (RoPE is left out on every release). Read off the forward's source, not the version.
    """
    source = inspect.getsource(type(rotary).forward)
    return re.search(r"inv_freq_expanded\S*\s*@", source) is not None


def video_llava_image_keyword() -> str:
    """The keyword Video-LLaVA takes image pixels by: ``pixel_values`` from 5.21 (which deprecates the old
    ``pixel_values_images``), ``pixel_values_images`` before. Read off the forward's parameters."""
    from transformers import VideoLlavaForConditionalGeneration

    parameters = inspect.signature(VideoLlavaForConditionalGeneration.forward).parameters
    return "pixel_values" if "pixel_values" in parameters else "pixel_values_images"


def stock_tensor_parallel_runs_vlms() -> bool:
    """Whether transformers' own ``tp_plan="auto"`` loading runs the multimodal models of the registry.

    Up to 5.18 its DTensor backend shards weights but hands some modules plain-tensor inputs (Gemma 4's vision
    tower: ``aten.mm got mixed torch.Tensor and DTensor``; MoE experts: ``aten._grouped_mm``), so those models
    fail before FastV runs (seen on 5.16.1). 5.19 rewrote that backend around resolved per-module plans
    (``resolve_parallel_plans``), with which they load and run (seen on 5.22.2 and 5.25.0)."""
    from transformers.distributed import tensor_parallel

    return hasattr(tensor_parallel, "resolve_parallel_plans")


def perception_lm_forces_timm_tower() -> bool:
    """Whether ``PerceptionLMConfig`` turns any vision config into timm's (``TimmWrapperConfig``), as up to
    5.19, so a saved checkpoint with another tower (the self-check's CLIP stand-in) reloads as a timm one."""
    from transformers import PerceptionLMConfig

    config = PerceptionLMConfig(vision_config={"model_type": "clip_vision_model"})
    return type(config.vision_config).__name__ == "TimmWrapperConfig"
