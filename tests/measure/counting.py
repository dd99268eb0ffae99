"""torch's FlopCounterMode on a real forward, with the rotary tables it saw apart.

fastv's exact count leaves RoPE out on every release. Up to 5.18 transformers builds each rotary cos/sin
table with a matmul that FlopCounterMode counts (``fastv.compat.rotary_table_is_matmul``): 2 FLOPs per
angle, one angle per position id and inverse frequency. The tests add that figure to fastv's count, worked
out here from the positions each call received, so every comparison stays an exact equality.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from fastv.compat import bind_arguments, rotary_table_is_matmul


def _is_rotary(module: nn.Module) -> bool:
    """A rotary embedding: it holds inverse frequencies (``inv_freq``, or Gemma's ``{layer_type}_inv_freq``)."""
    return any(name.endswith("inv_freq") for name, _ in module.named_buffers(recurse=False))


def _table_flops(rotary: nn.Module, arguments: dict[str, Any]) -> int:
    """FlopCounterMode's count for one table: 2 per (position id, inverse frequency) pair, or 0 where it multiplies."""
    if not rotary_table_is_matmul(rotary):
        return 0
    layer_type = arguments.get("layer_type")
    inv_freq = getattr(rotary, f"{layer_type}_inv_freq" if layer_type else "inv_freq")
    return 2 * arguments["position_ids"].numel() * inv_freq.numel()


def count_flops(model: nn.Module, **inputs: Any) -> tuple[dict[str, int], int]:
    """FLOPs per module (``"Global"`` for all) of one no-grad forward, and the rotary tables' share of them."""
    tables: list[int] = []

    def record(module: nn.Module, args: tuple, kwargs: dict, _output: Any) -> None:
        tables.append(_table_flops(module, bind_arguments(module, args, kwargs)))

    handles = [m.register_forward_hook(record, with_kwargs=True) for m in model.modules() if _is_rotary(m)]
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(**inputs)
    finally:
        for handle in handles:
            handle.remove()
    return {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}, sum(tables)
