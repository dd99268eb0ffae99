"""``fastv eval``: accuracy vs FLOPs of FastV settings on a VQA dataset (default: built-in model, easy-VQA)."""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch
from rich.console import Console

from fastv.cli._options import add_model_option
from fastv.cli._types import POSITIVE_INT, RATIOS, SEED, Names, Number, Numbers, add_device_option
from fastv.config import RANKERS
from fastv.eval.datasets import DATASETS, load_dataset
from fastv.eval.report import kinds_markdown, results_table, write_results
from fastv.eval.runner import evaluate


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="Accuracy vs FLOPs of FastV settings on a VQA dataset.",
        description="Runs the baseline (ratio 0) and every (ratio, ranker) FastV setting on the same seeded "
        "sample; writes results.json and accuracy_vs_flops.png to --out. Data parallel: launch it with "
        "`torchrun --nproc_per_node N -m fastv eval ...` or `accelerate launch --num_processes N -m fastv eval ...`.",
    )
    add_model_option(parser)
    parser.add_argument(
        "--data", default="easyvqa", help=f"Dataset name ({', '.join(sorted(DATASETS))}) or a .jsonl file."
    )
    parser.add_argument("--k", type=Numbers(int, 1), default=[2], help="FastV K, or several: 2,3,5")
    parser.add_argument(
        "--ratios", type=RATIOS, default="0,0.25,0.5,0.75,0.9", help="shares of image tokens dropped; 0 is the baseline"
    )
    parser.add_argument(
        "--keep", type=Numbers(int, 0), default=[], help="token budgets: image tokens kept per sample, e.g. 64,32,16"
    )
    parser.add_argument("--rank", type=Names(lambda: RANKERS), default=list(RANKERS), help="Comma-separated rankers.")
    parser.add_argument(
        "--n", "--num-samples", dest="n", type=Number(int), default=500, help="Seeded sample size (0 or less: all)."
    )
    parser.add_argument("--seed", type=SEED, default=0)
    parser.add_argument("--batch-size", type=POSITIVE_INT, default=16)
    parser.add_argument("--out", type=Path, default=Path("runs/eval"))
    parser.add_argument(
        "--prompt",
        default=None,
        help="Prompt template with {question} (default: the processor's chat template, which for the "
        "built-in model is its trained format).",
    )
    parser.add_argument("--max-new-tokens", type=POSITIVE_INT, default=8)
    add_device_option(parser)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--attn", default="sdpa", help="attn_implementation: sdpa, eager, flash_attention_2")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fastv.eval import distributed
    from fastv.loading import load_model

    device = distributed.device_for(args.device)
    distributed.start(device)  # torchrun / accelerate launch: one shard of the questions per rank
    rank, world = distributed.world()
    console = Console(quiet=rank != 0)
    model, processor = load_model(args.model, device, args.dtype, args.attn)
    samples = load_dataset(args.data, n=args.n if args.n > 0 else None, seed=args.seed)
    console.print(
        f"{len(samples)} samples from {args.data}; K={args.k}, ratios={args.ratios}, keep={args.keep}, rankers={args.rank}"
    )
    if world > 1:
        console.print(f"data parallel: {world} processes, about {len(samples) // world} samples each")
    start = time.perf_counter()
    results = evaluate(
        model,
        processor,
        samples,
        k=args.k,
        ratios=args.ratios,
        keeps=args.keep,
        rankers=args.rank,
        batch_size=args.batch_size,
        seed=args.seed,
        prompt=args.prompt,
        max_new_tokens=args.max_new_tokens,
        progress=not args.no_progress,
    )
    meta = {
        "command": "fastv eval",
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "func"},
        "model": args.model or "built-in (easyvqa-llava)",
        "n": len(samples),
        "wall_s": time.perf_counter() - start,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "processes": world,
        "platform": platform.platform(),
    }
    title = f"FastV K={','.join(map(str, args.k))} on {Path(args.data).name} (n={len(samples)})"
    console.print(results_table(results, title=title))
    if any(r["by_kind"] for r in results):
        console.print("accuracy (%) per question type:\n" + kinds_markdown(results))
    if rank == 0:  # every rank holds the gathered results; one writes them
        json_path, png_path = write_results(results, args.out, meta, title=title)
        console.print(f"wrote {json_path} and {png_path}")
    return 0
