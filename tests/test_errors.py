"""Every input FastV cannot handle correctly raises an error naming the cause and the fix."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaForCausalLM, StaticCache

import fastv
from fastv import FastVConfig, FastVError, UnsupportedModelError
from fastv.compat import output_cache, with_cache
from fastv.selfcheck.tiny import IMAGE_TOKEN, prompt_ids, text_config


def _inputs(vlm, pad_right: bool = False) -> dict:
    ids = prompt_ids(3, [vlm.image_tokens], 4)[None]
    mask = torch.ones_like(ids)
    if pad_right:
        ids = torch.cat([ids, torch.zeros(1, 2, dtype=torch.long)], dim=1)
        mask = torch.cat([mask, torch.zeros(1, 2, dtype=torch.long)], dim=1)
    return {"input_ids": ids, "attention_mask": mask, "pixel_values": vlm.pixel_values(1)}


@pytest.fixture
def patched(llava):
    fastv.apply(llava.model, FastVConfig(k=2, ratio=0.5))
    return llava


def test_unsupported_model_lists_supported_families():
    model = LlamaForCausalLM(text_config())
    with pytest.raises(UnsupportedModelError, match=r"model_type='llama'.*Supported model types: .*llava, llava_next"):
        fastv.apply(model, FastVConfig())


@pytest.mark.parametrize("k", [4, 9])
def test_k_at_or_beyond_the_layer_count(llava, k):
    with pytest.raises(FastVError, match=rf"k={k} is out of range for a decoder of 4 layers: k must be in \[1, 3\]"):
        fastv.apply(llava.model, FastVConfig(k=k))
    assert not fastv.is_applied(llava.model)


def test_apply_twice_is_an_error_that_says_to_remove_first(patched):
    with pytest.raises(FastVError, match=r"already applied .*FastV\(k=2, ratio=0.5.*Call fastv.remove\(model\)"):
        fastv.apply(patched.model, FastVConfig(k=1))
    assert fastv.get_config(patched.model) == FastVConfig(k=2, ratio=0.5)


def test_remove_and_last_keep_on_an_unpatched_model(llava):
    with pytest.raises(FastVError, match="not applied"):
        fastv.remove(llava.model)
    with pytest.raises(FastVError, match=r"call fastv.apply\(model, config\) first"):
        fastv.last_keep(llava.model)


def test_last_keep_before_any_prefill(patched):
    with pytest.raises(FastVError, match="No prefill has run"):
        fastv.last_keep(patched.model)


def test_right_padding(patched):
    with pytest.raises(FastVError, match=r"needs left padding.*padding_side = 'left'"):
        patched.model(**_inputs(patched, pad_right=True))


def test_no_image_tokens(patched):
    ids = prompt_ids(5, [], 5)[None]
    with pytest.raises(FastVError, match=r"No image tokens found in input_ids \(looked for token ids \[120\]\)"):
        patched.model(input_ids=ids, attention_mask=torch.ones_like(ids))


def test_inputs_embeds_without_input_ids(patched):
    embeds = torch.randn(1, 6, 64)
    with pytest.raises(FastVError, match="needs `input_ids` at prefill"):
        patched.model(inputs_embeds=embeds)


def test_static_cache(patched):
    with pytest.raises(FastVError, match=r"cannot prune into a StaticCache.*cache_implementation='static'"):
        patched.model.generate(**_inputs(patched), max_new_tokens=2, cache_implementation="static")
    cache = StaticCache(config=patched.model.config, max_cache_len=64)
    with pytest.raises(FastVError, match="StaticCache"):
        patched.model(**with_cache(cache, **_inputs(patched)))


def test_second_prefill_onto_a_pruned_cache(patched):
    inputs = _inputs(patched)
    cache = output_cache(patched.model(**inputs, use_cache=True))
    more = torch.tensor([[5, 6, 7]])
    with pytest.raises(FastVError, match=r"3 new tokens onto a KV cache already holding .*chunked prefill"):
        patched.model(**with_cache(cache, input_ids=more))


def test_continuing_a_pruned_cache_after_remove(patched):
    inputs = _inputs(patched)
    model = patched.model
    cache = output_cache(model(**inputs, use_cache=True))
    fastv.remove(model)
    fastv.apply(model, FastVConfig(k=2, ratio=0.25))  # a new patch did not record this cache
    with pytest.raises(FastVError, match="pruned by another FastV prefill"):
        model(**with_cache(cache, input_ids=torch.tensor([[5]])))


def test_only_image_token_in_the_last_position_says_the_last_token_is_never_dropped(patched):
    ids = torch.cat([prompt_ids(5, [], 0), torch.tensor([IMAGE_TOKEN])])[None]
    with pytest.raises(FastVError, match=r"only image tokens .* are in the last position.*never drops the last token"):
        patched.model(input_ids=ids, attention_mask=torch.ones_like(ids))


def test_no_image_tokens_in_a_batch_where_one_row_ends_with_one(patched):
    ids = torch.stack([torch.cat([prompt_ids(5, [], 0), torch.tensor([IMAGE_TOKEN])]), prompt_ids(6, [], 0)])
    with pytest.raises(FastVError, match=r"only image tokens .* are in the last position"):
        patched.model(input_ids=ids, attention_mask=torch.ones_like(ids))


_FIX = r"Call the LlavaForConditionalGeneration itself, model\(\*\*inputs\) or model.generate\(\*\*inputs\)"


def test_calling_forward_directly_says_forward_skips_the_hooks(patched):
    with pytest.raises(FastVError, match=r"LlavaForConditionalGeneration.forward\(...\) was called directly: that "
                       rf"skips the hooks FastV runs when the model is called .*{_FIX}"):  # fmt: skip
        patched.model.forward(**_inputs(patched))
    patched.model(**_inputs(patched))  # the call the message points to prunes: half of the 16 image tokens go
    assert fastv.last_keep(patched.model)[0].numel() == _inputs(patched)["input_ids"].shape[1] - 8


@pytest.mark.parametrize("part", ["language_model", "model"])
def test_calling_a_submodule_directly(patched, part):
    module = patched.model.model.language_model if part == "language_model" else patched.model.model
    inputs = {"inputs_embeds": torch.randn(1, 5, 64)} if part == "language_model" else _inputs(patched)
    with pytest.raises(
        FastVError, match=rf"A submodule of the LlavaForConditionalGeneration .* called on its own.*{_FIX}"
    ):
        module(**inputs)


@pytest.mark.parametrize("model_type", ["llama4", "mllama"])
def test_known_unsupported_families_say_why(model_type):
    from types import SimpleNamespace

    from torch import nn

    from fastv.families import UNSUPPORTED

    class Stub(nn.Module):
        config = SimpleNamespace(model_type=model_type)

    with pytest.raises(UnsupportedModelError, match=rf"model_type='{model_type}'\): .+Supported model types: .*gemma3"):
        fastv.apply(Stub(), FastVConfig())
    assert UNSUPPORTED[model_type]
