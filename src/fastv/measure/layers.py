"""Per-layer shapes of decoders whose layers differ: hybrid (linear attention, short convolutions),
mixture-of-experts, and per-layer head sizes (Gemma 4).

A uniform ``TextShape`` cannot count these: Qwen3.5 runs three Gated DeltaNet layers per attention
layer, a MoE token runs only its top-k experts, Gemma 4's global layers have twice the head size.
Rather than parse every architecture's config fields, the decoder is built on the meta device (no
memory, about a second for a 35B MoE) and each layer's matmuls are read off its modules: every
``nn.Linear`` and ``nn.Conv1d`` counts in full, fused expert weights (3-D parameters) count at
``top_k / experts`` of their size, the router (the module with a ``top_k``) separately. The family
adapter says which layers are recurrent and which module is their mixer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

ATTENTION_MIXERS = ("full_attention", "sliding_attention")
_MOE_FIELDS = ("num_experts", "num_local_experts", "n_routed_experts", "enable_moe_block")


@dataclass(frozen=True)
class LayerShape:
    """One decoder layer, as FLOPs and the KV cache see it. MACs are per token."""

    mixer: str  # "full_attention", "sliding_attention", or the recurrent layer type ("linear_attention", "conv")
    mixer_macs: int  # the mixer's projections (and convolutions)
    ffn_macs: int  # everything else in the layer: the FFN, or the active experts plus shared experts
    router_macs: int = 0
    q_dim: int = 0  # attention: query width that scores the keys (heads x head_dim)
    kv_dim: int = 0  # attention: cached key width (values the same)
    window: int | None = None  # sliding attention: keys a query sees
    recurrence_macs: int = 0  # recurrent mixers: the state update and readout, beyond the projections
    params: int = 0

    @property
    def attends(self) -> bool:
        return self.mixer in ATTENTION_MIXERS


def is_heterogeneous(text_config: Any) -> bool:
    """Whether a uniform ``TextShape`` would miscount this decoder."""
    types = set(getattr(text_config, "layer_types", None) or ())
    if types - set(ATTENTION_MIXERS):
        return True
    if any(getattr(text_config, name, None) for name in _MOE_FIELDS):
        return True
    return bool(getattr(text_config, "is_heterogeneous", False))  # transformers' per-layer configs (Gemma 4)


def _meta_model(config: Any) -> nn.Module:
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

    auto = AutoModelForImageTextToText if getattr(config, "vision_config", None) is not None else AutoModelForCausalLM
    with torch.device("meta"):
        return auto.from_config(config)


def _macs(module: nn.Module) -> int:
    """Dense multiply-accumulates per token of every Linear and Conv1d inside ``module``."""
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, (nn.Linear, nn.Conv1d)))


def _is_router(module: nn.Module) -> bool:
    return isinstance(getattr(module, "top_k", None), int) or type(module).__name__.endswith("Router")


def _feed_forward_macs(layer: nn.Module, mixer: nn.Module, text_config: Any) -> tuple[int, int]:
    """``(ffn, router)`` MACs per token of what is not the mixer: dense weights in full, fused experts
    (3-D parameters) at ``top_k / experts``, the router (a ``top_k`` or ``...Router`` module) apart."""
    skip = set(mixer.modules())
    routers = [m for m in layer.modules() if m not in skip and _is_router(m)]
    router_params = {id(p) for r in routers for p in r.parameters()}
    top_k = next((r.top_k for r in routers if isinstance(getattr(r, "top_k", None), int)), None)
    if top_k is None and routers:
        top_k = getattr(text_config, "num_experts_per_tok", None) or getattr(text_config, "top_k_experts", None)
    ffn = router = 0
    for module in layer.modules():
        if module in skip:
            continue
        for param in module.parameters(recurse=False):
            if id(param) in router_params:
                router += param.numel() if param.ndim == 2 else 0
            elif isinstance(module, nn.Conv1d) or param.ndim == 2:
                ffn += param.numel() if param.ndim > 1 else 0
            elif param.ndim == 3:
                if top_k is None:
                    raise ValueError(
                        f"{type(layer).__name__} has fused expert weights but no router with a `top_k`; "
                        "fastv cannot tell how many experts a token runs."
                    )
                ffn += param.numel() // param.shape[0] * top_k
    return ffn, router


def layer_shapes(config: Any) -> tuple[LayerShape, ...]:
    """Every decoder layer of ``config``'s model (a VLM or text config a fastv family knows)."""
    from fastv.families import supported_families

    family = supported_families().get(getattr(config, "model_type", None))
    if family is None:
        raise ValueError(
            f"Counting the FLOPs of a decoder with differing layers needs its fastv family; "
            f"model_type={getattr(config, 'model_type', None)!r} has none."
        )
    language_model = family.language_model(_meta_model(config))
    text = family.text_config(language_model)
    types = getattr(text, "layer_types", None)
    shapes = []
    for i, layer in enumerate(family.decoder_layers(language_model)):
        if family.is_recurrent(i, text):
            mixer = family.recurrent_mixer(layer)
            kind = types[i]
            attention: dict[str, Any] = {"recurrence_macs": family.recurrence_macs(mixer)}
        else:
            mixer = family.attention(layer)
            window = family.sliding_window(layer, text)
            kind = ATTENTION_MIXERS[window is not None]
            attention = {
                "q_dim": int(text.num_attention_heads) * int(mixer.head_dim),
                "kv_dim": mixer.k_proj.out_features,
                "window": window,
            }
        ffn, router = _feed_forward_macs(layer, mixer, text)
        shapes.append(
            LayerShape(
                mixer=kind,
                mixer_macs=_macs(mixer),
                ffn_macs=ffn,
                router_macs=router,
                params=sum(p.numel() for p in layer.parameters()),
                **attention,
            )
        )
    return tuple(shapes)
