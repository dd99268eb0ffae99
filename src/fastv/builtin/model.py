"""Architecture of the built-in model: a small but genuine LLaVA (CLIP ViT -> MLP projector -> Llama).

Using stock ``LlavaForConditionalGeneration`` means FastV is exercised on exactly the code path
a real LLaVA-1.5 checkpoint takes; only the sizes are small enough to train on a CPU.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from transformers import (
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    PreTrainedTokenizerFast,
)


@dataclass(frozen=True)
class ModelSize:
    """Sizes that matter for speed and for FastV: image tokens, decoder depth, widths."""

    image_size: int = 64
    patch_size: int = 8
    vision_hidden: int = 128
    vision_layers: int = 4
    vision_heads: int = 4
    text_hidden: int = 128
    text_layers: int = 8
    text_heads: int = 4
    text_ffn: int = 384

    @property
    def n_image_tokens(self) -> int:
        return (self.image_size // self.patch_size) ** 2


PRESETS: dict[str, ModelSize] = {
    "default": ModelSize(),
    # For tests: trains a handful of steps in seconds; still LLaVA end to end.
    "tiny": ModelSize(
        image_size=32, patch_size=8, vision_hidden=32, vision_layers=1, vision_heads=2,
        text_hidden=32, text_layers=3, text_heads=2, text_ffn=64,
    ),
}  # fmt: skip


def build_model(size: ModelSize, tokenizer: PreTrainedTokenizerFast) -> LlavaForConditionalGeneration:
    """A randomly initialised LLaVA whose special-token ids match ``tokenizer``."""
    vocab_size = 8 * ((len(tokenizer) + 7) // 8)
    vision = CLIPVisionConfig(
        hidden_size=size.vision_hidden,
        intermediate_size=4 * size.vision_hidden,
        num_hidden_layers=size.vision_layers,
        num_attention_heads=size.vision_heads,
        image_size=size.image_size,
        patch_size=size.patch_size,
        projection_dim=size.vision_hidden,
    )
    text = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=size.text_hidden,
        intermediate_size=size.text_ffn,
        num_hidden_layers=size.text_layers,
        num_attention_heads=size.text_heads,
        num_key_value_heads=size.text_heads,
        max_position_embeddings=max(256, 2 * size.n_image_tokens),
        tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        image_seq_length=size.n_image_tokens,
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
        projector_hidden_act="gelu",
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlavaForConditionalGeneration(config)
    gen = model.generation_config
    gen.bos_token_id, gen.eos_token_id, gen.pad_token_id = (
        tokenizer.bos_token_id,
        tokenizer.eos_token_id,
        tokenizer.pad_token_id,
    )
    gen.max_new_tokens, gen.do_sample = 4, False
    return model


def size_dict(size: ModelSize) -> dict[str, int]:
    return asdict(size)
