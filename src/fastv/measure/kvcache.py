"""KV cache size, measured from the cache's own tensors (to check against the exact formula)."""

from __future__ import annotations

from typing import Any

import torch


def _layer_tensors(cache: Any) -> list[tuple[torch.Tensor | None, torch.Tensor | None]]:
    layers = getattr(cache, "layers", None)
    if layers is not None:  # transformers >= 4.56 / 5.x: DynamicCache is a list of cache layers
        return [(getattr(layer, "keys", None), getattr(layer, "values", None)) for layer in layers]
    return [(k, v) for k, v in cache]  # legacy tuple of (key, value) per layer


def cache_bytes(cache: Any) -> int:
    """Bytes held by every layer's key and value tensors."""
    total = 0
    for keys, values in _layer_tensors(cache):
        for t in (keys, values):
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()
    return total


def cache_lengths(cache: Any) -> list[int]:
    """Sequence length cached per layer (FastV: layers >= k hold fewer tokens)."""
    return [int(k.shape[-2]) if isinstance(k, torch.Tensor) else 0 for k, _ in _layer_tensors(cache)]
