"""Qwen3.5 and Qwen3.5-MoE: a hybrid decoder (Gated DeltaNet linear-attention layers between gated
full-attention layers), partial interleaved M-RoPE, Qwen3-VL style vision without DeepStack.

Pruned linear-attention layers must run their recurrence over the kept tokens only: the reference
gathers them physically, and a test shows that hiding dropped tokens with a mask is a different
computation. Layer k-1 must be a full-attention layer.
"""

from __future__ import annotations

import pytest
import torch

import fastv
from fastv.compat import output_cache
from fastv.errors import FastVError
from fastv.families.qwen3_5.selfcheck import tiny_qwen3_5
from fastv.selfcheck.prompts import grid_batch, image_runs, qwen3_prompt, qwen_positions
from fastv.selfcheck.reference import decoder_inputs, language_model, reference_logits
from fastv.selfcheck.tiny import IMAGE_TOKEN, VIDEO_TOKEN
from tests.families.equivalence import (
    TOLERANCE,
    assert_adapter_queries_are_the_models,
    assert_batch_matches_singles,
    assert_full_width_batch_matches_singles,
    assert_ratio_zero_identical,
    assert_remove_restores,
    check_against_reference,
    prefill_with_fastv,
)


@pytest.fixture(scope="module", params=["qwen3_5", "qwen3_5_moe"])
def qwen35(request):
    return tiny_qwen3_5(moe=request.param == "qwen3_5_moe")


def _prunable(inputs: dict) -> torch.Tensor:
    return torch.isin(inputs["input_ids"][0], torch.tensor([IMAGE_TOKEN, VIDEO_TOKEN]))


def test_tiny_model_is_hybrid_with_a_gated_query_projection(qwen35):
    lm = language_model(qwen35.model)
    assert lm.config.layer_types == ["linear_attention", "full_attention"] * 2
    assert not hasattr(lm.layers[0], "self_attn") and hasattr(lm.layers[0], "linear_attn")
    attention = lm.layers[1].self_attn
    assert attention.q_proj.out_features == 2 * attention.k_proj.out_features * attention.num_key_value_groups
    assert lm.config.rope_parameters["partial_rotary_factor"] == 0.5


def test_ratio_zero_is_identical_to_unpatched_model(qwen35):
    assert_ratio_zero_identical(qwen35.model, qwen3_prompt(qwen35, video_grid=(4, 4, 4)))


@pytest.mark.parametrize("rank", ["last_token", "mean", "random"])
def test_image_and_video_match_the_reference(qwen35, rank):
    inputs = qwen3_prompt(qwen35, video_grid=(4, 4, 4))
    config = fastv.FastVConfig(k=2, ratio=0.5, rank=rank)
    check_against_reference(
        qwen35.model, inputs, config, _prunable(inputs), positions=qwen_positions(qwen35, inputs), steps=8
    )


def test_deeper_k_ranks_with_a_later_full_attention_layer():
    """Six layers, k=4: full layer 3 ranks, linear layer 4 and full layer 5 are pruned (moe not needed)."""
    vlm = tiny_qwen3_5(layers=6)
    inputs = qwen3_prompt(vlm, video_grid=(2, 4, 4))
    config = fastv.FastVConfig(k=4, ratio=0.75)
    check_against_reference(vlm.model, inputs, config, _prunable(inputs), qwen_positions(vlm, inputs), steps=8)


def test_pruned_cache_keeps_full_length_in_the_first_attention_layer(qwen35):
    """Layer 0 is linear attention (no KV length): the full length lives in full layer 1, the kept one in
    full layer 3, and the linear layers hold fixed-size states."""
    inputs = qwen3_prompt(qwen35)
    out, kept = prefill_with_fastv(qwen35.model, inputs, fastv.FastVConfig(k=2, ratio=0.5))
    cache = output_cache(out)
    n = inputs["input_ids"].shape[1]
    assert kept.numel() < n
    assert cache.get_seq_length() == cache.layers[1].get_seq_length() == n
    assert cache.layers[3].get_seq_length() == kept.numel()
    assert not hasattr(cache.layers[0], "keys") and not hasattr(cache.layers[2], "keys")
    assert cache.layers[2].recurrent_states[0].shape == cache.layers[0].recurrent_states[0].shape


def test_prefill_without_a_cache_equals_the_cached_prefill(qwen35):
    """use_cache=False: the linear layers run without a state to write, on the same kept tokens."""
    inputs = qwen3_prompt(qwen35)
    config = fastv.FastVConfig(k=2, ratio=0.5, rank="mean")
    cached, kept = prefill_with_fastv(qwen35.model, inputs, config)
    uncached, kept_uncached = prefill_with_fastv(qwen35.model, {**inputs, "use_cache": False}, config)
    assert torch.equal(kept, kept_uncached)
    assert (cached.logits - uncached.logits).abs().max() < TOLERANCE


def _masked_instead_of_removed(model, embeds, kept, k, positions) -> torch.Tensor:
    """A wrong reference: pruned linear-attention layers see the full sequence with dropped tokens zeroed by
    their padding mask (full-attention layers still see only the kept tokens)."""
    lm = language_model(model)
    n = embeds.shape[1]
    keep = torch.zeros(1, n, dtype=torch.long)
    keep[0, kept] = 1
    cos, sin = lm.rotary_emb(embeds, position_ids=positions)
    causal = torch.full((n, n), torch.finfo(embeds.dtype).min).triu(1)[None, None]
    hidden = embeds
    with torch.no_grad():
        for i, layer in enumerate(lm.layers):
            linear = lm.config.layer_types[i] == "linear_attention"
            if i < k:
                hidden = layer(hidden, attention_mask=None if linear else causal, position_embeddings=(cos, sin))
            elif linear:
                hidden = layer(hidden, attention_mask=keep, position_embeddings=(cos, sin))
            else:
                m = len(kept)
                rotary = (cos[:, kept], sin[:, kept])
                out = layer(hidden[:, kept], attention_mask=causal[..., :m, :m], position_embeddings=rotary)
                hidden = hidden.clone()
                hidden[:, kept] = out
        return model.lm_head(lm.norm(hidden[:, kept]))


def test_hiding_dropped_tokens_with_a_mask_is_not_the_same_computation(qwen35):
    """The check above cannot pass vacuously: masked (zeroed) tokens still decay the DeltaNet state."""
    inputs = qwen3_prompt(qwen35)
    at = qwen_positions(qwen35, inputs)(inputs["input_ids"].shape[1])
    embeds, _ = decoder_inputs(qwen35.model, **inputs)
    out, kept = prefill_with_fastv(qwen35.model, inputs, fastv.FastVConfig(k=2, ratio=0.5))
    removed = reference_logits(qwen35.model, embeds, kept, 2, at)
    masked = _masked_instead_of_removed(qwen35.model, embeds, kept, 2, at)
    assert (out.logits - removed).abs().max() < TOLERANCE < (out.logits - masked).abs().max()


def test_per_frame_budget(qwen35):
    """budget="per_image": the image and each video frame (its own run of tokens) keep the same share."""
    inputs = qwen3_prompt(qwen35, video_grid=(4, 4, 4))
    ids = inputs["input_ids"][0]
    segments = image_runs({"input_ids": torch.where(ids == VIDEO_TOKEN, IMAGE_TOKEN, ids)[None]})
    assert int(segments.max()) == 4  # the image and 4 frames
    config = fastv.FastVConfig(k=2, ratio=0.75, budget="per_image")
    positions = qwen_positions(qwen35, inputs)
    check_against_reference(qwen35.model, inputs, config, _prunable(inputs), positions, segments=segments)


def test_padded_batch_of_different_sizes_matches_single_runs(qwen35):
    """Samples keep different counts, so the pruned batch is re-padded: linear layers need its padding mask."""
    grids = [((1, 4, 6), (2, 4, 4)), ((1, 8, 4), None)]
    singles = [qwen3_prompt(qwen35, image, video, seed=i, before=2 + 3 * i) for i, (image, video) in enumerate(grids)]
    for rank in ("last_token", "random"):
        config = fastv.FastVConfig(k=2, ratio=0.5, rank=rank)
        assert_batch_matches_singles(qwen35.model, singles, grid_batch(singles), config, steps=6)


def test_a_padded_batch_whose_longest_row_keeps_every_image_token(qwen35):
    """Linear-attention layers get the re-packed batch's padding mask also when it is as wide as the full one."""
    singles = [
        qwen3_prompt(qwen35, (1, 8, 4), (2, 4, 4), seed=0, before=2),
        qwen3_prompt(qwen35, (1, 4, 6), None, seed=1, before=60),
    ]
    assert_full_width_batch_matches_singles(qwen35.model, singles, grid_batch(singles), ks=(2,))


def test_remove_restores_the_model(qwen35):
    assert_remove_restores(qwen35.model, qwen3_prompt(qwen35), fastv.FastVConfig(k=2, ratio=0.75))


@pytest.mark.parametrize("k", [1, 3])
def test_a_linear_attention_ranking_layer_is_refused_naming_valid_k(qwen35, k):
    with pytest.raises(FastVError, match=rf"k={k} .* 'linear_attention' layer.* valid k values are \[2\]"):
        fastv.apply(qwen35.model, fastv.FastVConfig(k=k))
    assert not fastv.is_applied(qwen35.model)


def test_adapter_queries_are_the_models_query_half(qwen35, monkeypatch):
    """The ranking queries equal the ones the model attends with (query half of q_proj, q_norm, partial rotary),
    not the gate; the keys are checked at every first prefill by FastV itself."""
    attention = language_model(qwen35.model).layers[1].self_attn
    assert_adapter_queries_are_the_models(qwen35.model, attention, qwen3_prompt(qwen35), monkeypatch)
