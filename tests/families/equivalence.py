"""The equivalence suite, shared by every family's tests: FastV against the cache-free reference.

Each family test builds its tiny model and one prompt, then calls these checks, so the same
definition of "correct" covers every family.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

import fastv
from tests.reference import merged_embeddings, reference_kept, reference_logits

TOLERANCE = 1e-4

# positions(n_total) -> the rotary position ids of the first n_total tokens (prompt + decoded), or None.
PositionFn = Callable[[int], torch.Tensor | None]


def generate(model, inputs: dict, steps: int = 4, **kwargs):
    with torch.no_grad():
        return model.generate(
            **inputs,
            max_new_tokens=steps,
            min_new_tokens=steps,
            do_sample=False,
            output_logits=True,
            return_dict_in_generate=True,
            **kwargs,
        )


def assert_ratio_zero_identical(model, inputs: dict, steps: int = 3) -> None:
    """ratio=0 leaves every logit bit-identical to the unpatched model, prefill and decode."""
    with torch.no_grad():
        expected_prefill = model(**inputs).logits
    expected = generate(model, inputs, steps)
    fastv.apply(model, fastv.FastVConfig(k=2, ratio=0.0))
    try:
        with torch.no_grad():
            assert torch.equal(model(**inputs).logits, expected_prefill)
        got = generate(model, inputs, steps)
    finally:
        fastv.remove(model)
    assert torch.equal(got.sequences, expected.sequences)
    for step_got, step_expected in zip(got.logits, expected.logits, strict=True):
        assert torch.equal(step_got, step_expected)


def check_against_reference(
    model,
    inputs: dict,
    config: fastv.FastVConfig,
    prunable: torch.Tensor,
    positions: PositionFn = lambda n: None,
    blocks: torch.Tensor | None = None,
    segments: torch.Tensor | None = None,
    steps: int = 4,
) -> tuple[float, float]:
    """Prefill and cached decode of one unpadded sample equal the reference; returns their max abs diffs.

    prunable: (n,) bool image / video positions. segments: (n,) image / frame ids for budget="per_image".
    Also checks that the kept set is the one eager attention maps of the unpatched model give.
    """
    n = inputs["input_ids"].shape[1]
    embeds = merged_embeddings(model, **inputs)
    fastv.apply(model, config)
    try:
        with torch.no_grad():
            prefill = model(**inputs).logits
        kept = fastv.last_keep(model)[0]
        out = generate(model, inputs, steps)
    finally:
        fastv.remove(model)
    prunable = prunable.clone()
    prunable[-1] = False
    if segments is None:
        n_drop = config.n_dropped(int(prunable.sum()))
        assert kept.numel() == n - n_drop
    else:
        ids, counts = torch.unique(segments[prunable], return_counts=True)
        n_drop = {int(s): config.n_dropped(int(c)) for s, c in zip(ids, counts, strict=True)}
        assert kept.numel() == n - sum(n_drop.values())
    if config.rank != "random":
        expected_kept = reference_kept(model, inputs, prunable, config.k, n_drop, config.rank, segments)
        assert torch.equal(kept, expected_kept)
    prefill_diff = (prefill - reference_logits(model, embeds, kept, config.k, positions(n), blocks)).abs().max()
    assert prefill_diff < TOLERANCE, f"prefill differs by {prefill_diff}"
    new_tokens = out.sequences[0, n:]
    full = torch.cat([embeds, model.get_input_embeddings()(new_tokens)[None]], dim=1)
    decode_diff = torch.tensor(0.0)
    for step, logits in enumerate(out.logits):
        kept_now = torch.cat([kept, torch.arange(n, n + step)])
        block_now = None if blocks is None else torch.cat([blocks, torch.full((step,), -1)])
        expected = reference_logits(model, full[:, : n + step], kept_now, config.k, positions(n + step), block_now)
        diff = (logits - expected[:, -1]).abs().max()
        assert diff < TOLERANCE, f"decode step {step} differs by {diff}"
        decode_diff = torch.maximum(decode_diff, diff)
    return float(prefill_diff), float(decode_diff)


def assert_batch_matches_singles(
    model, singles: list[dict], batch: dict, config: fastv.FastVConfig, steps: int = 4
) -> None:
    """A left-padded batch generates the same tokens, and keeps the same positions, as each sample alone."""
    fastv.apply(model, config)
    try:
        expected, keeps = [], []
        for inputs in singles:
            n = inputs["input_ids"].shape[1]
            expected.append(generate(model, inputs, steps).sequences[0, n:])
            keeps.append(fastv.last_keep(model)[0])
        out = generate(model, batch, steps)
        width = batch["input_ids"].shape[1]
        for row, tokens in enumerate(expected):
            assert torch.equal(out.sequences[row, width:], tokens), f"sample {row}"
        for got, want in zip(fastv.last_keep(model), keeps, strict=True):
            assert torch.equal(got, want)
    finally:
        fastv.remove(model)


def assert_remove_restores(model, inputs: dict, config: fastv.FastVConfig, steps: int = 3) -> None:
    with torch.no_grad():
        before = model(**inputs).logits
    expected = generate(model, inputs, steps)
    fastv.apply(model, config)
    generate(model, inputs, steps)
    fastv.remove(model)
    assert not fastv.is_applied(model)
    with torch.no_grad():
        assert torch.equal(model(**inputs).logits, before)
    assert torch.equal(generate(model, inputs, steps).sequences, expected.sequences)
