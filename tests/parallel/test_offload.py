"""Layers spread by a device map with accelerate's dispatch hooks (here: some layers and the head offloaded
to disk, loaded only while they run): FastV composes with those hooks in either order."""

from __future__ import annotations

import pytest
import torch
from accelerate import dispatch_model
from transformers import AutoModelForImageTextToText

import fastv
from fastv.families.llava.selfcheck import tiny_llava
from fastv.selfcheck.checks import generate
from fastv.selfcheck.prompts import image_prompt

# Layer 1 ranks (k=2) while its weights are on disk; layer 2 is pruned while on disk.
DEVICE_MAP = {
    "model.vision_tower": "cpu",
    "model.multi_modal_projector": "cpu",
    "model.language_model.embed_tokens": "cpu",
    "model.language_model.layers.0": "cpu",
    "model.language_model.layers.1": "disk",
    "model.language_model.layers.2": "disk",
    "model.language_model.layers.3": "cpu",
    "model.language_model.norm": "cpu",
    "model.language_model.rotary_emb": "cpu",
    "lm_head": "disk",
}


@pytest.fixture(scope="module")
def expected(tmp_path_factory):
    vlm = tiny_llava()
    inputs = image_prompt(vlm)
    fastv.apply(vlm.model, fastv.FastVConfig(k=2, ratio=0.5))
    with torch.no_grad():
        logits = vlm.model(**inputs).logits
    tokens = generate(vlm.model, inputs, 6).sequences
    fastv.remove(vlm.model)
    path = tmp_path_factory.mktemp("offload") / "llava"
    vlm.model.save_pretrained(path)
    return path, inputs, logits, tokens


def _check(model, inputs, logits, tokens) -> None:
    assert getattr(model.model.language_model.layers[1], "_hf_hook", None) is not None  # accelerate dispatched it
    with torch.no_grad():
        assert torch.equal(model(**inputs).logits, logits)
    assert torch.equal(generate(model, inputs, 6).sequences, tokens)


def test_apply_after_dispatch(expected, tmp_path):
    path, inputs, logits, tokens = expected
    model = AutoModelForImageTextToText.from_pretrained(
        path, device_map=DEVICE_MAP, offload_folder=tmp_path, attn_implementation="sdpa"
    ).eval()
    fastv.apply(model, fastv.FastVConfig(k=2, ratio=0.5))
    _check(model, inputs, logits, tokens)


def test_apply_before_dispatch(expected, tmp_path):
    path, inputs, logits, tokens = expected
    model = AutoModelForImageTextToText.from_pretrained(path, attn_implementation="sdpa").eval()
    fastv.apply(model, fastv.FastVConfig(k=2, ratio=0.5))
    model = dispatch_model(model, device_map=DEVICE_MAP, offload_dir=tmp_path)
    _check(model, inputs, logits, tokens)
