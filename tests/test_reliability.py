"""What an adversarial run found (labels, random ranker per sample, torch.compile, interrupted calls,
pickling), each against an independent reference or the unpatched model."""

from __future__ import annotations

import copy
import io
import pickle

import pytest
import torch
import torch.nn.functional as F

import fastv
from fastv import FastVConfig, FastVError
from fastv.compat import output_cache, with_cache
from fastv.families.llava.selfcheck import tiny_llava
from fastv.families.qwen_vl.selfcheck import qwen_prompt, tiny_qwen2_vl
from fastv.selfcheck.checks import generate
from fastv.selfcheck.prompts import copied_prompt_images, grid_batch, image_batch, image_prompt
from fastv.selfcheck.reference import language_model, merged_embeddings, reference_logits
from fastv.selfcheck.tiny import IMAGE_TOKEN
from tests.families.equivalence import assert_batch_equals_rows_alone


def _labels(inputs: dict) -> torch.Tensor:
    ids = inputs["input_ids"]
    return ids.masked_fill(ids == IMAGE_TOKEN, -100)  # as processors do: no loss on image placeholders


def _batch(vlm, seeds=(1, 2), befores=(2, 6)) -> tuple[list[dict], dict]:
    singles = [image_prompt(vlm, 1, seed, before) for seed, before in zip(seeds, befores, strict=True)]
    return singles, image_batch(singles)


def test_labels_at_ratio_zero_give_the_models_own_loss(llava):
    inputs = image_prompt(llava)
    with torch.no_grad():
        expected = llava.model(**inputs, labels=_labels(inputs)).loss
    fastv.apply(llava.model, FastVConfig(k=2, ratio=0.0))
    with torch.no_grad():
        got = llava.model(**inputs, labels=_labels(inputs)).loss
    assert torch.equal(got, expected)


def test_labels_give_the_loss_over_kept_positions_predicting_the_original_next_token(llava):
    """Reference: cache-free pruned logits at the kept positions, each scored on the token that follows it
    in the full prompt."""
    model, inputs = llava.model, image_prompt(llava)
    labels = _labels(inputs)
    embeds = merged_embeddings(model, **inputs)
    fastv.apply(model, FastVConfig(k=2, ratio=0.5))
    with torch.no_grad():
        out = model(**inputs, labels=labels)
    kept = fastv.last_keep(model)[0]
    fastv.remove(model)
    assert out.logits.shape[1] == kept.numel() < inputs["input_ids"].shape[1]
    next_tokens = F.pad(labels[0, 1:], (0, 1), value=-100)[kept]
    expected = F.cross_entropy(reference_logits(model, embeds, kept, 2)[0], next_tokens, ignore_index=-100)
    assert abs(float(out.loss) - float(expected)) < 1e-5


def test_labels_in_a_padded_batch_ignore_the_padding(llava):
    model = llava.model
    singles, batch = _batch(llava)
    labels = _labels(batch).masked_fill(batch["attention_mask"] == 0, -100)
    fastv.apply(model, FastVConfig(k=2, ratio=0.5))
    with torch.no_grad():
        loss = model(**batch, labels=labels).loss
        per_sample = []
        for single in singles:
            out = model(**single, labels=_labels(single))
            n_scored = int((F.pad(_labels(single)[0, 1:], (0, 1), value=-100)[fastv.last_keep(model)[0]] != -100).sum())
            per_sample.append((float(out.loss) * n_scored, n_scored))
    expected = sum(total for total, _ in per_sample) / sum(count for _, count in per_sample)
    assert abs(float(loss) - expected) < 1e-5


def test_labels_errors(llava):
    inputs = image_prompt(llava)
    fastv.apply(llava.model, FastVConfig(k=2, ratio=0.5))
    with pytest.raises(FastVError, match="do not pass logits_to_keep together with labels"):
        llava.model(**inputs, labels=_labels(inputs), logits_to_keep=1)


# --- the random ranker is a function of (seed, the sample's own tokens) -------------------------------


def test_random_rank_in_a_padded_batch_keeps_what_each_sample_keeps_alone(llava):
    model = llava.model
    singles, batch = _batch(llava)
    fastv.apply(model, FastVConfig(k=2, ratio=0.5, rank="random", seed=3))
    alone = []
    for single in singles:
        with torch.no_grad():
            model(**single)
        alone.append(fastv.last_keep(model)[0])
    with torch.no_grad():
        model(**batch)
    for got, want in zip(fastv.last_keep(model), alone, strict=True):
        assert torch.equal(got, want)
    duplicated = {key: torch.cat([value, value]) for key, value in singles[0].items()}
    with torch.no_grad():
        model(**duplicated)
    first, second = fastv.last_keep(model)
    assert torch.equal(first, second) and torch.equal(first, alone[0])


def test_random_rank_copies_from_num_return_sequences_keep_one_set(llava):
    """The copies sampling makes of one prompt keep the same tokens as the prompt alone, and score the first
    step as a pruned prefill of the prompt alone does."""
    model, inputs = llava.model, image_prompt(llava, copied_prompt_images())
    fastv.apply(model, FastVConfig(k=2, ratio=0.5, rank="random"))
    with torch.no_grad():
        alone = model(**inputs).logits[0, -1]
    kept_alone = fastv.last_keep(model)[0]
    torch.manual_seed(0)
    out = generate(model, inputs, 3, do_sample=True, num_return_sequences=2)
    for kept, first_step in zip(fastv.last_keep(model), out.logits[0], strict=True):
        assert torch.equal(kept, kept_alone)
        assert torch.allclose(first_step, alone, atol=1e-5)


# --- torch.compile ---------------------------------------------------------------------------------


def test_apply_after_compiling_raises():
    """One backend suffices: the guard reads the compiled graphs, not the attention."""
    vlm = tiny_llava()
    compiled = torch.compile(vlm.model, backend="eager")
    with torch.no_grad():
        compiled(**image_prompt(vlm))
    try:
        with pytest.raises(
            FastVError, match=r"already been compiled with torch.compile.*Apply FastV first, then compile"
        ):
            fastv.apply(vlm.model, FastVConfig())
        with pytest.raises(FastVError, match=r"got a torch\.compile wrapper of LlavaForConditionalGeneration"):
            fastv.apply(compiled, FastVConfig())
    finally:
        torch._dynamo.reset()


def test_apply_after_in_place_compile_raises():
    vlm = tiny_llava()
    vlm.model.compile(backend="eager")
    with pytest.raises(FastVError, match="already been compiled"):
        fastv.apply(vlm.model, FastVConfig())


@pytest.mark.slow
def test_compiling_a_patched_model_prunes_exactly():
    torch._dynamo.reset()
    vlm = tiny_llava()
    model, inputs = vlm.model, image_prompt(vlm)
    fastv.apply(model, FastVConfig(k=2, ratio=0.5))
    with torch.no_grad():
        expected = model(**inputs).logits
    expected_tokens = generate(model, inputs, 3).sequences
    try:
        compiled = torch.compile(model, backend="eager")
        with torch.no_grad():
            got = compiled(**inputs).logits
        assert got.shape == expected.shape and torch.equal(got, expected)
        model.compile(backend="eager")
        assert torch.equal(generate(model, inputs, 3).sequences, expected_tokens)
    finally:
        torch._dynamo.reset()


def _compile_in_place(module) -> None:
    module.compile(backend="eager")


def _compile_forward(module) -> None:
    module.forward = torch.compile(module.forward, backend="eager")


def _lm(model):
    return model.model.language_model


# Each form of compiling, before apply, a module FastV hooks or whose forward runs a hooked module (k=2).
COMPILED_PARTS = {
    "decoder.compile()": lambda model, _: _compile_in_place(_lm(model)),
    "pruned layer.compile()": lambda model, _: _compile_in_place(_lm(model).layers[2]),
    "ranking layer.compile()": lambda model, _: _compile_in_place(_lm(model).layers[1]),
    "ranking attention.compile()": lambda model, _: _compile_in_place(_lm(model).layers[1].self_attn),
    "decoder = torch.compile(decoder)": lambda model, _: setattr(
        model.model, "language_model", torch.compile(_lm(model), backend="eager")
    ),
    "layers[3] = torch.compile(layer)": lambda model, _: _lm(model).layers.__setitem__(
        3, torch.compile(_lm(model).layers[3], backend="eager")
    ),
    "decoder.forward = torch.compile(...)": lambda model, _: _compile_forward(_lm(model)),
    "model.forward = torch.compile(...)": lambda model, _: _compile_forward(model),
    "DecoderLayer.forward = torch.compile(...)": lambda model, monkeypatch: monkeypatch.setattr(
        type(_lm(model).layers[0]), "forward", torch.compile(type(_lm(model).layers[0]).forward, backend="eager")
    ),
}


@pytest.mark.parametrize("form", sorted(COMPILED_PARTS))
def test_apply_after_compiling_a_hooked_submodule_raises(form, monkeypatch):
    """Compiled before apply, the decoder (or a layer FastV hooks) ran unpruned: bit-identical to the unpatched
    model, and last_keep said no prefill had run. Each form is refused, with the fix."""
    vlm = tiny_llava()
    COMPILED_PARTS[form](vlm.model, monkeypatch)
    with pytest.raises(FastVError, match=r"is already compiled .*silently not prune.*Apply FastV first, then compile"):
        fastv.apply(vlm.model, FastVConfig(k=2, ratio=0.5))
    assert not fastv.is_applied(vlm.model)


@pytest.mark.slow
@pytest.mark.parametrize("part", ["vision_tower", "decoder_layer_0"])
def test_compiling_a_part_fastv_does_not_hook_is_accepted_and_prunes(part):
    """The vision tower and the layers before the ranking layer run no hook: compiled, FastV prunes exactly."""
    torch._dynamo.reset()
    vlm = tiny_llava()
    model, inputs = vlm.model, image_prompt(vlm)
    config = FastVConfig(k=2, ratio=0.5)
    expected, kept = _pruned_logits(model, inputs, config)
    module = model.model.vision_tower if part == "vision_tower" else _lm(model).layers[0]
    try:
        module.compile(backend="eager")
        got, got_kept = _pruned_logits(model, inputs, config)
        assert torch.equal(got_kept, kept) and torch.allclose(got, expected, atol=1e-5, rtol=0)
    finally:
        torch._dynamo.reset()


@pytest.mark.slow
def test_compiling_the_decoder_after_apply_prunes_exactly():
    torch._dynamo.reset()
    vlm = tiny_llava()
    model, inputs = vlm.model, image_prompt(vlm)
    config = FastVConfig(k=2, ratio=0.5)
    expected, kept = _pruned_logits(model, inputs, config)
    fastv.apply(model, config)
    try:
        _lm(model).compile(backend="eager")
        with torch.no_grad():
            got = model(**inputs).logits
        assert torch.equal(fastv.last_keep(model)[0], kept) and torch.allclose(got, expected, atol=1e-5, rtol=0)
    finally:
        fastv.remove(model)
        torch._dynamo.reset()


def _pruned_logits(model, inputs: dict, config: FastVConfig) -> tuple[torch.Tensor, torch.Tensor]:
    fastv.apply(model, config)
    try:
        with torch.no_grad():
            return model(**inputs).logits, fastv.last_keep(model)[0]
    finally:
        fastv.remove(model)


# --- state never leaks from one call into another ---------------------------------------------------


@pytest.mark.parametrize("interruption", [RuntimeError, KeyboardInterrupt])
def test_an_interrupted_call_leaks_no_state(llava, interruption):
    model, inputs = llava.model, image_prompt(llava)
    fastv.apply(model, FastVConfig(k=2, ratio=0.5))
    with torch.no_grad():
        expected = model(**inputs).logits
    layer = language_model(model).layers[3]

    def interrupt(*_):
        raise interruption("stop")

    handle = layer.register_forward_pre_hook(interrupt)
    with pytest.raises(interruption), torch.no_grad():
        model(**inputs)
    handle.remove()
    embeds = torch.randn(1, 76, 64)
    with pytest.raises(FastVError, match="called on its own: FastV reads input_ids where the whole model is called"):
        language_model(model)(inputs_embeds=embeds)
    with torch.no_grad():
        assert torch.equal(model(**inputs).logits, expected)  # and the next real call is exact


# --- pickling, copies --------------------------------------------------------------------------------


def test_a_patched_model_pickles_and_loads_patched(llava):
    model, inputs = llava.model, image_prompt(llava)
    fastv.apply(model, FastVConfig(k=2, ratio=0.5))
    pickled, saved = pickle.dumps(model), io.BytesIO()
    torch.save(model, saved)
    duplicate = copy.deepcopy(model)
    with torch.no_grad():
        expected = model(**inputs).logits
    saved.seek(0)
    for loaded in (pickle.loads(pickled), torch.load(saved, weights_only=False), duplicate):
        assert fastv.is_applied(loaded) and fastv.get_config(loaded) == fastv.get_config(model)
        with torch.no_grad():
            assert torch.equal(loaded(**inputs).logits, expected)
        fastv.remove(loaded)
        with torch.no_grad():
            assert loaded(**inputs).logits.shape[1] == inputs["input_ids"].shape[1]


# --- positional arguments on an M-RoPE family --------------------------------------------------------


def test_positional_attention_mask_qwen2_vl():
    vlm = tiny_qwen2_vl()
    singles = [qwen_prompt(vlm, video_grid=None, seed=0, before=2), qwen_prompt(vlm, video_grid=None, seed=1, before=5)]
    batch = grid_batch(singles)
    ids, mask = batch.pop("input_ids"), batch.pop("attention_mask")
    fastv.apply(vlm.model, FastVConfig(k=2, ratio=0.5))
    with torch.no_grad():
        by_keyword = vlm.model(input_ids=ids, attention_mask=mask, **batch).logits
        positional = vlm.model(ids, mask, **batch).logits
    assert torch.equal(by_keyword, positional)


# --- a family adapter that gets the keys wrong is refused, not trusted ------------------------------


def test_an_adapter_with_wrong_keys_is_refused_at_the_first_prefill(llava, monkeypatch):
    model, inputs = llava.model, image_prompt(llava)
    fastv.apply(model, FastVConfig(k=2, ratio=0.5))
    family = model._fastv_patch.family

    def keys_without_rotary(attention, hidden, position_embeddings):  # e.g. an adapter that forgot RoPE
        cos, sin = position_embeddings
        return type(family).keys(family, attention, hidden, (torch.ones_like(cos), torch.zeros_like(sin)))

    monkeypatch.setattr(family, "keys", keys_without_rotary)
    expected = r"adapter rebuilds layer 1's keys differently .* LlamaAttention cached"
    with pytest.raises(FastVError, match=expected), torch.no_grad():
        model(**inputs)


def test_the_adapter_check_runs_once_per_patch(llava, monkeypatch):
    model, inputs = llava.model, image_prompt(llava)
    fastv.apply(model, FastVConfig(k=2, ratio=0.5))
    family, calls = model._fastv_patch.family, []
    original = family.keys
    monkeypatch.setattr(family, "keys", lambda *args: calls.append(1) or original(*args))
    for _ in range(3):
        generate(model, inputs, 2)
    assert len(calls) == 1


# --- "pruned or not" comes from the call's state, never from sequence widths ----------------------------


def _full_width_batch(vlm) -> tuple[list[dict], dict, FastVConfig]:
    """Two images in a short row, one in the longest: keep=one image's tokens prunes only the short row, so
    the re-packed pruned batch is exactly as wide as the full one."""
    singles = [image_prompt(vlm, 2, 1, 2), image_prompt(vlm, 1, 2, 2 + vlm.image_tokens + 3)]
    return singles, image_batch(singles), FastVConfig(k=2, keep=vlm.image_tokens)


def test_a_full_width_pruned_cache_is_refused_after_another_patch(llava):
    """A cache pruned by an earlier patch holds as many tokens in its pruned layers as a full one when its
    longest row dropped nothing; continuing it without its plan would attend to the wrong slots."""
    model = llava.model
    singles, batch, config = _full_width_batch(llava)
    fastv.apply(model, config)
    try:
        with torch.no_grad():
            cache = output_cache(model(**batch, use_cache=True))
        width = batch["input_ids"].shape[1]
        assert cache.layers[config.k].get_seq_length() == cache.layers[0].get_seq_length() == width
        short = singles[0]["input_ids"].shape[1]
        assert [int(kept.numel()) for kept in fastv.last_keep(model)] == [short - llava.image_tokens, width]
        fastv.remove(model)
        fastv.apply(model, config)  # a new patch did not record this cache
        step = {
            "input_ids": torch.tensor([[5], [6]]),
            "attention_mask": F.pad(batch["attention_mask"], (0, 1), value=1),
        }
        with pytest.raises(FastVError, match="pruned by another FastV prefill"), torch.no_grad():
            model(**with_cache(cache, **step))
    finally:
        fastv.remove(model)


def test_a_full_width_batch_decodes_as_each_sample_alone(llava):
    singles, batch, config = _full_width_batch(llava)
    assert_batch_equals_rows_alone(llava.model, singles, batch, config)
