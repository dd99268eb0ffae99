"""The equivalence suite, shared by every family's tests: FastV against the cache-free reference.

Each family test builds its tiny model and one prompt, then calls these checks, so the same
definition of "correct" covers every family.
"""

from __future__ import annotations

import torch

import fastv
from fastv.selfcheck.checks import PositionFn, compare_with_reference, generate, ratio_zero_identical, remove_restores

TOLERANCE = 1e-4


def assert_ratio_zero_identical(model, inputs: dict, steps: int = 3) -> None:
    """ratio=0 leaves every logit bit-identical to the unpatched model, prefill and decode."""
    assert ratio_zero_identical(model, inputs, steps)


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

    Also checks that the kept set has the configured size and is the one eager attention maps give.
    """
    result = compare_with_reference(model, inputs, config, prunable, positions, blocks, segments, steps)
    assert_matches_reference(result)
    return result.prefill_diff, max(result.decode_diffs)


def assert_matches_reference(result) -> None:
    """The kept set has the configured size and is eager attention's; prefill and decode within TOLERANCE."""
    assert result.kept.numel() == result.expected_count
    if result.expected_kept is not None:
        assert torch.equal(result.kept, result.expected_kept)
    assert result.prefill_diff < TOLERANCE, f"prefill differs by {result.prefill_diff}"
    for step, diff in enumerate(result.decode_diffs):
        assert diff < TOLERANCE, f"decode step {step} differs by {diff}"


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


def assert_full_width_batch_matches_singles(
    model, singles: list[dict], batch: dict, ks: tuple[int, ...] = (1, 2), steps: int = 4
) -> None:
    """A padded batch whose longest row drops nothing equals each sample alone (tokens, logits, kept set).

    ``keep`` is set to the longest row's image-token count, so that row keeps all of its tokens and the
    re-packed pruned batch is exactly as wide as the full one, while a row with more image tokens is
    pruned: code that infers "pruned or not" from sequence widths goes wrong here.
    """
    counts = [_image_token_count(model, inputs, min(ks)) for inputs in singles]
    lengths = [int(inputs["input_ids"].shape[1]) for inputs in singles]
    longest = max(range(len(singles)), key=lambda row: lengths[row])
    keep = counts[longest]
    assert lengths.count(lengths[longest]) == 1 and max(counts) > keep, (
        f"not a full-width batch: lengths {lengths}, image tokens {counts}; the single longest row must have the "
        "fewest image tokens"
    )
    for k in ks:
        assert_batch_equals_rows_alone(model, singles, batch, fastv.FastVConfig(k=k, keep=keep), steps)


def assert_batch_equals_rows_alone(
    model, singles: list[dict], batch: dict, config: fastv.FastVConfig, steps: int = 4, text_rows: tuple = ()
) -> None:
    """Every row of a left-padded batch generates the same tokens, with the same per-step logits (within
    TOLERANCE), and keeps the same positions as its sample alone: under FastV for image rows, and for the
    ``text_rows`` (no image tokens, which FastV keeps whole) as the unpatched model runs them."""
    expected = {row: generate(model, singles[row], steps) for row in text_rows}
    fastv.apply(model, config)
    try:
        keeps = {}
        for row, inputs in enumerate(singles):
            if row not in text_rows:
                expected[row] = generate(model, inputs, steps)
                keeps[row] = fastv.last_keep(model)[0]
            else:
                keeps[row] = torch.arange(inputs["input_ids"].shape[1])
        out = generate(model, batch, steps)
        width = batch["input_ids"].shape[1]
        for row, alone in expected.items():
            n = singles[row]["input_ids"].shape[1]
            assert torch.equal(out.sequences[row, width:], alone.sequences[0, n:]), f"row {row}: tokens"
            for step, (got, want) in enumerate(zip(out.logits, alone.logits, strict=True)):
                diff = float((got[row] - want[0]).abs().max())
                assert diff < TOLERANCE, f"row {row}, step {step}: logits differ by {diff}"
        for row, (got, want) in enumerate(
            zip(fastv.last_keep(model), [keeps[r] for r in range(len(singles))], strict=True)
        ):
            assert torch.equal(got, want), f"row {row}: kept positions"
    finally:
        fastv.remove(model)


def _image_token_count(model, inputs: dict, k: int) -> int:
    """The prunable tokens of one sample: those keep=0 drops."""
    _, kept = prefill_with_fastv(model, inputs, fastv.FastVConfig(k=k, keep=0))
    return int(inputs["input_ids"].shape[1]) - kept.numel()


def assert_remove_restores(model, inputs: dict, config: fastv.FastVConfig, steps: int = 3) -> None:
    assert remove_restores(model, inputs, config, steps)


def assert_deepstack_matters(model, inputs: dict, positions: PositionFn) -> None:
    """FastV (k=1, R=0.5) equals the reference with the DeepStack rows and differs without them, so a
    DeepStack family's equivalence checks cannot pass vacuously."""
    from fastv.selfcheck.reference import decoder_inputs, reference_logits

    embeds, deepstack = decoder_inputs(model, **inputs)
    fastv.apply(model, fastv.FastVConfig(k=1, ratio=0.5))
    with torch.no_grad():
        logits = model(**inputs).logits
    kept = fastv.last_keep(model)[0]
    fastv.remove(model)
    at = positions(inputs["input_ids"].shape[1])
    with_rows = reference_logits(model, embeds, kept, 1, at, deepstack=deepstack)
    without = reference_logits(model, embeds, kept, 1, at)
    assert (logits - with_rows).abs().max() < TOLERANCE < (logits - without).abs().max()


def prefill_with_fastv(model, inputs: dict, config: fastv.FastVConfig):
    """One FastV prefill: the model's output and the first sample's kept positions (FastV removed after)."""
    fastv.apply(model, config)
    try:
        with torch.no_grad():
            out = model(**inputs)
        return out, fastv.last_keep(model)[0]
    finally:
        fastv.remove(model)


def assert_adapter_queries_are_the_models(model, attention, inputs: dict, monkeypatch) -> None:
    """The family adapter's ranking queries equal the rotated queries ``attention`` itself computes (its
    module's ``apply_rotary_pos_emb``, first call after this layer starts); the keys are checked at every
    first prefill by FastV itself."""
    import sys

    from fastv.families import family_for

    module = sys.modules[type(attention).__module__]
    rotary, seen = module.apply_rotary_pos_emb, {}

    def record_inputs(_module, _args, kwargs):
        seen.setdefault("inputs", (kwargs["hidden_states"], kwargs["position_embeddings"]))

    def record_queries(q, k, cos, sin, *args, **kwargs):
        out = rotary(q, k, cos, sin, *args, **kwargs)
        if "inputs" in seen:
            seen.setdefault("queries", out[0])
        return out

    handle = attention.register_forward_pre_hook(record_inputs, with_kwargs=True)
    monkeypatch.setattr(module, "apply_rotary_pos_emb", record_queries)
    try:
        with torch.no_grad():
            model(**inputs)
    finally:
        handle.remove()
    hidden, position_embeddings = seen["inputs"]
    with torch.no_grad():
        queries = family_for(model).queries(attention, hidden, position_embeddings)
    torch.testing.assert_close(queries, seen["queries"], rtol=0, atol=1e-6)
