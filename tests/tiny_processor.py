"""A tiny word-level tokenizer + CLIP image processor + LlavaProcessor, built locally (no hub)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import CLIPImageProcessor, LlavaProcessor, PreTrainedTokenizerFast

from fastv.selfcheck.tiny import IMAGE_TOKEN, VOCAB, TinyVLM


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<image>": IMAGE_TOKEN, "<unk>": IMAGE_TOKEN + 1}
    words = ["what", "shape", "color", "is", "the", "a", "this", "circle", "square", "red", "blue", "?", ":"]
    for word in words + [f"w{i}" for i in range(VOCAB)]:
        if len(vocab) >= VOCAB:
            break
        next_id = min(set(range(VOCAB)) - set(vocab.values()))
        vocab.setdefault(word, next_id)
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        extra_special_tokens={"image_token": "<image>"},
        padding_side="left",
    )


def tiny_llava_processor(vlm: TinyVLM) -> LlavaProcessor:
    size = vlm.image_size
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": size}, crop_size={"height": size, "width": size}, do_convert_rgb=True
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tiny_tokenizer(),
        patch_size=vlm.model.config.vision_config.patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        image_token="<image>",
    )


def save_tiny_llava(vlm: TinyVLM, directory: Path) -> Path:
    """A checkpoint directory users' code would load: model + processor via save_pretrained."""
    vlm.model.save_pretrained(directory)
    tiny_llava_processor(vlm).save_pretrained(directory)
    return directory


def write_image(path: Path, seed: int = 0, size: int = 32) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path
