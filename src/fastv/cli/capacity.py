"""``fastv capacity``: KV cache per request, requests that fit on one GPU and prefill FLOPs, baseline vs FastV."""

from __future__ import annotations

import argparse
import json
from typing import Any

from fastv.cli._types import COUNT, POSITIVE_INT, RATIOS, SHARE, Layout, Number

DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "capacity",
        help="Serving capacity: KV cache per request and concurrent requests per GPU, baseline vs FastV.",
        description="For a model (preset or local config), prompt layout, GPU memory and FastV settings: weights, "
        "KV-cache bytes per request at the end of generation, how many requests' caches fit beside the weights, "
        "and prefill FLOPs per request (exact count, causal attention). Shapes only; no weights are read.",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--preset", default=None, help="a preset name (default llava-1.5-7b); see fastv flops --list")
    src.add_argument("--model", default=None, help="a local checkpoint or config directory (no weights read)")
    p.add_argument("--layout", action=Layout, default=None)
    p.add_argument(
        "--gpu-memory-gb",
        type=Number(float, 0.0, lo_open=True),
        default=141.0,
        help="GPU memory in GB (default 141: an H200)",
    )
    p.add_argument("--reserve", type=SHARE, default=0.1, help="share kept for activations and the engine (0.1)")
    p.add_argument("--output-tokens", type=COUNT, default=256, help="generated tokens per request (KV grows by them)")
    p.add_argument("--dtype", choices=sorted(DTYPE_BYTES), default="bfloat16")
    p.add_argument("--k", type=POSITIVE_INT, default=2)
    p.add_argument("--ratios", type=RATIOS, default="0,0.5,0.75", help="comma-separated; 0 is the unpruned baseline")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fastv.config import FastVConfig
    from fastv.measure.capacity import capacity
    from fastv.measure.presets import get_preset

    if args.model:
        from transformers import AutoConfig

        model: Any = AutoConfig.from_pretrained(args.model)
        if args.layout is None:
            raise ValueError("fastv capacity --model needs --layout BEFORE IMAGE AFTER.")
    else:
        model = get_preset(args.preset or "llava-1.5-7b")
    settings = [None if r == 0 else FastVConfig(k=args.k, ratio=r) for r in args.ratios]
    rows = capacity(
        model,
        tuple(args.layout) if args.layout else None,
        settings,
        gpu_bytes=args.gpu_memory_gb * 1e9,
        output_tokens=args.output_tokens,
        dtype_bytes=DTYPE_BYTES[args.dtype],
        reserve=args.reserve,
    )
    if args.json:
        print(json.dumps([row.to_dict() for row in rows], indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    name = getattr(model, "name", None) or args.model
    table = Table(title=f"{name} on {args.gpu_memory_gb:g} GB ({args.dtype}, {args.reserve:.0%} reserved), "
                  f"{args.output_tokens} output tokens; weights {rows[0].weight_bytes / 1e9:.1f} GB")  # fmt: skip
    for column in ("setting", "prompt n", "kept n_hat", "KV / request", "requests", "prefill TFLOPs", "FLOPs"):
        table.add_column(column, justify="left" if column == "setting" else "right")
    for row in rows:
        table.add_row(
            row.setting,
            str(row.prompt_tokens),
            str(row.kept_tokens),
            f"{row.kv_bytes_per_request / 2**20:.1f} MiB",
            str(row.requests),
            f"{row.prefill_tflops:.2f}",
            f"{row.prefill_flops_pct:.1f}%",
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=120)
    console.print(table)
    return 0
