"""Every registered family names real transformers classes whose config has its model type."""

from __future__ import annotations

import transformers
from packaging.version import Version

from fastv.families import UNSUPPORTED, supported_families

EXPECTED = {
    "aya_vision",
    "cohere2_vision",
    "fast_vlm",
    "gemma3",
    "gemma4",
    "glm46v",
    "glm4v",
    "glm4v_moe",
    "hunyuan_vl",
    "idefics2",
    "idefics3",
    "internvl",
    "lfm2_vl",
    "llava",
    "llava_next",
    "llava_next_video",
    "llava_onevision",
    "llava_onevision1_5",
    "minicpmv4_6",
    "molmo2",
    "mistral3",
    "ovis2",
    "ovis2_5",
    "paligemma",
    "perception_lm",
    "qwen2_5_omni_thinker",
    "qwen2_5_vl",
    "qwen2_vl",
    "qwen3_5",
    "qwen3_5_moe",
    "qwen3_omni_moe_thinker",
    "qwen3_vl",
    "qwen3_vl_moe",
    "smolvlm",
    "video_llava",
    "vipllava",
}


def test_supported_model_types():
    assert set(supported_families()) == EXPECTED
    assert not EXPECTED & set(UNSUPPORTED)


def test_model_classes_exist_and_match_their_model_type():
    """On releases older than a family's first one, its classes are missing and it says since when."""
    for model_type, family in supported_families().items():
        assert family.model_classes
        missing = family.unavailable_reason()
        if missing is not None:
            assert family.first_transformers, model_type
            assert Version(transformers.__version__) < Version(family.first_transformers), (model_type, missing)
            assert f"added in transformers {family.first_transformers}" in missing
            continue
        for name in family.model_classes:
            cls = getattr(transformers, name)
            assert cls.config_class.model_type in family.model_types, (model_type, name)
