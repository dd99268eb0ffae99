"""The built-in model: a small LLaVA trained here on easy-VQA, shipped with the package.

It gives every example, test and benchmark a real trained VLM (whose attention has learned where
the shape is) without hub access. ``python -m fastv.builtin.train`` rebuilds it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

BUILTIN_MODEL_DIR: Path = Path(__file__).resolve().parent.parent / "assets" / "easyvqa-llava"


def load_builtin(
    device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, attn_implementation: str = "sdpa"
) -> tuple[Any, Any]:
    """``(model, processor)`` of the built-in model, loaded offline with ``from_pretrained``."""
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    if not (BUILTIN_MODEL_DIR / "config.json").is_file():
        raise FileNotFoundError(
            f"The built-in model is missing from {BUILTIN_MODEL_DIR}; rebuild it with "
            f"`python -m fastv.builtin.train --out {BUILTIN_MODEL_DIR}`."
        )
    model = LlavaForConditionalGeneration.from_pretrained(
        BUILTIN_MODEL_DIR, dtype=dtype, attn_implementation=attn_implementation
    )
    processor = AutoProcessor.from_pretrained(BUILTIN_MODEL_DIR)
    processor.tokenizer.padding_side = "left"
    return model.to(device).eval(), processor


__all__ = ["BUILTIN_MODEL_DIR", "load_builtin"]
