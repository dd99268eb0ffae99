"""Idefics2: each image (or image split) becomes a fixed number of perceiver-resampler latents
(``resampler_n_latents``) in the image placeholders, and a Mistral decoder sits under ``model.text_model``
(which the default adapter finds), so nothing else needs adapting.

Each image's latents are one contiguous run, so ``budget="per_image"`` ranks every image on its own.
No token -> image-region layout: a resampler latent attends to the whole image, it covers no region.
"""

from __future__ import annotations

from fastv.families.base import Family


class Idefics2Family(Family):
    name = "idefics2"
    model_types = ("idefics2",)
    model_classes = ("Idefics2ForConditionalGeneration", "Idefics2Model")
