"""Loading a VLM and its processor the way users do (``from_pretrained``), plus prompt building."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def default_model_path() -> str:
    """The project's built-in trained model, shipped inside the package."""
    from fastv.builtin import BUILTIN_MODEL_DIR

    return str(BUILTIN_MODEL_DIR)


def _testbed_path() -> str:
    from fastv.testbed import assemble

    return str(assemble())


# Built-in models by name: each returns a local checkpoint folder (the testbed is assembled on first use).
BUILTIN_MODELS: dict[str, Callable[[], str]] = {"easyvqa-llava": default_model_path, "clevr-smollm2": _testbed_path}


def resolve_model(model: str | None) -> str:
    """A built-in model's folder for its name (None: the default one), else ``model`` unchanged."""
    if model is None:
        return default_model_path()
    return BUILTIN_MODELS[model]() if model in BUILTIN_MODELS else model


def load_model(
    model: str | None = None, device: str = "cpu", dtype: str = "float32", attn_implementation: str = "sdpa"
):
    """(model, processor) from a built-in name (see :data:`BUILTIN_MODELS`), a local directory or a hub id
    (a hub id needs network or a local HF cache)."""
    path = resolve_model(model)
    if dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r} is unknown; choose one of {', '.join(DTYPES)}.")
    loaded = AutoModelForImageTextToText.from_pretrained(
        path, dtype=DTYPES[dtype], attn_implementation=attn_implementation
    )
    processor = AutoProcessor.from_pretrained(path)
    tokenizer = getattr(processor, "tokenizer", processor)
    tokenizer.padding_side = "left"  # FastV ranks by the last prompt token: it must be real in every row
    return loaded.to(device).eval(), processor


def build_inputs(processor, images: list[Image.Image] | Image.Image, prompt: str, device: str = "cpu") -> dict:
    """Processor inputs for one prompt; image placeholders are added when the prompt has none."""
    images = [images] if isinstance(images, Image.Image) else list(images)
    image_token = getattr(processor, "image_token", "<image>")
    if getattr(processor, "chat_template", None) and image_token not in prompt:
        content = [{"type": "image"} for _ in images] + [{"type": "text", "text": prompt}]
        text = processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
    elif image_token not in prompt:
        text = " ".join([image_token] * len(images) + [prompt])
    else:
        text = prompt
    inputs = processor(images=images, text=text, return_tensors="pt")
    return {key: value.to(device) if hasattr(value, "to") else value for key, value in inputs.items()}


def open_image(path: str | Path) -> Image.Image:
    return Image.open(path).convert("RGB")
