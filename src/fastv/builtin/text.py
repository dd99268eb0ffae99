"""The built-in model's tokenizer, processor and prompt format, built locally (no hub access).

A word-level tokenizer over the easy-VQA vocabulary is enough: every question word and every
answer is one token, so an answer is exactly one generated token followed by ``</s>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordLevel
from transformers import LlavaProcessor, PreTrainedTokenizerFast
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

# Question first: image tokens can then attend to the question (causal decoder), which lets this tiny
# model learn "is there a red shape?" within a CPU budget; with the image first it stays on the prior.
PROMPT_TEMPLATE = "Question: {question} <image> Answer:"
IMAGE_TOKEN = "<image>"
SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>", IMAGE_TOKEN)
_WORD = re.compile(r"\w+|[^\w\s]+")


def build_prompt(question: str) -> str:
    """The prompt the built-in model was trained on; the answer word follows it."""
    return PROMPT_TEMPLATE.format(question=question.strip())


def chat_template(template: str = PROMPT_TEMPLATE) -> str:
    """A Jinja chat template rendering a user turn in the trained format (so generic code paths that use
    ``processor.apply_chat_template`` build the same prompt as :func:`build_prompt`)."""
    before, after = template.split("{question}")
    return (
        "{%- for m in messages if m['role'] == 'user' -%}"
        "{%- if m['content'] is string -%}{%- set q = m['content'] -%}"
        "{%- else -%}{%- set q = m['content'] | selectattr('type', 'equalto', 'text') | map(attribute='text')"
        " | join(' ') -%}{%- endif -%}"
        f"{before}{{{{ q | trim }}}}{after}"
        "{%- endfor -%}"
    )


def vocabulary(texts: Iterable[str]) -> list[str]:
    """Sorted lower-cased words of ``texts`` plus the prompt-format words (same split as the tokenizer)."""
    words = {w for t in texts for w in _WORD.findall(t.lower())}
    words |= set(_WORD.findall(PROMPT_TEMPLATE.replace(IMAGE_TOKEN, "").format(question="").lower()))
    return sorted(words)


def build_tokenizer(words: Iterable[str]) -> PreTrainedTokenizerFast:
    """Word-level tokenizer: special tokens first (ids 0-4), then ``words``; left padding for generation."""
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for w in words:
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", vocab["<s>"])])
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        extra_special_tokens={"image_token": IMAGE_TOKEN},
        padding_side="left",
        model_input_names=["input_ids", "attention_mask"],
    )


def build_processor(
    tokenizer: PreTrainedTokenizerFast, image_size: int, patch_size: int, template: str | None = None
) -> LlavaProcessor:
    """A PIL-only LLaVA processor (no torchvision): resize to ``image_size``, CLIP normalisation;
    ``template``: its chat template (default: the built-in model's prompt format).

    ``num_additional_image_tokens=1`` with the "default" strategy means the CLS token is dropped,
    so each image becomes ``(image_size // patch_size) ** 2`` ``<image>`` tokens.
    """
    image_processor = CLIPImageProcessorPil(
        size={"height": image_size, "width": image_size},
        crop_size={"height": image_size, "width": image_size},
        do_center_crop=False,
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=patch_size,
        vision_feature_select_strategy="default",
        image_token=IMAGE_TOKEN,
        num_additional_image_tokens=1,
        chat_template=template or chat_template(),
    )
