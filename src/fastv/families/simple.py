"""Decoder VLMs that need nothing beyond the default adapter: image placeholders in ``input_ids``,
a stock transformers decoder (Llama / Qwen2 / Mistral ...) under ``language_model`` or ``text_model``.
"""

from __future__ import annotations

from fastv.families.base import Family


class InternVLFamily(Family):
    name = "internvl"
    model_types = ("internvl",)
    model_classes = ("InternVLForConditionalGeneration", "InternVLModel")


class Idefics3Family(Family):
    """Idefics3 and SmolVLM: the decoder is ``model.text_model``; each image split is one run of tokens."""

    name = "idefics3"
    model_types = ("idefics3",)
    model_classes = ("Idefics3ForConditionalGeneration", "Idefics3Model")


class SmolVLMFamily(Idefics3Family):
    name = "smolvlm"
    model_types = ("smolvlm",)
    model_classes = ("SmolVLMForConditionalGeneration", "SmolVLMModel")
