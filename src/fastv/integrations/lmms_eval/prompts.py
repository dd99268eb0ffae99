"""From an lmms-eval context string plus images to the prompt text the processor expands.

Tasks either put the image placeholder in the context or leave it out (most do); when it is
missing the placeholders go first, as LLaVA was trained. A processor or tokenizer chat template
is used when there is one (real LLaVA checkpoints), else the context is taken as is (the
built-in model's plain ``<image> Question: ... Answer:`` format).
"""

from __future__ import annotations

from typing import Any


def image_token(processor: Any) -> str:
    """The placeholder string the processor expands into image tokens."""
    token = getattr(processor, "image_token", None) or getattr(processor.tokenizer, "image_token", None)
    return str(token or "<image>")


def has_chat_template(processor: Any) -> bool:
    return bool(getattr(processor, "chat_template", None) or getattr(processor.tokenizer, "chat_template", None))


def build_prompt(processor: Any, context: str, n_images: int, chat_template: str = "auto") -> str:
    """Prompt text for one request; ``chat_template`` is "auto" (use one if present) or "none"."""
    token = image_token(processor)
    missing = max(0, n_images - context.count(token))
    use_template = chat_template == "auto" and has_chat_template(processor)
    if not use_template:
        return "\n".join([" ".join([token] * missing), context]) if missing else context
    content = [{"type": "image"} for _ in range(missing)] + [{"type": "text", "text": context}]
    messages = [{"role": "user", "content": content}]
    if getattr(processor, "chat_template", None):
        return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    text = (token + "\n") * missing + context
    return processor.tokenizer.apply_chat_template(
        [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False
    )


def cut_at_stops(text: str, until: list[str]) -> str:
    """The generated text up to the first stop string (lmms-eval's ``until``)."""
    for stop in until:
        if stop:
            text = text.split(stop)[0]
    return text
