"""``fastv analyze``: the paper's attention study (allocation / efficiency per layer and token class)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from fastv.cli._options import add_model_option
from fastv.cli._types import COUNT, POSITIVE_INT, add_device_option


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "analyze",
        help="Where attention goes per layer: system / image / instruction / output (the paper's Figs. 1-2).",
        description="Generates a short answer, then recomputes every layer's attention rows for the chosen "
        "queries from queries and keys (any attention backend, bounded memory). Allocation = attention a class "
        "receives (summed over its tokens, mean over heads and queries; classes sum to 1); efficiency = "
        "allocation / token count. Writes analysis.json and PNG plots to --out.",
    )
    add_model_option(p)
    p.add_argument("--image", required=True, help="an image file, a folder of images, or a .jsonl of {image, prompt}")
    p.add_argument("--prompt", default=None, help="the prompt (with an image file or folder)")
    p.add_argument(
        "--max-new-tokens",
        type=COUNT,
        default=8,
        help="tokens generated per sample (the output class; 0: none, with --queries last or all)",
    )
    p.add_argument("--queries", choices=("output", "last", "all"), default="output", help="query set (default output)")
    p.add_argument(
        "--map-layers",
        type=COUNT,
        nargs="*",
        default=None,
        help="layers to draw attention maps for (default: 0, 2, middle, last; none: no maps)",
    )
    p.add_argument("--map-bins", type=POSITIVE_INT, default=64, help="attention maps are pooled to BINS x BINS blocks")
    p.add_argument("--limit", type=POSITIVE_INT, default=None, help="at most this many samples")
    add_device_option(p)
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fastv.analysis import analyze_many, samples_from
    from fastv.errors import FastVError
    from fastv.loading import build_inputs, load_model

    try:
        samples = samples_from(args.image, args.prompt, args.limit)
        model, processor = load_model(args.model, device=args.device, dtype=args.dtype)
        n_layers = model.config.get_text_config().num_hidden_layers
        map_layers = args.map_layers if args.map_layers is not None else _default_map_layers(n_layers)
        report = analyze_many(
            model,
            processor,
            samples,
            lambda proc, images, prompt: build_inputs(proc, images, prompt, device=args.device),
            progress=not args.no_progress,
            max_new_tokens=args.max_new_tokens,
            queries=args.queries,
            map_layers=map_layers,
            map_bins=args.map_bins,
        )
    except (FastVError, ValueError, OSError) as exc:
        print(f"fastv analyze: {exc}", file=sys.stderr)
        return 2
    report.settings["model"] = args.model or "builtin"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "analysis.json").write_text(json.dumps(report.to_dict(), indent=1))
    written = [out / "analysis.json", *_plots(report, out, map_layers)]
    _print_summary(report, written)
    return 0


def _default_map_layers(n_layers: int) -> list[int]:
    return sorted({0, min(2, n_layers - 1), n_layers // 2, n_layers - 1})


def _plots(report, out: Path, map_layers: list[int]) -> list[Path]:
    from fastv.analysis.plots import plot_allocation, plot_attention_map, plot_efficiency

    paths = [plot_allocation(report, out / "allocation.png"), plot_efficiency(report, out / "efficiency.png")]
    first = report.samples[0]
    paths += [plot_attention_map(first, layer, out / f"attention_map_layer{layer}.png") for layer in map_layers]
    return paths


def _print_summary(report, written: list[Path]) -> None:
    from rich.console import Console
    from rich.table import Table

    from fastv.analysis import CLASSES

    table = Table(title=f"Attention allocation (share) and efficiency (per token), {len(report.samples)} sample(s)")
    table.add_column("layer", justify="right")
    for name in CLASSES:
        table.add_column(name, justify="right")
    table.add_column("eff. image", justify="right")
    table.add_column("eff. instruction", justify="right")
    alloc, eff = report.allocation, report.efficiency
    for layer in range(alloc.shape[0]):
        effs = (f"{float(eff[layer, CLASSES.index(c)]):.3g}" for c in ("image", "instruction"))
        table.add_row(str(layer), *(f"{float(v):.3f}" for v in alloc[layer]), *effs)
    console = Console()
    console.print(table)
    for path in written:
        console.print(f"wrote {path}")
