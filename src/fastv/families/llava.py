"""LLaVA-1.5 and LLaVA-NeXT: image tokens are ``config.image_token_id`` placeholders in ``input_ids``.

LLaVA-NeXT's anyres tiling gives each image a different token count; nothing here depends on it,
since candidates are found per position.
"""

from fastv.families.base import Family


class LlavaFamily(Family):
    name = "llava"
    model_types = ("llava",)
    model_classes = ("LlavaForConditionalGeneration", "LlavaModel")


class LlavaNextFamily(Family):
    name = "llava_next"
    model_types = ("llava_next",)
    model_classes = ("LlavaNextForConditionalGeneration", "LlavaNextModel")
