"""LFM2-VL: a hybrid LFM2 (or LFM2-MoE) decoder of gated short-convolution layers between full-attention
layers, behind SigLIP2 NaFlex vision (images at their own aspect, a different token count each).

Pruned conv layers must run their convolution over the kept tokens only: the reference gathers them
physically, and a test shows that hiding dropped tokens with a mask is a different computation. Layer
k-1 must be a full-attention layer.
"""

from __future__ import annotations

import pytest
import torch

import fastv
from fastv.compat import output_cache
from fastv.errors import FastVError
from fastv.families.lfm2_vl.selfcheck import lfm2_vl_batch, lfm2_vl_prompt, tiny_lfm2_vl
from fastv.selfcheck.prompts import image_runs
from fastv.selfcheck.reference import decoder_inputs, final_norm, language_model, reference_logits
from fastv.selfcheck.tiny import IMAGE_TOKEN
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
from tests.families.rankers import check_every_ranker

DECODERS = ["lfm2", "lfm2_moe"]


@pytest.fixture(scope="module", params=DECODERS)
def lfm2(request):
    return tiny_lfm2_vl(moe=request.param == "lfm2_moe")


def _prunable(inputs: dict) -> torch.Tensor:
    return inputs["input_ids"][0] == IMAGE_TOKEN


def test_tiny_model_is_hybrid_with_short_convolutions(lfm2):
    lm = language_model(lfm2.model)
    assert lm.config.layer_types == ["conv", "full_attention"] * 2
    assert not hasattr(lm.layers[0], "self_attn") and hasattr(lm.layers[0].conv, "conv")
    assert lm.layers[0].conv.conv.kernel_size == (3,)
    assert hasattr(lm.layers[1].self_attn, "q_layernorm") and not hasattr(lm.layers[1].self_attn, "q_norm")


def test_ratio_zero_is_identical_to_unpatched_model(lfm2):
    assert_ratio_zero_identical(lfm2.model, lfm2_vl_prompt(lfm2))


@pytest.mark.parametrize("decoder", DECODERS)
def test_every_ranker_on_sdpa_and_eager_matches_the_reference(decoder):
    """Prefill and 8 cached decode steps equal the reference; kept sets equal eager attention maps'."""
    diffs = check_every_ranker(lambda attn: tiny_lfm2_vl(attn, moe=decoder == "lfm2_moe"), lfm2_vl_prompt, _prunable)
    assert len(diffs) == 6


def test_deeper_k_ranks_with_a_later_attention_layer():
    """Conv layers 0-1 first, as LFM2 checkpoints begin: k=3 ranks with full layer 2 and prunes conv layer 3,
    full layer 4 and the last layer, conv 5."""
    vlm = tiny_lfm2_vl(layer_types=("conv", "conv", "full_attention", "conv", "full_attention", "conv"))
    inputs = lfm2_vl_prompt(vlm, sizes=((8, 8), (4, 6)))
    for rank in ("last_token", "mean"):
        check_against_reference(
            vlm.model, inputs, fastv.FastVConfig(k=3, ratio=0.75, rank=rank), _prunable(inputs), steps=8
        )


def test_pruned_cache_keeps_full_length_in_the_first_attention_layer(lfm2):
    """Layer 0 is a conv layer (no KV length): the full length lives in full layer 1, the kept one in full
    layer 3, and the conv layers hold fixed-size states of the last kernel-size inputs."""
    inputs = lfm2_vl_prompt(lfm2)
    out, kept = prefill_with_fastv(lfm2.model, inputs, fastv.FastVConfig(k=2, ratio=0.5))
    cache = output_cache(out)
    n = inputs["input_ids"].shape[1]
    assert kept.numel() < n
    assert cache.get_seq_length() == cache.layers[1].get_seq_length() == n
    assert cache.layers[3].get_seq_length() == kept.numel()
    assert not hasattr(cache.layers[0], "keys") and not hasattr(cache.layers[2], "keys")
    assert cache.layers[2].conv_states[0].shape == cache.layers[0].conv_states[0].shape == (1, 64, 3)


def test_prefill_without_a_cache_equals_the_cached_prefill(lfm2):
    """use_cache=False: the conv layers run without a state to write, on the same kept tokens."""
    inputs = lfm2_vl_prompt(lfm2)
    config = fastv.FastVConfig(k=2, ratio=0.5, rank="mean")
    cached, kept = prefill_with_fastv(lfm2.model, inputs, config)
    uncached, kept_uncached = prefill_with_fastv(lfm2.model, {**inputs, "use_cache": False}, config)
    assert torch.equal(kept, kept_uncached)
    assert (cached.logits - uncached.logits).abs().max() < TOLERANCE


def _masked_instead_of_removed(model, embeds, kept, k) -> torch.Tensor:
    """A wrong reference: pruned conv layers see the full sequence with dropped tokens zeroed by their padding
    mask (full-attention layers still see only the kept tokens)."""
    lm = language_model(model)
    n = embeds.shape[1]
    keep = torch.zeros(1, n, dtype=torch.long)
    keep[0, kept] = 1
    rotary = lm.rotary_emb if hasattr(lm, "rotary_emb") else lm.pos_emb
    cos, sin = rotary(embeds, position_ids=torch.arange(n)[None])
    causal = torch.full((n, n), torch.finfo(embeds.dtype).min).triu(1)[None, None]
    hidden = embeds
    with torch.no_grad():
        for i, layer in enumerate(lm.layers):
            conv = lm.config.layer_types[i] == "conv"
            if i < k:
                hidden = layer(hidden, attention_mask=None if conv else causal, position_embeddings=(cos, sin))
            elif conv:
                hidden = layer(hidden, attention_mask=keep, position_embeddings=(cos, sin))
            else:
                m = len(kept)
                out = layer(
                    hidden[:, kept],
                    attention_mask=causal[..., :m, :m],
                    position_embeddings=(cos[:, kept], sin[:, kept]),
                )
                hidden = hidden.clone()
                hidden[:, kept] = out
        return model.lm_head(final_norm(lm)(hidden[:, kept]))


def test_hiding_dropped_tokens_with_a_mask_is_not_the_same_computation(lfm2):
    """The checks above cannot pass vacuously: a zeroed token still fills a slot of the convolution's window."""
    inputs = lfm2_vl_prompt(lfm2)
    embeds, _ = decoder_inputs(lfm2.model, **inputs)
    out, kept = prefill_with_fastv(lfm2.model, inputs, fastv.FastVConfig(k=2, ratio=0.5))
    removed = reference_logits(lfm2.model, embeds, kept, 2)
    masked = _masked_instead_of_removed(lfm2.model, embeds, kept, 2)
    assert (out.logits - removed).abs().max() < TOLERANCE < (out.logits - masked).abs().max()


def test_per_image_budget(lfm2):
    """budget="per_image": each image (one run of tokens) keeps the same share."""
    inputs = lfm2_vl_prompt(lfm2, sizes=((4, 6), (8, 4), (8, 8)))
    assert int(image_runs(inputs).max()) == 2
    config = fastv.FastVConfig(k=2, ratio=0.75, budget="per_image")
    check_against_reference(lfm2.model, inputs, config, _prunable(inputs), segments=image_runs(inputs))


def test_padded_batch_of_different_sizes_matches_single_runs(lfm2):
    """Samples keep different counts, so the pruned batch is re-padded: conv layers need its padding mask."""
    sizes = [((4, 6), (8, 4)), ((8, 8),), ((2, 4), (4, 4), (6, 2))]
    singles = [lfm2_vl_prompt(lfm2, size, seed=i, before=2 + 3 * i) for i, size in enumerate(sizes)]
    for rank in ("last_token", "random"):
        config = fastv.FastVConfig(k=2, ratio=0.5, rank=rank)
        assert_batch_matches_singles(lfm2.model, singles, lfm2_vl_batch(singles), config, steps=6)


def test_a_padded_batch_whose_longest_row_keeps_every_image_token(lfm2):
    """Conv layers get the re-packed batch's padding mask also when it is exactly as wide as the full one."""
    singles = [
        lfm2_vl_prompt(lfm2, ((4, 6), (8, 4)), seed=0, before=2),
        lfm2_vl_prompt(lfm2, ((2, 4),), seed=1, before=60),
    ]
    assert_full_width_batch_matches_singles(lfm2.model, singles, lfm2_vl_batch(singles), ks=(2,))


def test_remove_restores_the_model(lfm2):
    assert_remove_restores(lfm2.model, lfm2_vl_prompt(lfm2), fastv.FastVConfig(k=2, ratio=0.75))


@pytest.mark.parametrize("k", [1, 3])
def test_a_conv_ranking_layer_is_refused_naming_valid_k(lfm2, k):
    with pytest.raises(FastVError, match=rf"k={k} .* 'conv' layer.* valid k values are \[2\]"):
        fastv.apply(lfm2.model, fastv.FastVConfig(k=k))
    assert not fastv.is_applied(lfm2.model)


def test_adapter_queries_are_the_models(lfm2, monkeypatch):
    """The ranking queries equal the ones the model attends with (q_layernorm, then rotary); the keys are
    checked at every first prefill by FastV itself."""
    attention = language_model(lfm2.model).layers[1].self_attn
    assert_adapter_queries_are_the_models(lfm2.model, attention, lfm2_vl_prompt(lfm2), monkeypatch)
