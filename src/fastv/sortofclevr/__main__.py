"""``python -m fastv.sortofclevr --out DIR``: write the train and test splits as JSONL + PNG."""

from __future__ import annotations

import argparse
from pathlib import Path

from fastv.sortofclevr.files import SPLITS, write_split


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fastv.sortofclevr", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--split", choices=[*SPLITS, "all"], default="all")
    p.add_argument("--scenes", type=int, default=None, help="scenes per split (default: the fixed sizes)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    for split in SPLITS if args.split == "all" else [args.split]:
        print(write_split(args.out, split, args.scenes, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
