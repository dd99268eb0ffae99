"""``fastv flops``: FLOPs of FastV settings for a preset or a local config, next to the paper's Table 1."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from fastv.cli._types import COUNT, POSITIVE_INT, SHARE, Layout


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "flops",
        help="FLOPs ratio of FastV(K, R): the paper's Eq. 5 (both readings) and an exact count.",
        description="Counts prefill FLOPs without weights. Eq. 5 applies R to image tokens only (FastV's "
        "code); the paper's reading (R on all tokens) and an exact matmul count are shown beside it.",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--preset", default=None, help="a preset name (default llava-1.5-7b); see --list")
    src.add_argument("--model", default=None, help="a local checkpoint or config directory (no weights read)")
    p.add_argument("--list", action="store_true", help="list presets and exit")
    p.add_argument("--k", type=POSITIVE_INT, nargs="+", default=[2], help="first pruned layer(s)")
    p.add_argument("--ratio", type=SHARE, nargs="+", default=None, help="share(s) of image tokens dropped")
    p.add_argument("--keep", type=COUNT, default=None, help="keep this many image tokens instead of a ratio")
    p.add_argument("--layout", action=Layout, default=None)
    p.add_argument("--chat", action="store_true", help="use the preset's chat layout (with a question)")
    p.add_argument("--batch", type=POSITIVE_INT, default=1, help="identical prompts per batch")
    p.add_argument(
        "--attention",
        choices=("dense", "causal"),
        default="dense",
        help="exact count of attention scores: all n x n (eager) or the causal triangle (SDPA / FlashAttention)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fastv.config import FastVConfig
    from fastv.measure.flops import flops
    from fastv.measure.presets import PRESETS, get_preset
    from fastv.measure.render import flops_table, presets_table, print_rich

    if args.list:
        print_rich(presets_table(PRESETS.values()))
        return 0
    try:
        if args.model:
            from transformers import AutoConfig

            model: Any = AutoConfig.from_pretrained(args.model)
            if args.layout is None:
                print("fastv flops --model needs --layout BEFORE IMAGE AFTER.", file=sys.stderr)
                return 2
            layout: Any = tuple(args.layout)
        else:
            model = get_preset(args.preset or "llava-1.5-7b")
            layout = tuple(args.layout) if args.layout else (model.chat_layout if args.chat else model.layout)
        ratios = args.ratio if args.ratio is not None else ([0.0] if args.keep is not None else [0.5, 0.75, 0.9])
        settings = [FastVConfig(k=k, ratio=r, keep=args.keep) for k in args.k for r in ratios]
        reports = [flops(model, [layout] * args.batch, s, attention=args.attention) for s in settings]
    except (ValueError, TypeError, OSError) as exc:
        print(f"fastv flops: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([r.to_dict() for r in reports], indent=2))
    else:
        print_rich(flops_table(reports))
    return 0
