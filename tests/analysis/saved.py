"""Tiny LLaVA / LLaVA-NeXT checkpoints with a local processor (word-level tokenizer, PIL image processors)."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, pre_tokenizers, processors
from tokenizers.models import WordLevel
from transformers import LlavaNextProcessor, LlavaProcessor, PreTrainedTokenizerFast
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
from transformers.models.llava_next.image_processing_pil_llava_next import LlavaNextImageProcessorPil

from fastv.families.llava.selfcheck import tiny_llava, tiny_llava_next
from fastv.selfcheck.tiny import IMAGE_TOKEN, VOCAB


def tokenizer() -> PreTrainedTokenizerFast:
    """128 ids matching the tiny models: <pad> 0, <s> 1, </s> 2, <image> 120, words elsewhere."""
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<image>": IMAGE_TOKEN}
    for i in range(VOCAB):
        if i not in vocab.values():
            vocab[f"w{i}"] = i
    words = ["what", "shape", "is", "in", "the", "image", "?", "describe", "it", "colour"]
    for word, i in zip(words, range(3, 3 + len(words)), strict=True):
        vocab.pop(f"w{i}")
        vocab[word] = i
    tok = Tokenizer(WordLevel(vocab, unk_token="w13"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tok.add_special_tokens(["<pad>", "<s>", "</s>", "<image>"])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="w13",
        extra_special_tokens={"image_token": "<image>"},
        padding_side="left",
    )


def save_tiny_llava(path: Path) -> Path:
    vlm = tiny_llava(layers=3)
    image_processor = CLIPImageProcessorPil(size={"height": 16, "width": 16}, do_center_crop=False)
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer(),
        patch_size=4,
        vision_feature_select_strategy="default",
        image_token="<image>",
        num_additional_image_tokens=1,
    )
    vlm.model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def save_tiny_llava_next(path: Path) -> Path:
    vlm = tiny_llava_next(layers=3)
    image_processor = LlavaNextImageProcessorPil(
        size={"height": 16, "width": 16},
        crop_size={"height": 16, "width": 16},
        image_grid_pinpoints=vlm.model.config.image_grid_pinpoints,
        do_center_crop=False,
    )
    processor = LlavaNextProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer(),
        patch_size=4,
        vision_feature_select_strategy="default",
        image_token="<image>",
        num_additional_image_tokens=1,
    )
    vlm.model.save_pretrained(path)
    processor.save_pretrained(path)
    return path
