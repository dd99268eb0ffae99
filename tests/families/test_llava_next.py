"""LLaVA-NeXT (anyres): images of different sizes give different token counts, in one batch too."""

from __future__ import annotations

import torch

import fastv
from fastv.families.llava.selfcheck import llava_next_image
from fastv.selfcheck.reference import merged_embeddings, reference_kept, reference_logits
from fastv.selfcheck.tiny import IMAGE_TOKEN, left_pad, prompt_ids
from tests.families.equivalence import assert_full_width_batch_matches_singles

TOLERANCE = 1e-4


def _inputs(vlm, size, seed=0, before=4, after=5):
    tiles, n_tokens = llava_next_image(vlm, size, seed=seed)
    ids = prompt_ids(before, [n_tokens], after, seed=seed)
    return ids, tiles, n_tokens


def test_variable_token_counts_match_reference_prefill_and_decode(llava_next):
    model = llava_next.model
    ids, tiles, n_tokens = _inputs(llava_next, (20, 30))
    assert n_tokens == 70
    inputs = {
        "input_ids": ids[None],
        "attention_mask": torch.ones(1, ids.numel(), dtype=torch.long),
        "pixel_values": tiles[None],
        "image_sizes": torch.tensor([[20, 30]]),
    }
    n = ids.numel()
    embeds = merged_embeddings(model, **inputs)
    fastv.apply(model, fastv.FastVConfig(k=2, ratio=0.75))
    with torch.no_grad():
        prefill = model(**inputs).logits
        out = model.generate(
            **inputs,
            max_new_tokens=5,
            min_new_tokens=5,
            do_sample=False,
            output_logits=True,
            return_dict_in_generate=True,
        )
    kept = fastv.last_keep(model)[0]
    fastv.remove(model)
    assert kept.numel() == n - (70 * 3) // 4
    assert torch.equal(kept, reference_kept(model, inputs, ids == IMAGE_TOKEN, 2, (70 * 3) // 4, "last_token"))
    assert (prefill - reference_logits(model, embeds, kept, 2)).abs().max() < TOLERANCE
    full = torch.cat([embeds, model.get_input_embeddings()(out.sequences[:, n:])], dim=1)
    for step, logits in enumerate(out.logits):
        kept_now = torch.cat([kept, torch.arange(n, n + step)])
        expected = reference_logits(model, full[:, : n + step], kept_now, 2)[:, -1]
        assert (logits - expected).abs().max() < TOLERANCE


def test_batch_of_different_image_sizes_matches_single_runs(llava_next):
    model = llava_next.model
    sizes = [(16, 32), (16, 16)]  # same tile count (3), different token counts (52, 36)
    samples = [_inputs(llava_next, size, seed=i, before=3 + 2 * i) for i, size in enumerate(sizes)]
    assert [s[2] for s in samples] == [52, 36]
    fastv.apply(model, fastv.FastVConfig(k=1, ratio=0.5))
    singles, keeps = [], []
    for (ids, tiles, _), size in zip(samples, sizes, strict=True):
        inputs = {
            "input_ids": ids[None],
            "attention_mask": torch.ones(1, ids.numel(), dtype=torch.long),
            "pixel_values": tiles[None],
            "image_sizes": torch.tensor([size]),
        }
        singles.append(model.generate(**inputs, max_new_tokens=6, min_new_tokens=6, do_sample=False)[0, ids.numel() :])
        keeps.append(fastv.last_keep(model)[0])
    ids, mask = left_pad([s[0] for s in samples])
    batch = {
        "input_ids": ids,
        "attention_mask": mask,
        "pixel_values": torch.stack([s[1] for s in samples]),
        "image_sizes": torch.tensor(sizes),
    }
    out = model.generate(**batch, max_new_tokens=6, min_new_tokens=6, do_sample=False)
    for row, expected in enumerate(singles):
        assert torch.equal(out[row, ids.shape[1] :], expected)
    for got, expected in zip(fastv.last_keep(model), keeps, strict=True):
        assert torch.equal(got, expected)


def test_a_padded_batch_whose_longest_row_keeps_every_image_token(llava_next):
    """keep = the longest row's 36 tokens: only the short 52-token row is pruned, and the pruned batch is
    exactly as wide as the full one."""
    sizes, befores = [(16, 32), (16, 16)], [3, 30]
    singles = []
    for row, (size, before) in enumerate(zip(sizes, befores, strict=True)):
        ids, tiles, _ = _inputs(llava_next, size, seed=row, before=before)
        singles.append(
            {
                "input_ids": ids[None],
                "attention_mask": torch.ones(1, ids.numel(), dtype=torch.long),
                "pixel_values": tiles[None],
                "image_sizes": torch.tensor([size]),
            }
        )
    ids, mask = left_pad([s["input_ids"][0] for s in singles])
    batch = {
        "input_ids": ids,
        "attention_mask": mask,
        "pixel_values": torch.cat([s["pixel_values"] for s in singles]),
        "image_sizes": torch.tensor(sizes),
    }
    assert_full_width_batch_matches_singles(llava_next.model, singles, batch)
