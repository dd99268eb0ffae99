"""Prefill time and extra peak memory of FastV's rankers on a long video prompt, side by side in one run.

python benchmarks/ranker_cost.py [--frames 512] [--repeats 3]
A tiny Video-LLaVA (4 layers, hidden 64, SDPA, CPU): the ranker's cost stands out against a model this
small; on a real model the same pass is a small share of the prefill. Prints medians.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import fastv
from fastv.measure.memory import PeakMemory
from fastv.selfcheck import prompts, tiny


def measure(model, inputs: dict, config: fastv.FastVConfig | None, repeats: int) -> tuple[float, float]:
    """Median prefill seconds and median peak RSS growth (MiB) over ``repeats`` warm runs."""
    if config is not None:
        fastv.apply(model, config)
    try:
        with torch.inference_mode():
            model(**inputs, use_cache=True, logits_to_keep=1)  # warm-up
            seconds, mebibytes = [], []
            for _ in range(repeats):
                with PeakMemory(torch.device("cpu")) as memory:
                    start = time.perf_counter()
                    model(**inputs, use_cache=True, logits_to_keep=1)
                    seconds.append(time.perf_counter() - start)
                mebibytes.append(memory.delta / 2**20)
    finally:
        if config is not None:
            fastv.remove(model)
    return statistics.median(seconds), statistics.median(mebibytes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=512, help="video frames (17 tokens each)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    vlm = tiny.tiny_video_llava()
    inputs = prompts.video_prompt(vlm, frames=args.frames, image=None)
    print(f"prompt: {inputs['input_ids'].shape[1]} tokens, torch threads {torch.get_num_threads()}")
    settings = {
        "unpatched": None,
        "last_token": fastv.FastVConfig(k=2, ratio=0.5),
        "mean": fastv.FastVConfig(k=2, ratio=0.5, rank="mean"),
    }
    for name, config in settings.items():
        seconds, mebibytes = measure(vlm.model, inputs, config, args.repeats)
        print(f"{name:>10}: prefill {seconds:.3f} s, peak RSS growth {mebibytes:.0f} MiB")


if __name__ == "__main__":
    main()
