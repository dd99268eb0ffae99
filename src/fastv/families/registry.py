"""The registry of family adapters, by ``config.model_type``: each family registers itself where it is defined."""

from __future__ import annotations

from torch import nn

from fastv.errors import UnsupportedModelError
from fastv.families.base import Family

_REGISTRY: dict[str, Family] = {}

_OMNI = (
    "the full Omni model hands the thinker's per-position hidden states of the whole prompt to its talker "
    "(speech), which a pruned prefill does not have. Apply FastV to the thinker for text output: "
    "fastv.apply(model.thinker, config), then model.thinker.generate(...) (model_type '{thinker}')"
)

# Decoder VLMs in transformers 5.23 that FastV knowingly does not support, and why.
UNSUPPORTED: dict[str, str] = {
    "gemma4_unified": (
        "Gemma 4 unified's forward overlays its bidirectional image blocks on every layer and, on sliding layers, "
        "lets a block reach past the window, while its own create_masks_for_generate (static-cache generate) "
        "builds Gemma 4's mask (blocks on sliding layers only, within the window): transformers 5.23 / 5.24 "
        "define its image attention two ways, and FastV does not model either yet (not adapted). Its decoder is "
        "otherwise Gemma 4's: use a 'gemma4' checkpoint (gemma-4-26B-A4B, gemma-4-31B)"
    ),
    "llama4": (
        "Llama 4 rotates with complex `freqs_cis` (not a cos/sin pair), skips RoPE on every 4th layer and "
        "scales those layers' attention by a temperature that depends on each token's position, and its RoPE "
        "layers attend within fixed 8192-token chunks whose boundaries have no defined meaning on a pruned "
        "sequence"
    ),
    "mllama": (
        "Llama 3.2 Vision reads images through cross-attention layers: image features are not tokens of the "
        "decoder sequence, so there are no image tokens to drop"
    ),
    "qwen2_5_omni": _OMNI.format(thinker="qwen2_5_omni_thinker"),
    "qwen3_omni_moe": _OMNI.format(thinker="qwen3_omni_moe_thinker"),
}


def register_family(family: Family) -> Family:
    """Make ``family`` the adapter for each of its ``model_types`` (later registrations win)."""
    for model_type in family.model_types:
        _REGISTRY[model_type] = family
    return family


def supported_families() -> dict[str, Family]:
    """model_type -> adapter, for every family FastV supports."""
    return dict(sorted(_REGISTRY.items()))


def family_for(model: nn.Module) -> Family:
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    family = _REGISTRY.get(model_type)
    if family is None:
        supported = ", ".join(sorted(_REGISTRY))
        if model_type in UNSUPPORTED:
            raise UnsupportedModelError(
                f"FastV does not support {type(model).__name__} (model_type={model_type!r}): "
                f"{UNSUPPORTED[model_type]}. Supported model types: {supported}."
            )
        raise UnsupportedModelError(
            f"FastV does not support {type(model).__name__} (model_type={model_type!r}). Supported model "
            f"types: {supported}. Pass one of those models, or register an adapter with "
            "fastv.families.register_family(...)."
        )
    return family
