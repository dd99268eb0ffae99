"""How many requests fit on one GPU, baseline vs FastV: weights, KV cache per request, prefill FLOPs.

A serving engine holds the weights once and one KV cache per running request. FastV shrinks the
cache of layers K..L-1 to the kept tokens, so more requests fit; its prefill FLOPs fall too. Every
figure comes from the exact formulas of ``fastv.measure.flops`` (KV bytes are tested there against
a real DynamicCache to the byte).
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import Any

from fastv.config import FastVConfig
from fastv.measure.flops import flops, kv_cache_bytes, resolve_model
from fastv.measure.presets import Layout
from fastv.measure.shapes import TextShape, VisionShape


def decoder_parameters(t: TextShape, tied_embeddings: bool = False) -> int:
    """Decoder weights of a Llama-style model: embeddings, attention, gated FFN, RMSNorms, lm_head (no biases)."""
    per_layer = t.hidden * (t.q_dim + 2 * t.kv_dim) + t.q_dim * t.hidden + t.ffn_matrices * t.hidden * t.ffn
    per_layer += 2 * t.hidden  # input and post-attention norms
    layers = sum(layer.params for layer in t.per_layer) if t.per_layer else t.layers * per_layer  # all experts
    head = 0 if tied_embeddings else t.vocab * t.hidden
    return t.vocab * t.hidden + layers + t.hidden + head


def vision_parameters(v: VisionShape | None) -> int:
    """Vision tower + projector matmul weights (biases, norms and position embeddings left out: under 1%)."""
    if v is None:
        return 0
    tower = v.layers * (4 * v.hidden * v.hidden + v.ffn_matrices * v.hidden * v.ffn) + v.patch_in * v.hidden
    widths = v.projector
    return tower + sum(a * b for a, b in itertools.pairwise(widths))


@dataclass
class Capacity:
    setting: str
    prompt_tokens: int  # n
    kept_tokens: int  # n_hat: what layers >= K hold
    output_tokens: int
    kv_bytes_per_request: int  # at the end of generation
    weight_bytes: int
    requests: int  # concurrent requests whose KV caches fit beside the weights
    prefill_tflops: float  # per request, exact matmul count (causal attention)
    prefill_flops_pct: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def capacity(
    model: Any,
    layout: Layout | tuple[int, int, int] | None = None,
    settings: list[FastVConfig | None] | None = None,
    gpu_bytes: float = 141e9,
    output_tokens: int = 256,
    dtype_bytes: int = 2,
    reserve: float = 0.1,
) -> list[Capacity]:
    """One row per setting (None = unpruned). ``reserve``: share of GPU memory kept for activations,
    the engine and fragmentation (vLLM's default ``gpu_memory_utilization=0.9`` leaves 10%)."""
    settings = settings if settings is not None else [None, FastVConfig(k=2, ratio=0.5), FastVConfig(k=2, ratio=0.75)]
    _, text, vision, _ = resolve_model(model)
    weights = dtype_bytes * (decoder_parameters(text) + vision_parameters(vision))
    budget = gpu_bytes * (1.0 - reserve) - weights
    if budget <= 0:
        raise ValueError(
            f"the weights ({weights / 1e9:.1f} GB) do not fit in {gpu_bytes / 1e9:.1f} GB minus the reserve."
        )
    rows = []
    for setting in settings:
        config = setting or FastVConfig(k=2, ratio=0.0)
        report = flops(model, layout, config, attention="causal")
        n, n_hat = report.n[0], report.n_hat[0]
        kv = kv_cache_bytes(text, n + output_tokens, n_hat + output_tokens, config.k, dtype_bytes)
        rows.append(
            Capacity(
                setting="baseline" if setting is None else setting.describe(),
                prompt_tokens=n,
                kept_tokens=n_hat,
                output_tokens=output_tokens,
                kv_bytes_per_request=kv,
                weight_bytes=weights,
                requests=int(budget // kv),
                prefill_tflops=report.exact_llm_fastv / 1e12,
                prefill_flops_pct=100.0 * report.exact_ratio,
            )
        )
    return rows
