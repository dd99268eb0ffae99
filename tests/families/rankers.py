"""Every ranker, 8 cached decode steps, on both attention backends: shared by the image families added
after ``image_suite`` (whose ``run_all`` covers k=1..3, per-image budgets, batches and ``remove``)."""

from __future__ import annotations

from collections.abc import Callable

import torch

import fastv
from tests.families.equivalence import check_against_reference

RANKS = ("last_token", "mean", "random")


def check_every_ranker(
    build: Callable[[str], object],
    sample: Callable[[object], dict],
    prunable: Callable[[dict], torch.Tensor],
    k: int = 2,
    steps: int = 8,
    backends: tuple[str, ...] = ("sdpa", "eager"),
    **reference,
) -> dict[tuple[str, str], tuple[float, float]]:
    """FastV(k, R=0.5) with each ranker on SDPA and eager models (``backends``) equals the reference over ``steps`` cached
    decode steps; returns (backend, rank) -> (prefill, worst decode) max abs diff.

    ``reference``: extra keyword arguments of ``check_against_reference`` computed from the inputs
    (``positions`` / ``blocks`` callables taking (vlm, inputs)).
    """
    diffs = {}
    for backend in backends:
        vlm = build(backend)
        inputs = sample(vlm)
        extra = {key: make(vlm, inputs) for key, make in reference.items()}
        for rank in RANKS:
            config = fastv.FastVConfig(k=k, ratio=0.5, rank=rank, seed=3)
            diffs[backend, rank] = check_against_reference(
                vlm.model, inputs, config, prunable(inputs), steps=steps, **extra
            )
    print({key: (f"{a:.2g}", f"{b:.2g}") for key, (a, b) in diffs.items()})
    return diffs
