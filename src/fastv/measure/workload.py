"""What a benchmark runs: a model plus a batch of prompts with a known layout.

Presets build a ``LlavaForConditionalGeneration`` with random weights: the decoder has the preset's
(optionally scaled) shape, and a tiny CLIP tower turns ``images`` pictures of ``side x side`` patches
into exactly the preset's number of image tokens, so the language model sees the real prompt length.
A local checkpoint (``--model PATH``) is loaded as is and fed synthetic prompts of the same layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from fastv.measure.presets import Layout, Preset, get_preset


@dataclass
class Workload:
    name: str
    model: Any
    inputs: dict[str, torch.Tensor]
    layout: Layout
    batch_size: int
    description: str

    @property
    def device(self) -> torch.device:
        return self.inputs["input_ids"].device


def default_dtype(device: str) -> torch.dtype:
    """fp32 on CPU (what CPU kernels are fast at), bf16 on CUDA (with SDPA)."""
    return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32


def _prompt_ids(
    layout: Layout, batch: int, image_token_id: int, vocab: int, seed: int, device: torch.device
) -> torch.Tensor:
    """Random text ids around a contiguous run of image placeholders (ids below the image id)."""
    generator = torch.Generator().manual_seed(seed)
    high = min(vocab, image_token_id) if image_token_id > 2 else vocab
    ids = torch.randint(3, max(4, high), (batch, layout.n), generator=generator)
    ids[:, layout.before : layout.before + layout.image] = image_token_id
    return ids.to(device)


def preset_workload(
    preset: Preset | str,
    *,
    scale: int = 4,
    layers: int | None = None,
    batch_size: int = 1,
    layout: Layout | None = None,
    device: str = "cpu",
    dtype: torch.dtype | None = None,
    seed: int = 0,
) -> Workload:
    """A random-weight model of the preset's (scaled) shape and a batch of identical-layout prompts.

    ``layout.image`` must be ``images * side**2`` for some number of images (the tiny tower's grid).
    """
    from transformers import LlavaForConditionalGeneration

    p = get_preset(preset) if isinstance(preset, str) else preset
    lay = layout or (p.chat_layout or p.layout)
    side = p.image_grid[1]
    if lay.image % (side * side):
        raise ValueError(f"{p.name}: image tokens ({lay.image}) must be a multiple of {side}x{side} per image.")
    n_images = lay.image // (side * side)
    config = p.to_config(scale=scale, layers=layers)
    config.text_config.max_position_embeddings = max(config.text_config.max_position_embeddings, lay.n + 1024)
    dtype = dtype or default_dtype(device)
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration._from_config(config, attn_implementation="sdpa", dtype=dtype)
    model = model.to(device).eval()
    dev = torch.device(device)
    ids = _prompt_ids(lay, batch_size, p.image_token_id, config.text_config.vocab_size, seed, dev)
    generator = torch.Generator().manual_seed(seed + 1)
    pixels = torch.randn(batch_size * n_images, 3, 2 * side, 2 * side, generator=generator)
    t = p.scaled_text(scale, layers)
    return Workload(
        name=p.name,
        model=model,
        inputs={"input_ids": ids, "pixel_values": pixels.to(dev, dtype)},
        layout=lay,
        batch_size=batch_size,
        description=f"{p.name} scale 1/{scale}: L={t.layers} d={t.hidden} m={t.ffn} heads={t.heads}/{t.kv_heads}, "
        f"random weights, tiny CLIP tower ({n_images} x {side}x{side} tokens), {str(dtype).removeprefix('torch.')}",
    )


def local_workload(
    path: str,
    *,
    batch_size: int = 1,
    before: int = 35,
    images: int = 1,
    after: int = 40,
    device: str = "cpu",
    dtype: torch.dtype | None = None,
    seed: int = 0,
) -> Workload:
    """A local LLaVA-style checkpoint with synthetic prompts: ``before`` text, ``images`` images, ``after`` text.

    Image token counts come from the config (``image_seq_length``); the image is random noise at the
    vision tower's resolution. Models whose token count depends on the image (LLaVA-NeXT anyres,
    Qwen2-VL) need a processor and are not built here.
    """
    from transformers import AutoConfig, AutoModelForImageTextToText

    config = AutoConfig.from_pretrained(path)
    vision = getattr(config, "vision_config", None)
    per_image = getattr(config, "image_seq_length", None)
    if config.model_type != "llava" or vision is None or per_image is None:
        raise ValueError(
            f"--model supports LLaVA-1.5-style checkpoints (model_type 'llava'); {path} is "
            f"{config.model_type!r}. Use a preset for other shapes."
        )
    dtype = dtype or default_dtype(device)
    model = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype, attn_implementation="sdpa")
    model = model.to(device).eval()
    lay = Layout(before, images * int(per_image), after)
    dev = torch.device(device)
    vocab = config.get_text_config().vocab_size
    ids = _prompt_ids(lay, batch_size, int(config.image_token_id), vocab, seed, dev)
    size = vision.image_size if isinstance(vision.image_size, int) else vision.image_size[0]
    generator = torch.Generator().manual_seed(seed + 1)
    pixels = torch.randn(batch_size * images, 3, size, size, generator=generator)
    return Workload(
        name=str(path),
        model=model,
        inputs={"input_ids": ids, "pixel_values": pixels.to(dev, dtype)},
        layout=lay,
        batch_size=batch_size,
        description=f"{path} ({config.model_type}), synthetic prompts, {str(dtype).removeprefix('torch.')}",
    )
