"""Model presets as plain data: the shapes of published VLMs, usable without their weights.

A preset gives ``fastv flops`` exact 7B/13B shapes, and gives ``fastv bench`` a model to build with
random weights (optionally scaled down) whose language model has the real layer structure.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from fastv.measure.shapes import TextShape, VisionShape


@dataclass(frozen=True)
class Layout:
    """One prompt: ``before`` text tokens, ``image`` image tokens, ``after`` text tokens.

    ``image`` counts every image token of the sample (all tiles, frames or images together): FastV
    ranks and prunes them as one pool per sample.
    """

    before: int
    image: int
    after: int

    def __post_init__(self) -> None:
        if min(self.before, self.image, self.after) < 0:
            raise ValueError(f"Layout token counts must be >= 0, got {self}.")

    @property
    def n(self) -> int:
        return self.before + self.image + self.after

    def __str__(self) -> str:
        return f"{self.before}+{self.image}+{self.after}={self.n}"


@dataclass(frozen=True)
class Preset:
    """Shapes of a published model plus the prompt layout used for its FLOPs figures.

    ``image_grid`` = (images per prompt, side): the benchmark feeds ``images`` pictures of
    ``side x side`` patches through a tiny vision tower so the language model sees exactly
    ``images * side**2`` image tokens.
    """

    name: str
    text: TextShape
    vision: VisionShape
    layout: Layout
    image_grid: tuple[int, int]
    image_token_id: int
    notes: str = ""
    chat_layout: Layout | None = None  # a typical chat prompt (with a question), when it differs.
    extra: dict[str, Any] = field(default_factory=dict)

    def scaled_text(self, scale: int = 1, layers: int | None = None) -> TextShape:
        """The decoder divided by ``scale`` in width (hidden, FFN, heads; head_dim kept) and depth.

        ``layers`` overrides the depth. Vocabulary is kept: the image-token id must stay valid.
        """
        if scale < 1:
            raise ValueError(f"scale must be >= 1, got {scale}.")
        t = self.text
        heads = max(1, t.heads // scale)
        kv_heads = max(1, t.kv_heads // scale)
        while heads % kv_heads:
            kv_heads -= 1
        return replace(
            t,
            layers=layers if layers is not None else max(2, t.layers // scale),
            hidden=heads * t.head_dim,
            ffn=max(1, t.ffn // scale),
            heads=heads,
            kv_heads=kv_heads,
        )

    def text_config(self, scale: int = 1, layers: int | None = None) -> Any:
        """A ``LlamaConfig`` with this preset's decoder shape (Qwen2's q/k/v biases are left out)."""
        from transformers import LlamaConfig

        t = self.scaled_text(scale, layers)
        return LlamaConfig(
            vocab_size=t.vocab,
            hidden_size=t.hidden,
            intermediate_size=t.ffn,
            num_hidden_layers=t.layers,
            num_attention_heads=t.heads,
            num_key_value_heads=t.kv_heads,
            head_dim=t.head_dim,
            max_position_embeddings=max(4096, 2 * self.layout.n),
            tie_word_embeddings=False,
        )

    def to_config(self, scale: int = 1, layers: int | None = None, tiny_vision: bool = True) -> Any:
        """A ``LlavaConfig`` whose language model has this preset's (scaled) shape.

        ``tiny_vision`` (the benchmark's choice) uses a 1-layer, 32-wide CLIP tower with 2-pixel
        patches: it produces ``side**2`` tokens per image (CLS dropped) at negligible cost, since
        the vision tower is not what FastV changes. ``tiny_vision=False`` keeps a CLIP tower of
        the preset's vision shape (for FLOPs only; Qwen2-VL's tower is not CLIP).
        """
        from transformers import CLIPVisionConfig, LlavaConfig

        side = self.image_grid[1]
        if tiny_vision:
            vision = CLIPVisionConfig(
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=1,
                num_attention_heads=2,
                image_size=2 * side,
                patch_size=2,
                projection_dim=32,
            )
            feature_layer = -1
        else:
            v = self.vision
            vision = CLIPVisionConfig(
                hidden_size=v.hidden,
                intermediate_size=v.ffn,
                num_hidden_layers=v.layers,
                num_attention_heads=max(1, v.hidden // 64),
                image_size=14 * side,
                patch_size=14,
            )
            feature_layer = -2
        return LlavaConfig(
            vision_config=vision,
            text_config=self.text_config(scale, layers),
            image_token_id=self.image_token_id,
            image_seq_length=side * side,
            vision_feature_layer=feature_layer,
            vision_feature_select_strategy="default",
            projector_hidden_act="gelu",
        )


_VICUNA_7B = TextShape(layers=32, hidden=4096, ffn=11008, heads=32, kv_heads=32, head_dim=128, vocab=32064)
_VICUNA_13B = TextShape(layers=40, hidden=5120, ffn=13824, heads=40, kv_heads=40, head_dim=128, vocab=32064)
_QWEN2_7B = TextShape(layers=28, hidden=3584, ffn=18944, heads=28, kv_heads=4, head_dim=128, vocab=152064)


def _clip_l14(image_px: int, d_text: int) -> VisionShape:
    """CLIP ViT-L/14 at ``image_px`` pixels: 24 layers, width 1024, MLP 4096; LLaVA's 2-layer MLP projector."""
    patches = (image_px // 14) ** 2
    return VisionShape(
        layers=24,
        hidden=1024,
        ffn=4096,
        tokens=patches + 1,
        out_tokens=patches,
        patch_in=3 * 14 * 14,
        projector=(1024, d_text, d_text),
    )


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="llava-1.5-7b",
            text=_VICUNA_7B,
            vision=_clip_l14(336, 4096),
            layout=Layout(36, 576, 0),
            chat_layout=Layout(35, 576, 40),
            image_grid=(1, 24),
            image_token_id=32000,
            notes="Vicuna-7B + CLIP ViT-L/14-336 (577 tokens, CLS dropped -> 576). Default layout n = 36+576 = 612 "
            "reproduces the paper's Table 1 FLOPs ratios and its absolute '99.3B' (Eq. 5 of one layer at n=612); "
            "a chat prompt with a question is ~35+576+40 = 651.",
        ),
        Preset(
            name="llava-1.5-13b",
            text=_VICUNA_13B,
            vision=_clip_l14(336, 5120),
            layout=Layout(36, 576, 0),
            chat_layout=Layout(35, 576, 40),
            image_grid=(1, 24),
            image_token_id=32000,
            notes="Vicuna-13B + CLIP ViT-L/14-336. Same layouts as llava-1.5-7b.",
        ),
        Preset(
            name="llava-next-7b",
            text=_VICUNA_7B,
            vision=_clip_l14(336, 4096),
            layout=Layout(35, 2880, 40),
            image_grid=(5, 24),
            image_token_id=32000,
            notes="LLaVA-NeXT (Vicuna-7B shapes; Mistral-7B differs only by 8 KV heads). Assumption: anyres "
            "2x2 grid + base image = 5 tiles x 576 = 2880 image tokens, the usual quoted maximum. The real "
            "count varies: a square 672x672 image gives 576 + 48*48 + 48 newline tokens = 2928, other "
            "aspect ratios fewer after unpadding. The vision tower runs 5 x 577 tokens.",
        ),
        Preset(
            name="qwen2-vl-7b",
            text=_QWEN2_7B,
            vision=VisionShape(
                layers=32,
                hidden=1280,
                ffn=5120,
                tokens=4096,
                out_tokens=1024,
                patch_in=3 * 14 * 14 * 2,
                projector=(5120, 5120, 3584),
            ),
            layout=Layout(15, 1024, 40),
            image_grid=(1, 32),
            image_token_id=151655,
            notes="Qwen2-7B decoder (GQA: 28 query / 4 KV heads). Assumption: one 896x896 image = 64x64 patches "
            "of 14 px merged 2x2 -> 1024 image tokens (dynamic resolution: the real count follows the image "
            "size). The benchmark builds a Llama-shaped decoder (no q/k/v bias, 1-D RoPE) of the same shape.",
        ),
        Preset(
            name="qwen2.5-vl-7b",
            text=_QWEN2_7B,
            vision=VisionShape(
                layers=32,
                hidden=1280,
                ffn=3420,
                tokens=4096,
                out_tokens=1024,
                patch_in=3 * 14 * 14 * 2,
                projector=(5120, 5120, 3584),
                ffn_matrices=3,
            ),
            layout=Layout(15, 1024, 40),
            image_grid=(1, 32),
            image_token_id=151655,
            notes="Qwen2.5-VL-7B: the Qwen2-7B decoder shape of qwen2-vl-7b; its vision tower (32 layers, width "
            "1280, SwiGLU MLP 3420, windowed attention in most layers) feeds the same 1024 tokens for an 896x896 "
            "image (dynamic resolution: the real count follows the image size).",
        ),
        Preset(
            name="video-llava-7b",
            text=_VICUNA_7B,
            vision=VisionShape(
                layers=24,
                hidden=1024,
                ffn=4096,
                tokens=257,
                out_tokens=256,
                patch_in=3 * 14 * 14,
                projector=(1024, 4096, 4096),
            ),
            layout=Layout(35, 2048, 40),
            image_grid=(8, 16),
            image_token_id=32000,
            notes="Vicuna-7B + LanguageBind ViT-L/14-224 video tower: 8 frames x 256 tokens = 2048 image "
            "tokens (each frame runs 257 tokens incl. CLS).",
        ),
    )
}


def get_preset(name: str) -> Preset:
    """The preset called ``name``; the error lists the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"Unknown preset {name!r}; choose one of {', '.join(PRESETS)}.") from None
