"""``fastv generate``: one prompt, baseline then FastV, side by side."""

from __future__ import annotations

import argparse
import time

import torch

import fastv
from fastv.cli._options import add_model_option
from fastv.cli._types import COUNT, POSITIVE_INT, SHARE, add_device_option
from fastv.config import RANKERS
from fastv.loading import build_inputs, load_model, open_image


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("generate", help="Generate with and without FastV and compare.")
    add_model_option(parser)
    parser.add_argument("--image", required=True, nargs="+", help="Image file(s).")
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--k", type=POSITIVE_INT, default=2)
    parser.add_argument("--ratio", type=SHARE, default=0.5)
    parser.add_argument("--keep", type=COUNT, default=None, help="Keep this many image tokens instead of a ratio.")
    parser.add_argument("--rank", default="last_token", choices=RANKERS)
    parser.add_argument("--max-new-tokens", type=POSITIVE_INT, default=32)
    add_device_option(parser)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--attn", default="sdpa", help="attn_implementation: sdpa, eager, flash_attention_2")
    parser.set_defaults(func=run)


def _timed_generate(model, inputs: dict, max_new_tokens: int) -> tuple[torch.Tensor, float]:
    start = time.perf_counter()
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return out, time.perf_counter() - start


def run(args: argparse.Namespace) -> int:
    config = fastv.FastVConfig(k=args.k, ratio=args.ratio, keep=args.keep, rank=args.rank)
    model, processor = load_model(args.model, args.device, args.dtype, args.attn)
    inputs = build_inputs(processor, [open_image(p) for p in args.image], args.prompt, args.device)
    n_prompt = inputs["input_ids"].shape[1]
    _timed_generate(model, inputs, 1)  # warm-up, so neither run pays one-off costs

    rows = []
    for label in ("baseline", config.describe()):
        if label != "baseline":
            fastv.apply(model, config)
        out, seconds = _timed_generate(model, inputs, args.max_new_tokens)
        kept = fastv.last_keep(model)[0].numel() if fastv.is_applied(model) else n_prompt
        text = processor.batch_decode(out[:, n_prompt:], skip_special_tokens=True)[0]
        rows.append((label, kept, out.shape[1] - n_prompt, seconds, text))
    fastv.remove(model)

    for label, kept, n_new, seconds, text in rows:
        print(
            f"{label}: kept {kept}/{n_prompt} prompt tokens after layer {args.k}, {n_new} new tokens in {seconds:.3f}s"
        )
        print(f"  {text!r}")
    print(f"speedup (end-to-end generate): {rows[0][3] / rows[1][3]:.2f}x")
    return 0
