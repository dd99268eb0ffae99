"""Idefics2: each image (or image split) becomes a fixed number of perceiver-resampler latents
(``resampler_n_latents``) in the image placeholders, and a Mistral decoder sits under ``model.text_model``
(which the default adapter finds), so nothing else needs adapting.

Each image's latents are one contiguous run, so ``budget="per_image"`` ranks every image on its own.
No token -> image-region layout (show-keep / analyze refuse it with this reason): each of an image's
``resampler_n_latents`` tokens is a perceiver latent that cross-attends to every patch of the image (or
split), so no token covers a region of its own; boxes would be made up.
"""

from __future__ import annotations

from typing import Any

from fastv.errors import UnsupportedModelError
from fastv.families.base import Family
from fastv.families.registry import register_family


class Idefics2Family(Family):
    name = "idefics2"
    model_types = ("idefics2",)
    model_classes = ("Idefics2ForConditionalGeneration", "Idefics2Model")

    def visual_layouts(self, request: Any) -> list[Any]:
        raise UnsupportedModelError(
            "Idefics2 has no token -> image-region layout: its image tokens are perceiver-resampler latents, each "
            "attending to the whole image (or image split), so no token covers one region (show-keep and analyze "
            "pictures need one; pruning itself does not)."
        )


register_family(Idefics2Family())
