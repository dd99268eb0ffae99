"""``fastv show-keep``: the input image(s) with the patches FastV keeps highlighted, beside random dropping."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from fastv.cli._options import add_model_option
from fastv.cli._types import COUNT, POSITIVE_INT, SEED, SHARE, add_device_option
from fastv.config import RANKERS


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "show-keep",
        help="Picture of the image patches FastV keeps at layer K, beside a random selection.",
        description="Runs one pruned prefill per selection and draws each image (LLaVA-NeXT: its base tile and "
        "its high-res grid) with dropped patches dimmed and kept ones outlined.",
    )
    add_model_option(p)
    p.add_argument("--image", required=True, nargs="+", help="image file(s) of one prompt")
    p.add_argument("--prompt", required=True, help="the prompt; image placeholders are added if it has none")
    p.add_argument("--k", type=POSITIVE_INT, default=2, help="first pruned layer (layer k-1 ranks)")
    p.add_argument("--ratio", type=SHARE, default=0.5, help="share of image tokens dropped")
    p.add_argument("--keep", type=COUNT, default=None, help="keep this many image tokens instead of a ratio")
    p.add_argument("--rank", choices=RANKERS, default="last_token")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the random selection")
    p.add_argument("--no-random", action="store_true", help="do not draw the random selection beside it")
    add_device_option(p)
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    p.add_argument("--out", required=True, help="output PNG")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fastv.analysis.draw import draw_keep
    from fastv.analysis.keep import keep_picture
    from fastv.analysis.report import with_placeholders
    from fastv.config import FastVConfig
    from fastv.errors import FastVError
    from fastv.loading import build_inputs, load_model, open_image

    try:
        settings = dict(k=args.k, ratio=args.ratio, keep=args.keep, seed=args.seed)
        configs = [FastVConfig(rank=args.rank, **settings)]
        if args.rank != "random" and not args.no_random:
            configs.append(FastVConfig(rank="random", **settings))
        images = [open_image(path) for path in args.image]
        model, processor = load_model(args.model, device=args.device, dtype=args.dtype)
        prompt = with_placeholders(processor, args.prompt, len(images))
        inputs = build_inputs(processor, images, prompt, device=args.device)
        picture = keep_picture(model, processor, inputs, images, configs)
    except (FastVError, ValueError, TypeError, OSError) as exc:
        print(f"fastv show-keep: {exc}", file=sys.stderr)
        return 2
    path = draw_keep(picture, args.out, title=args.prompt)
    for label in picture.selections:
        kept = sum(len(picture.kept_tokens(label, i)) for i in range(len(picture.layouts)))
        total = sum(lay.n_tokens for lay in picture.layouts)
        print(f"{label}: kept {kept}/{total} image tokens")
    print(f"wrote {path}")
    return 0
