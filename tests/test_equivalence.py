"""FastV against independent references: the unpatched model (ratio 0) and a cache-free layer loop."""

from __future__ import annotations

import pytest
import torch

import fastv
from fastv.selfcheck.checks import generate
from fastv.selfcheck.reference import merged_embeddings, reference_kept, reference_logits
from fastv.selfcheck.tiny import IMAGE_TOKEN, left_pad, prompt_ids

TOLERANCE = 1e-4


def _single(vlm, n_images: int = 1, seed: int = 0, before: int = 5, after: int = 6) -> dict:
    ids = prompt_ids(before, [vlm.image_tokens] * n_images, after, seed=seed)[None]
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "pixel_values": vlm.pixel_values(n_images, seed)}


def _generate(model, inputs: dict, steps: int = 8, **kwargs):
    return generate(model, inputs, steps, **kwargs)


def test_ratio_zero_is_identical_to_unpatched_model(llava):
    model, inputs = llava.model, _single(llava)
    with torch.no_grad():
        expected_prefill = model(**inputs).logits
    expected = _generate(model, inputs)
    fastv.apply(model, fastv.FastVConfig(k=2, ratio=0.0))
    with torch.no_grad():
        assert torch.equal(model(**inputs).logits, expected_prefill)
    got = _generate(model, inputs)
    assert torch.equal(got.sequences, expected.sequences)
    for step_got, step_expected in zip(got.logits, expected.logits, strict=True):
        assert torch.equal(step_got, step_expected)


@pytest.mark.parametrize("rank", ["last_token", "mean", "random"])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_prefill_and_cached_decode_match_cache_free_reference(llava, rank, k):
    model, inputs = llava.model, _single(llava, n_images=2)
    n = inputs["input_ids"].shape[1]
    embeds = merged_embeddings(model, **inputs)
    config = fastv.FastVConfig(k=k, ratio=0.5, rank=rank, seed=3)
    fastv.apply(model, config)
    with torch.no_grad():
        prefill = model(**inputs).logits
    kept = fastv.last_keep(model)[0]
    image_mask = inputs["input_ids"][0] == IMAGE_TOKEN
    n_img = int(image_mask.sum())
    assert kept.numel() == n - n_img // 2
    assert prefill.shape == (1, kept.numel(), model.config.text_config.vocab_size)
    out = _generate(model, inputs, steps=8)
    fastv.remove(model)
    assert (prefill - reference_logits(model, embeds, kept, k)).abs().max() < TOLERANCE
    new_tokens = out.sequences[0, n:]
    assert new_tokens.numel() == 8
    token_embeds = model.get_input_embeddings()(new_tokens)[None]
    full = torch.cat([embeds, token_embeds], dim=1)
    for step, logits in enumerate(out.logits):
        kept_now = torch.cat([kept, torch.arange(n, n + step)])
        expected = reference_logits(model, full[:, : n + step], kept_now, k)[:, -1]
        assert (logits - expected).abs().max() < TOLERANCE, f"decode step {step}"

    if rank != "random":  # the kept set is the one full eager attention maps give
        assert torch.equal(kept, reference_kept(model, inputs, image_mask, k, n_img // 2, rank))


def test_random_rank_is_seeded_and_differs_from_attention(llava):
    model, inputs = llava.model, _single(llava)
    picks = []
    for rank, seed in [("random", 0), ("random", 0), ("random", 1), ("last_token", 0)]:
        fastv.apply(model, fastv.FastVConfig(k=2, ratio=0.5, rank=rank, seed=seed))
        with torch.no_grad():
            model(**inputs)
        picks.append(fastv.last_keep(model)[0])
        fastv.remove(model)
    assert torch.equal(picks[0], picks[1])
    assert not torch.equal(picks[0], picks[2])
    assert not torch.equal(picks[0], picks[3])


def test_keep_budget_keeps_exactly_that_many_image_tokens(llava):
    model, inputs = llava.model, _single(llava, n_images=2)
    ids = inputs["input_ids"][0]
    fastv.apply(model, fastv.FastVConfig(k=2, keep=5))
    with torch.no_grad():
        model(**inputs)
    kept = fastv.last_keep(model)[0]
    assert int((ids[kept] == IMAGE_TOKEN).sum()) == 5
    assert torch.equal(ids[kept][ids[kept] != IMAGE_TOKEN], ids[ids != IMAGE_TOKEN])


def test_remove_restores_identical_outputs(llava):
    model, inputs = llava.model, _single(llava)
    with torch.no_grad():
        before = model(**inputs).logits
    expected = _generate(model, inputs)
    fastv.apply(model, fastv.FastVConfig(k=2, ratio=0.75))
    _generate(model, inputs)
    fastv.remove(model)
    assert not fastv.is_applied(model)
    with torch.no_grad():
        assert torch.equal(model(**inputs).logits, before)
    assert torch.equal(_generate(model, inputs).sequences, expected.sequences)


def test_batched_padded_inputs_match_single_runs(llava):
    """Samples of different length and image count (0, 1, 2 images), left-padded, ranked on their own."""
    model = llava.model
    specs = [(3, [llava.image_tokens], 4), (6, [llava.image_tokens] * 2, 2), (2, [], 5)]
    prompts = [prompt_ids(b, imgs, a, seed=i) for i, (b, imgs, a) in enumerate(specs)]
    n_images = [len(imgs) for _, imgs, _ in specs]
    pixels = [llava.pixel_values(count, seed=i) for i, count in enumerate(n_images)]
    fastv.apply(model, fastv.FastVConfig(k=2, ratio=0.5))
    singles, single_keeps = [], []
    for prompt, pixel_values in zip(prompts, pixels, strict=True):
        inputs = {"input_ids": prompt[None], "attention_mask": torch.ones(1, prompt.numel(), dtype=torch.long)}
        if pixel_values.shape[0]:
            inputs["pixel_values"] = pixel_values
            singles.append(_generate(model, inputs, steps=6).sequences[0, prompt.numel() :])
            single_keeps.append(fastv.last_keep(model)[0])
        else:  # a text-only prompt alone has nothing to prune: run it unpatched
            fastv.remove(model)
            singles.append(_generate(model, inputs, steps=6).sequences[0, prompt.numel() :])
            single_keeps.append(torch.arange(prompt.numel()))
            fastv.apply(model, fastv.FastVConfig(k=2, ratio=0.5))
    ids, mask = left_pad(prompts)
    batch = {"input_ids": ids, "attention_mask": mask, "pixel_values": torch.cat(pixels)}
    out = _generate(model, batch, steps=6)
    for row, expected in enumerate(singles):
        assert torch.equal(out.sequences[row, ids.shape[1] :], expected), f"sample {row}"
    for got, expected in zip(fastv.last_keep(model), single_keeps, strict=True):
        assert torch.equal(got, expected)


def test_use_cache_false_reprunes_the_whole_sequence_every_step(llava):
    """Documented: without a cache every forward is a prefill, ranked and pruned afresh."""
    model, inputs = llava.model, _single(llava)
    n = inputs["input_ids"].shape[1]
    fastv.apply(model, fastv.FastVConfig(k=2, ratio=0.5))
    out = _generate(model, inputs, steps=4, use_cache=False)
    fastv.remove(model)
    image_mask = out.sequences[0] == IMAGE_TOKEN
    for step, logits in enumerate(out.logits):
        ids = out.sequences[:, : n + step]
        step_inputs = {**inputs, "input_ids": ids, "attention_mask": torch.ones_like(ids)}
        kept = reference_kept(model, step_inputs, image_mask[: n + step], 2, int(image_mask.sum()) // 2, "last_token")
        expected = reference_logits(model, merged_embeddings(model, **step_inputs), kept, 2)[:, -1]
        assert (logits - expected).abs().max() < TOLERANCE, f"step {step}"
