"""The testbed VLM: a small CLIP ViT and a LLaVA projector in front of SmolLM2-135M-Instruct.

It is a stock ``LlavaForConditionalGeneration``, so every fastv feature applies unchanged; only
the vision tower, the projector and LoRA adapters on the language model are trained here.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from transformers import CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

from fastv.builtin.text import build_processor as pil_llava_processor
from fastv.sortofclevr.scene import CELL, IMAGE_SIZE

PATCH_SIZE = CELL  # the scenes guarantee every object MIN_CELLS image tokens at this patch size
N_IMAGE_TOKENS = (IMAGE_SIZE // PATCH_SIZE) ** 2  # 144
IMAGE_TOKEN = "<image>"
PAD_TOKEN = "<|endoftext|>"
END_OF_TURN = "<|im_end|>"
SYSTEM_PROMPT = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"  # SmolLM2's default
VISION = {"hidden_size": 192, "intermediate_size": 768, "num_hidden_layers": 4, "num_attention_heads": 6}
LORA_PREFIX = "lora."  # LoRA weights in the shipped file, as peft names them after this prefix
LORA = {
    "r": 16,
    "lora_alpha": 32,
    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
}


def adapted_layers(num_layers: int) -> list[int]:
    """LoRA adapts the upper half only, so training can run the frozen lower half once and cache it."""
    return list(range(num_layers // 2, num_layers))


def lora_config(num_layers: int) -> Any:
    """LoRA on ``adapted_layers``, named by a regex (peft's ``layers_to_transform`` misses the layers of a
    bare ``LlamaModel``, whose module names start with ``layers.``)."""
    from peft import LoraConfig

    layers = "|".join(map(str, adapted_layers(num_layers)))
    modules = "|".join(LORA["target_modules"])
    options = {k: v for k, v in LORA.items() if k != "target_modules"}
    return LoraConfig(lora_dropout=0.0, target_modules=rf"layers\.({layers})\.\w+\.({modules})", **options)


# SmolLM2's own chat format; a user turn's images come first, each as one <image> placeholder line.
CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] != 'system' -%}"
    "{{ '<|im_start|>system\\n" + SYSTEM_PROMPT + "<|im_end|>\\n' }}"
    "{%- endif -%}"
    "{%- for m in messages -%}"
    "{{ '<|im_start|>' + m['role'] + '\\n' }}"
    "{%- if m['content'] is string -%}{{ m['content'] }}"
    "{%- else -%}"
    "{%- for c in m['content'] if c['type'] in ('image', 'image_url') -%}{{ '<image>\\n' }}{%- endfor -%}"
    "{{ m['content'] | selectattr('type', 'equalto', 'text') | map(attribute='text') | join(' ') }}"
    "{%- endif -%}"
    "{{ '<|im_end|>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)


def prompt(question: str) -> str:
    """The trained prompt for one image and one question (what the chat template renders)."""
    return (
        f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n{IMAGE_TOKEN}\n"
        f"{question.strip()}<|im_end|>\n<|im_start|>assistant\n"
    )


def build_processor(tokenizer: Any) -> LlavaProcessor:
    """SmolLM2's tokenizer plus one ``<image>`` token; a PIL-only CLIP image processor (no torchvision)."""
    tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    tokenizer.pad_token = PAD_TOKEN
    tokenizer.padding_side = "left"
    return pil_llava_processor(tokenizer, IMAGE_SIZE, PATCH_SIZE, template=CHAT_TEMPLATE)


def build_vlm(language_model: Any, tokenizer: Any) -> LlavaForConditionalGeneration:
    """A LLaVA around ``language_model`` (weights copied); vision tower and projector freshly initialised.

    The ``<image>`` row appended to the (tied) embedding is zero: image positions never read it, and
    its output logit is 0, never the argmax of a trained answer.
    """
    text = copy.deepcopy(language_model.config)
    if hasattr(text, "quantization_config"):
        # the GGUF file's, inherited by the dequantised model: left in, it would make every load of the
        # saved float checkpoint attach a GGUF quantizer (is_quantized, a bogus dtype warning)
        del text.quantization_config
    image_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    text.vocab_size = max(text.vocab_size, image_id + 1)
    vision = CLIPVisionConfig(
        **VISION, image_size=IMAGE_SIZE, patch_size=PATCH_SIZE, projection_dim=VISION["hidden_size"]
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=image_id,
        image_seq_length=N_IMAGE_TOKENS,
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
        projector_hidden_act="gelu",
        tie_word_embeddings=text.tie_word_embeddings,
    )
    vlm = LlavaForConditionalGeneration(config)
    state = language_model.model.state_dict()
    embed = state["embed_tokens.weight"]
    state["embed_tokens.weight"] = torch.cat([embed, embed.new_zeros(text.vocab_size - embed.shape[0], embed.shape[1])])
    vlm.model.language_model.load_state_dict(state)
    vlm.tie_weights()
    gen = vlm.generation_config
    gen.eos_token_id = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    gen.pad_token_id = tokenizer.convert_tokens_to_ids(PAD_TOKEN)
    gen.bos_token_id = None
    gen.max_new_tokens, gen.do_sample = 4, False
    return vlm
