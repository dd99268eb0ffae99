"""Ways people use a patched model that must stay correct: beam search, pipelines, half precision,
recovery after errors, reuse with changing batches, two patched models, save_pretrained."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, pipeline

import fastv
from fastv import FastVConfig, FastVError
from fastv.compat import output_cache, with_cache
from fastv.families.llava.selfcheck import tiny_llava
from fastv.selfcheck import check_family
from fastv.selfcheck.checks import generate
from fastv.selfcheck.prompts import copied_prompt_images, image_batch, image_prompt
from tests.tiny_processor import tiny_llava_processor, write_image


def _batch(vlm, seeds=(1, 2, 3), befores=(2, 6, 4)) -> tuple[list[dict], dict]:
    singles = [image_prompt(vlm, 1, seed, before) for seed, before in zip(seeds, befores, strict=True)]
    return singles, image_batch(singles)


def _teacher_forced_log_probs(model, inputs: dict, tokens: torch.Tensor) -> torch.Tensor:
    """Log-probabilities of ``tokens`` under pruned prefill + cached decoding, fed one at a time."""
    with torch.no_grad():
        out = model(**inputs, use_cache=True)
        cache, logits, scores = output_cache(out), out.logits[:, -1], []
        mask = inputs["attention_mask"]
        for token in tokens:
            scores.append(logits.log_softmax(-1)[0, token])
            mask = torch.cat([mask, mask.new_ones(1, 1)], dim=1)
            step = model(**with_cache(cache, input_ids=token.view(1, 1), attention_mask=mask, use_cache=True))
            logits = step.logits[:, -1]
    return torch.stack(scores)


@pytest.mark.parametrize("beams", [2, 3])
def test_beam_search_scores_equal_teacher_forced_pruned_decoding(llava, beams):
    """Beam search reorders the pruned KV cache between beams; every returned beam's step scores must be those
    of a plain pruned run of that beam's tokens."""
    model, inputs = llava.model, image_prompt(llava, copied_prompt_images())
    fastv.apply(model, FastVConfig(k=2, ratio=0.5))
    out = generate(model, inputs, 4, num_beams=beams, num_return_sequences=beams, output_scores=True)
    transitions = model.compute_transition_scores(out.sequences, out.scores, out.beam_indices, normalize_logits=False)
    n = inputs["input_ids"].shape[1]
    for row in range(beams):
        expected = _teacher_forced_log_probs(model, inputs, out.sequences[row, n:])
        assert torch.allclose(transitions[row], expected, atol=1e-4), row


def test_batched_beam_search_equals_each_sample_alone(llava):
    model = llava.model
    singles, batch = _batch(llava)
    fastv.apply(model, FastVConfig(k=2, ratio=0.5))
    width = batch["input_ids"].shape[1]
    together = generate(model, batch, 4, num_beams=3).sequences[:, width:]
    for row, single in enumerate(singles):
        n = single["input_ids"].shape[1]
        assert torch.equal(together[row], generate(model, single, 4, num_beams=3).sequences[0, n:])


def test_pipeline_raw_and_chat_prompts_batched_equal_direct_generate(tmp_path):
    vlm = tiny_llava()
    processor = tiny_llava_processor(vlm)
    processor.chat_template = (
        "{% for m in messages %}{% for c in m['content'] %}{% if c['type'] == 'image' %}<image> "
        "{% else %}{{ c['text'] }} {% endif %}{% endfor %}{% endfor %}:"
    )
    images = [str(write_image(tmp_path / f"{i}.png", seed=i)) for i in range(2)]
    prompts = ["<image> what color is this ?", "what shape is <image> the a ?"]
    fastv.apply(vlm.model, FastVConfig(k=2, ratio=0.5))
    pipe = pipeline("image-text-to-text", model=vlm.model, processor=processor)
    options = {"max_new_tokens": 4, "min_new_tokens": 4, "do_sample": False}
    raw = pipe(images=images, text=prompts, batch_size=2, return_full_text=False, generate_kwargs=options)
    chats = [
        [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": "what is this ?"}]}]
        for image in images
    ]
    chat = pipe(text=chats, batch_size=2, return_full_text=False, generate_kwargs=options)
    for got, image, prompt in zip(raw, images, prompts, strict=True):
        direct = processor(images=Image.open(image), text=prompt, return_tensors="pt")
        tokens = vlm.model.generate(**direct, **options)[0, direct["input_ids"].shape[1] :]
        assert _text(got) == processor.decode(tokens, skip_special_tokens=True)
    for got, image, messages in zip(chat, images, chats, strict=True):
        text = processor.apply_chat_template(messages, add_generation_prompt=True)
        direct = processor(images=Image.open(image), text=text, return_tensors="pt")
        tokens = vlm.model.generate(**direct, **options)[0, direct["input_ids"].shape[1] :]
        assert _text(got) == processor.decode(tokens, skip_special_tokens=True)


def _text(result) -> str:
    return (result[0] if isinstance(result, list) else result)["generated_text"].strip()  # decode spacing differs


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("model_type", ["llava", "qwen2_vl", "gemma3"])
def test_half_precision_matches_the_reference(model_type, dtype):
    """Ratio 0 bit-identical, pruned prefill + cached decoding within half-precision rounding of the reference."""
    row = check_family(model_type, "sdpa", torch.device("cpu"), dtype)
    assert row.verdict == "ok", row.detail
    assert row.ratio_zero_identical and row.kept_matches and row.max_diff < row.tolerance


def test_recovery_after_a_fastv_error(llava):
    model, inputs = llava.model, image_prompt(llava)
    fastv.apply(model, FastVConfig(k=2, ratio=0.5))
    expected = generate(model, inputs, 4).sequences
    right_padded = {
        **inputs,
        "attention_mask": torch.cat([inputs["attention_mask"][:, 1:], torch.zeros(1, 1, dtype=torch.long)], 1),
    }
    with pytest.raises(FastVError, match="left padding"):
        model(**right_padded)
    with pytest.raises(FastVError, match="No image tokens"):
        model(input_ids=torch.tensor([[5, 6, 7]]))
    assert torch.equal(generate(model, inputs, 4).sequences, expected)


def test_reuse_with_changing_batch_sizes(llava):
    model = llava.model
    singles, _ = _batch(llava)
    fastv.apply(model, FastVConfig(k=2, ratio=0.5))
    alone = []
    for single in singles:
        alone.append(generate(model, single, 3).sequences[0, single["input_ids"].shape[1] :])
    for rows in ([0, 1, 2], [2], [1, 0], [0, 1, 2, 2]):
        batch = image_batch([singles[r] for r in rows])
        out = generate(model, batch, 3).sequences[:, batch["input_ids"].shape[1] :]
        for position, r in enumerate(rows):
            assert torch.equal(out[position], alone[r]), (rows, r)


def test_two_patched_models_interleaved():
    first, second = tiny_llava(seed=1), tiny_llava(seed=2)
    inputs = [image_prompt(first), image_prompt(second, seed=3)]
    fastv.apply(first.model, FastVConfig(k=2, ratio=0.5))
    fastv.apply(second.model, FastVConfig(k=1, ratio=0.75, rank="mean"))
    expected = [generate(first.model, inputs[0], 4).sequences, generate(second.model, inputs[1], 4).sequences]
    for _ in range(2):
        a = generate(first.model, inputs[0], 4).sequences
        b = generate(second.model, inputs[1], 4).sequences
        assert torch.equal(a, expected[0]) and torch.equal(b, expected[1])
    assert fastv.get_config(first.model).k == 2 and fastv.get_config(second.model).k == 1


def test_save_pretrained_of_a_patched_model_saves_the_plain_model(llava, tmp_path):
    model, inputs = llava.model, image_prompt(llava)
    with torch.no_grad():
        unpatched = model(**inputs).logits
    fastv.apply(model, FastVConfig(k=2, ratio=0.5))
    with torch.no_grad():
        pruned = model(**inputs).logits
    model.save_pretrained(tmp_path)
    loaded = AutoModelForImageTextToText.from_pretrained(
        tmp_path, attn_implementation=model.config._attn_implementation
    ).eval()
    assert not fastv.is_applied(loaded)
    with torch.no_grad():
        assert torch.equal(loaded(**inputs).logits, unpatched)
        assert torch.equal(model(**inputs).logits, pruned)  # the patched model is unchanged by saving
