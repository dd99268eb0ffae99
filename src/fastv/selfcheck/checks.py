"""FastV against independent references, as measurements: the test suite asserts on them, and
``fastv doctor`` reports them for the user's own torch / transformers / device.

Each check builds nothing: it takes a model and one unpadded prompt, so the same definition of
"correct" covers every family, backend and dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

import fastv
from fastv.selfcheck.reference import (
    decoder_inputs,
    reference_kept,
    reference_logits,
    reference_scores,
)

# positions(n_total) -> the rotary position ids of the first n_total tokens (prompt + decoded), or None.
PositionFn = Callable[[int], torch.Tensor | None]


def generate(model, inputs: dict, steps: int = 4, **kwargs):
    """Decoding of exactly ``steps`` tokens through the KV cache (greedy unless told), with per-step logits."""
    options = {"do_sample": False, "output_logits": True, "return_dict_in_generate": True, **kwargs}
    with torch.no_grad():
        return model.generate(**inputs, max_new_tokens=steps, min_new_tokens=steps, **options)


def ratio_zero_identical(model, inputs: dict, steps: int = 3) -> bool:
    """ratio=0 leaves the prefill logits and every generated token and logit bit-identical."""
    with torch.no_grad():
        expected_prefill = model(**inputs).logits
    expected = generate(model, inputs, steps)
    fastv.apply(model, fastv.FastVConfig(k=2, ratio=0.0))
    try:
        with torch.no_grad():
            prefill = model(**inputs).logits
        got = generate(model, inputs, steps)
    finally:
        fastv.remove(model)
    same = torch.equal(prefill, expected_prefill) and torch.equal(got.sequences, expected.sequences)
    return same and all(torch.equal(a, b) for a, b in zip(got.logits, expected.logits, strict=True))


@dataclass
class ReferenceComparison:
    """How one pruned run compares with the cache-free reference."""

    kept: torch.Tensor  # positions FastV kept
    expected_kept: torch.Tensor | None  # positions eager attention maps give (None for rank="random")
    expected_count: int  # prompt length minus the tokens the config drops
    prefill_diff: float  # max abs logit difference at prefill
    decode_diffs: list[float]  # per cached decode step
    scale: float = 0.0  # largest |logit| of the reference, for tolerances relative to it
    scores: torch.Tensor | None = None  # (n,) the reference's ranking scores (None for rank="random")

    @property
    def kept_matches(self) -> bool:
        if self.kept.numel() != self.expected_count:
            return False
        return self.expected_kept is None or torch.equal(self.kept.cpu(), self.expected_kept.cpu())

    def kept_matches_up_to_ties(self, tie: float) -> bool:
        """The kept set equals the reference's, except for tokens whose reference scores lie within
        ``tie`` of each other (all on the cut: in half precision, rounding may order near-ties either way)."""
        if self.kept_matches or self.kept.numel() != self.expected_count or self.scores is None:
            return self.kept_matches
        kept, expected = set(self.kept.tolist()), set(self.expected_kept.tolist())
        swapped = self.scores[sorted(kept ^ expected)]
        return float(swapped.max() - swapped.min()) <= tie

    @property
    def max_diff(self) -> float:
        return max([self.prefill_diff, *self.decode_diffs])


def ranking_ties(scores: torch.Tensor, candidates: torch.Tensor, n_drop: int) -> str | None:
    """Why ranking ``candidates`` ((n,) bool) by ``scores`` ((n,) reference scores) and dropping the
    ``n_drop`` lowest is not decided by distinct scores, or None when it is.

    A key outside the ranking layer's sliding window scores exactly 0. When such zeros make up most of the
    dropped set, or the cut falls between equal scores, the order of the ties chooses the kept set, so a
    wrong ranking (queries without RoPE, say) keeps the same set and a check on that prompt cannot see it.
    """
    ranked = torch.sort(scores.cpu()[candidates.cpu()].float()).values
    if not 0 < n_drop < ranked.numel():
        return f"drops {n_drop} of {ranked.numel()} candidates: nothing is ranked"
    zeros = int((ranked == 0).sum())
    if 2 * zeros > n_drop:
        return (
            f"{zeros} of {ranked.numel()} candidates score exactly 0 (outside the ranking layer's window), "
            f"more than half of the {n_drop} dropped"
        )
    if ranked[n_drop] == ranked[n_drop - 1]:
        return f"the cut between dropped and kept falls between equal scores ({float(ranked[n_drop]):.6g})"
    return None


def compare_with_reference(
    model,
    inputs: dict,
    config: fastv.FastVConfig,
    prunable: torch.Tensor,
    positions: PositionFn = lambda n: None,
    blocks: torch.Tensor | None = None,
    segments: torch.Tensor | None = None,
    steps: int = 4,
) -> ReferenceComparison:
    """Prefill and ``steps`` cached decode steps of one unpadded sample against the reference loop.

    prunable: (n,) bool image / video positions. segments: (n,) image / frame ids for budget="per_image".
    The reference runs the pruned layers on FastV's own kept set; that set is compared separately
    with the one eager attention maps of the unpatched model give.
    """
    n = inputs["input_ids"].shape[1]
    embeds, deepstack = decoder_inputs(model, **inputs)
    fastv.apply(model, config)
    try:
        with torch.no_grad():
            prefill = model(**inputs).logits
        kept = fastv.last_keep(model)[0]
        out = generate(model, inputs, steps)
    finally:
        fastv.remove(model)
    prunable = prunable.clone().cpu()
    prunable[-1] = False
    if segments is None:
        n_drop = config.n_dropped(int(prunable.sum()))
        dropped = n_drop
    else:
        segments = segments.cpu()
        ids, counts = torch.unique(segments[prunable], return_counts=True)
        n_drop = {int(s): config.n_dropped(int(c)) for s, c in zip(ids, counts, strict=True)}
        dropped = sum(n_drop.values())
    expected_kept = scores = None
    if config.rank != "random":
        scores = reference_scores(model, inputs, config.k, config.rank)
        expected_kept = reference_kept(model, inputs, prunable, config.k, n_drop, config.rank, segments, scores)
    expected = reference_logits(model, embeds, kept, config.k, positions(n), blocks, deepstack)
    prefill_diff = float((prefill.float() - expected.float()).abs().max())
    scale = float(expected.float().abs().max())
    new_tokens = out.sequences[0, n:]
    full = torch.cat([embeds, model.get_input_embeddings()(new_tokens)[None]], dim=1)
    decode_diffs = []
    for step, logits in enumerate(out.logits):
        kept_now = torch.cat([kept.to(full.device), torch.arange(n, n + step, device=full.device)])
        block_now = None if blocks is None else torch.cat([blocks, torch.full((step,), -1)])
        expected = reference_logits(
            model, full[:, : n + step], kept_now, config.k, positions(n + step), block_now, deepstack
        )
        decode_diffs.append(float((logits.float() - expected[:, -1].float()).abs().max()))
        scale = max(scale, float(expected[:, -1].float().abs().max()))
    return ReferenceComparison(kept, expected_kept, n - dropped, prefill_diff, decode_diffs, scale, scores)


def remove_restores(model, inputs: dict, config: fastv.FastVConfig, steps: int = 3) -> bool:
    """After apply, a pruned generate and remove, outputs are bit-identical to the unpatched model's."""
    with torch.no_grad():
        before = model(**inputs).logits
    expected = generate(model, inputs, steps)
    fastv.apply(model, config)
    generate(model, inputs, steps)
    fastv.remove(model)
    if fastv.is_applied(model):
        return False
    with torch.no_grad():
        after = model(**inputs).logits
    return torch.equal(after, before) and torch.equal(generate(model, inputs, steps).sequences, expected.sequences)
