"""``fastv bench``: interleaved wall-clock / memory / KV-cache benchmark of FastV vs the unpatched model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from fastv.cli._types import COUNT, POSITIVE_INT, SHARE, Layout, add_device_option

_DTYPES = ("float32", "bfloat16", "float16")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "bench",
        help="time prefill / decode / generate, peak memory and KV cache: baseline vs FastV settings",
        description="Runs baseline and each FastV(K, R) interleaved in one process on one model. Presets "
        "use random weights (no download) scaled by --scale; --model loads a local LLaVA checkpoint.",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--preset", default=None, help="preset name (default llava-1.5-7b); `fastv flops --list`")
    src.add_argument("--model", default=None, help="local LLaVA-1.5-style checkpoint directory")
    p.add_argument(
        "--scale", type=POSITIVE_INT, default=4, help="divide preset width (hidden, FFN, heads) and depth by this"
    )
    p.add_argument("--layers", type=POSITIVE_INT, default=None, help="decoder layers (overrides the scaled depth)")
    p.add_argument("--k", type=POSITIVE_INT, nargs="+", default=[2], help="first pruned layer(s)")
    p.add_argument("--ratio", type=SHARE, nargs="+", default=[0.5, 0.75], help="R values (0 = hooks only)")
    p.add_argument("--rank", default="last_token", choices=("last_token", "mean", "random"))
    p.add_argument("--batch-size", type=POSITIVE_INT, nargs="+", default=[1], help="one run per batch size (a sweep)")
    p.add_argument(
        "--layout",
        action=Layout,
        default=None,
        help="prompt layout (preset default: its chat layout); with --model, IMAGE = number of images",
    )
    p.add_argument("--repeats", type=POSITIVE_INT, default=3)
    p.add_argument("--warmup", type=COUNT, default=1)
    p.add_argument("--decode-steps", type=COUNT, default=16, help="single-token steps timed after the prefill")
    p.add_argument("--short-tokens", type=COUNT, default=8, help="generate() length of a short answer (0 skips)")
    p.add_argument("--long-tokens", type=COUNT, default=256, help="generate() length of a long answer (0 skips)")
    add_device_option(p, help="cpu, cuda or cuda:N (cuda: bf16 + SDPA by default)")
    p.add_argument("--dtype", default=None, choices=_DTYPES, help="default: float32 on CPU, bfloat16 on CUDA")
    p.add_argument("--threads", type=POSITIVE_INT, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--out", default="runs/bench", help="directory for the JSON and PNG")
    p.add_argument("--tag", default=None, help="file name stem (default: derived from the run)")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from fastv.measure.render import bench_tables, print_rich, sweep_table

    if args.threads:
        torch.set_num_threads(args.threads)
    results = []
    for batch in args.batch_size:
        try:
            result = _run_one(args, batch)
        except (ValueError, OSError) as exc:
            print(f"fastv bench: {exc}", file=sys.stderr)
            return 2
        print_rich(*bench_tables(result))
        _write(args, result)
        results.append(result)
    if len(results) > 1:
        print_rich(sweep_table(results))
    return 0


def _run_one(args: argparse.Namespace, batch: int) -> Any:
    import torch
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from fastv.measure.bench import bench

    settings = [(k, r) for k in args.k for r in args.ratio]
    total = (args.warmup + args.repeats) * (len(settings) + 1)
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), disable=args.no_progress, transient=False,
    )  # fmt: skip
    with progress:
        task = progress.add_task(f"batch {batch}: building model", total=total)

        def step(label: str) -> None:
            progress.update(task, advance=1, description=f"batch {batch}: {label}")

        return bench(
            args.model or args.preset or "llava-1.5-7b",
            settings,
            scale=args.scale,
            layers=args.layers,
            batch_size=batch,
            layout=tuple(args.layout) if args.layout else None,
            repeats=args.repeats,
            warmup=args.warmup,
            decode_steps=args.decode_steps,
            short_tokens=args.short_tokens,
            long_tokens=args.long_tokens,
            rank=args.rank,
            device=args.device,
            dtype=getattr(torch, args.dtype) if args.dtype else None,
            progress=step,
        )


def _write(args: argparse.Namespace, result: Any) -> None:
    from fastv.measure.plot import plot_speedup

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"bench_{Path(result.workload).name}_b{result.batch_size}_n{sum(result.layout)}"
    if args.tag:
        stem = args.tag if len(args.batch_size) == 1 else f"{args.tag}_b{result.batch_size}"
    data = result.to_dict()
    data["command"] = "fastv bench " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["bench"] else None
    (out / f"{stem}.json").write_text(json.dumps(data, indent=2))
    written = [out / f"{stem}.json"]
    if not args.no_plot:
        try:
            written.append(plot_speedup(result, result.model_config, out / f"{stem}.png"))
        except ImportError:
            print("no plot: matplotlib is not installed (pip install 'fastv[plot]')", file=sys.stderr)
    if result.rank_overhead_of_baseline_prefill is not None:
        print(f"ranking overhead: {100 * result.rank_overhead_of_baseline_prefill:.2f}% of the baseline prefill")
    print("wrote " + ", ".join(str(p) for p in written))
