"""Aya Vision and Command A Vision (SigLIP + pixel shuffle, Cohere2 decoder whose full-attention layers
apply no RoPE): the equivalence suite, every ranker on sliding (RoPE) and full (no RoPE) ranking layers."""

from __future__ import annotations

from functools import partial

import pytest
import torch

import fastv
from fastv import FastVError
from fastv.compat import output_cache
from fastv.families import cohere, family_for
from fastv.families.cohere.selfcheck import tiny_cohere_vlm
from fastv.selfcheck.prompts import image_prompt, image_runs
from fastv.selfcheck.reference import language_model
from tests.families import image_suite
from tests.families.equivalence import check_against_reference
from tests.families.rankers import check_every_ranker

VARIANTS = ["aya_vision", "cohere2_vision"]
four_images = partial(image_prompt, n_images=4)


@pytest.mark.parametrize("variant", VARIANTS)
def test_adapter_rebuilds_every_layers_cached_keys(variant):
    """Layers 0 and 2 slide (window 8, RoPE), 1 and 3 are full (no RoPE): the adapter's keys equal the
    cached keys on each, and the RoPE-everywhere rule would be wrong exactly on the full layers."""
    vlm = tiny_cohere_vlm(variant=variant)
    lm = language_model(vlm.model)
    assert [layer.self_attn.sliding_window for layer in lm.layers] == [8, None, 8, None]
    family, seen = family_for(vlm.model), {}

    def grab(attention, args, kwargs):
        seen[attention.layer_idx] = (kwargs["hidden_states"], kwargs["position_embeddings"])

    handles = [layer.self_attn.register_forward_pre_hook(grab, with_kwargs=True) for layer in lm.layers]
    try:
        with torch.no_grad():
            cache = output_cache(vlm.model(**four_images(vlm), use_cache=True))
    finally:
        for handle in handles:
            handle.remove()
    for i, layer in enumerate(lm.layers):
        hidden, rotary = seen[i]
        cached = cache.layers[i].keys  # sliding layers cache only their window's last keys
        rebuilt = family.keys(layer.self_attn, hidden, rotary)[..., -cached.shape[-2] :, :]
        assert (rebuilt - cached).abs().max() < 1e-5, i
        always_rotated = super(cohere.CohereFamily, family).keys(layer.self_attn, hidden, rotary)
        rotated = torch.allclose(always_rotated[..., -cached.shape[-2] :, :], cached)
        assert rotated == (i % 2 == 0), i


@pytest.mark.parametrize("variant", VARIANTS)
def test_equivalence_suite(variant):
    image_suite.run_all(tiny_cohere_vlm(variant=variant), image_prompt, image_runs)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("k", [2, 3])
def test_every_ranker_and_backend_over_8_decode_steps(variant, k):
    """k=2 ranks on a full layer (no RoPE), k=3 on a sliding one; 4 images give 16 image tokens for the window."""
    check_every_ranker(partial(tiny_cohere_vlm, variant=variant), four_images, image_suite.prunable, k=k)


@pytest.mark.parametrize("variant", VARIANTS)
def test_rope_on_full_layers_is_refused_by_the_key_check(variant, monkeypatch):
    """The guard is live: an adapter that rotated on a full layer is refused at the first prefill (k=2 ranks on
    full layer 1), and one ranking on a sliding layer (k=1) is accepted."""
    vlm = tiny_cohere_vlm(variant=variant)
    inputs = four_images(vlm)
    monkeypatch.setattr(cohere, "applies_rope", lambda attention: True)
    fastv.apply(vlm.model, fastv.FastVConfig(k=2, ratio=0.5))
    try:
        with pytest.raises(FastVError, match=r"rebuilds layer 1's keys differently"), torch.no_grad():
            vlm.model(**inputs)
    finally:
        fastv.remove(vlm.model)
    check_against_reference(vlm.model, inputs, fastv.FastVConfig(k=1, ratio=0.5), image_suite.prunable(inputs))
