"""The shipped built-in model: loads offline, is the architecture the card promises, and still answers."""

from __future__ import annotations

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
from transformers import AutoProcessor, LlavaForConditionalGeneration

from fastv.builtin import BUILTIN_MODEL_DIR, load_builtin
from fastv.builtin.text import build_prompt
from fastv.eval.datasets import load_easyvqa
from fastv.eval.runner import evaluate_baseline

pytest.importorskip("easy_vqa")

N_SAMPLE = 1000
MARGIN = 0.03  # allowed drop from the model card's full-test-split accuracy


def card_accuracy() -> float:
    return json.loads((BUILTIN_MODEL_DIR / "training_run.json").read_text())["test"]["accuracy"]


def test_shipped_files_and_size():
    names = {p.name for p in BUILTIN_MODEL_DIR.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "processor_config.json", "README.md"} <= names
    weights = sum(p.stat().st_size for p in BUILTIN_MODEL_DIR.glob("*.safetensors"))
    assert weights <= 25 * 1024 * 1024
    card = (BUILTIN_MODEL_DIR / "README.md").read_text()
    assert f"{100 * card_accuracy():.2f}%" in card and "license: mit" in card


def test_architecture_is_llava_with_early_k():
    model = LlavaForConditionalGeneration.from_pretrained(BUILTIN_MODEL_DIR)
    processor = AutoProcessor.from_pretrained(BUILTIN_MODEL_DIR)
    assert model.dtype == torch.float32
    assert 8 <= model.config.text_config.num_hidden_layers <= 12
    assert model.config.vision_feature_select_strategy == "default"
    sample = load_easyvqa("test", n=1, seed=0)[0]
    inputs = processor(images=[sample.load_image()], text=[build_prompt(sample.question)], return_tensors="pt")
    n_image = int((inputs["input_ids"] == model.config.image_token_id).sum())
    assert n_image >= 64 and n_image == model.config.image_seq_length


def test_accuracy_matches_the_card():
    model, processor = load_builtin()
    result = evaluate_baseline(model, processor, load_easyvqa("test", n=N_SAMPLE, seed=0), progress=False)
    assert result["n"] == N_SAMPLE
    assert result["accuracy"] >= card_accuracy() - MARGIN, result["accuracy"]
