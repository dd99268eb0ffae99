"""The training script end to end on a tiny preset: saved dir loads offline and answers as text."""

from __future__ import annotations

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoProcessor, LlavaForConditionalGeneration

from fastv.builtin.model import PRESETS
from fastv.builtin.text import build_prompt
from fastv.builtin.train import encode, main
from fastv.eval.datasets import load_easyvqa

pytest.importorskip("easy_vqa")

ARGS = ["--steps", "4", "--vision-steps", "3", "--preset", "tiny", "--train-n", "128", "--check-n", "16", "--check-every", "2",
        "--eval-n", "16", "--batch-size", "8", "--log-every", "2", "--threads", "1"]  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny-run")
    assert main(["--out", str(out), "--seed", "0", *ARGS]) == 0
    return out


def test_saved_dir_loads_and_generates_text(trained):
    model = LlavaForConditionalGeneration.from_pretrained(trained).eval()
    processor = AutoProcessor.from_pretrained(trained)
    assert model.dtype == torch.float32
    assert processor.tokenizer.padding_side == "left"
    samples = load_easyvqa("test", n=3, seed=0)
    inputs = processor(
        images=[s.load_image() for s in samples],
        text=[build_prompt(s.question) for s in samples],
        return_tensors="pt",
        padding=True,
    )
    assert (inputs["input_ids"] == model.config.image_token_id).sum(1).tolist() == [PRESETS["tiny"].n_image_tokens] * 3
    out = model.generate(**inputs, max_new_tokens=3, do_sample=False)
    new_tokens = out[:, inputs["input_ids"].shape[1] :]
    assert new_tokens.shape[1] >= 1 and int(new_tokens.max()) < len(processor.tokenizer)
    # A 4-step model may answer only "</s>": check decoding round-trips, not answer quality.
    texts = processor.tokenizer.batch_decode(new_tokens, skip_special_tokens=False)
    assert len(texts) == 3 and all(t.strip() for t in texts)


def test_run_metadata_and_card(trained):
    meta = json.loads((trained / "training_run.json").read_text())
    assert meta["test"]["n"] == 16
    assert 0.0 <= meta["test"]["accuracy"] <= 1.0
    card = (trained / "README.md").read_text()
    assert "license: mit" in card
    assert "python -m fastv.builtin.train" in card and "--preset tiny" in card
    assert f"{100 * meta['test']['accuracy']:.2f}%" in card


def test_training_inputs_equal_processor_inputs(trained):
    """The script tokenises with the processor's own pieces; a generate-time prompt must match exactly."""
    processor = AutoProcessor.from_pretrained(trained)
    sample = load_easyvqa("train", n=1, seed=5)[0]
    data = encode([sample], processor, PRESETS["tiny"])
    inputs = processor(images=[sample.load_image()], text=[build_prompt(sample.question)], return_tensors="pt")
    tok = processor.tokenizer
    answer_and_eos = [tok.convert_tokens_to_ids(sample.answers[0]), tok.eos_token_id]
    assert data.ids[0].tolist() == inputs["input_ids"][0].tolist() + answer_and_eos
    assert torch.equal(data.pixels[0], inputs["pixel_values"][0])


def test_same_seed_same_weights(trained, tmp_path):
    main(["--out", str(tmp_path / "again"), "--seed", "0", *ARGS])
    main(["--out", str(tmp_path / "other"), "--seed", "1", *ARGS])
    first = load_file(trained / "model.safetensors")
    again = load_file(tmp_path / "again" / "model.safetensors")
    other = load_file(tmp_path / "other" / "model.safetensors")
    assert first.keys() == again.keys()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)
