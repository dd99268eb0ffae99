"""The reference reaches logits through the model's own outer forward (lm_head, logit scales, soft-caps),
so a change in a release's output layer moves the reference with the model instead of failing the doctor."""

from __future__ import annotations

import torch

from fastv.families.cohere.selfcheck import tiny_cohere_vlm
from fastv.selfcheck.prompts import image_prompt
from fastv.selfcheck.reference import merged_embeddings, reference_logits


def _unpruned_reference_and_model(vlm) -> tuple[torch.Tensor, torch.Tensor]:
    inputs = image_prompt(vlm, n_images=1)
    embeds = merged_embeddings(vlm.model, **inputs)
    with torch.no_grad():
        expected = vlm.model(**inputs, use_cache=False).logits
    return reference_logits(vlm.model, embeds, torch.arange(embeds.shape[1]), 2), expected


def test_aya_vision_logit_scale_is_the_models_own():
    """Aya Vision multiplies logits by text_config.logit_scale from transformers 5.25 (not before): with
    nothing pruned, the reference equals the model's logits whichever the release does."""
    vlm = tiny_cohere_vlm(variant="aya_vision")
    vlm.model.config.text_config.logit_scale = 0.25
    reference, model = _unpruned_reference_and_model(vlm)
    assert (reference - model).abs().max() < 1e-5


def test_a_changed_output_layer_moves_the_reference_with_it(monkeypatch):
    """An outer forward that rescales its logits (as a future release might) is followed, not re-implemented."""
    vlm = tiny_cohere_vlm(variant="aya_vision")
    before, _ = _unpruned_reference_and_model(vlm)
    forward = type(vlm.model).forward

    def rescaled(self, *args, **kwargs):
        out = forward(self, *args, **kwargs)
        out.logits = out.logits * 3 + 1
        return out

    monkeypatch.setattr(type(vlm.model), "forward", rescaled)
    after, model = _unpruned_reference_and_model(vlm)
    assert (after - model).abs().max() < 1e-5
    assert (after - (before * 3 + 1)).abs().max() < 1e-4
