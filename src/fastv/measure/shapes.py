"""Architecture shapes that FLOPs and KV-cache sizes depend on, read from a transformers config.

Counting from shapes (not from a loaded model) lets ``fastv flops`` work for 7B/13B models without
weights, and keeps the counts identical for a preset and for the config it builds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from fastv.measure.layers import LayerShape, is_heterogeneous, layer_shapes


@dataclass(frozen=True)
class TextShape:
    """The decoder (language model): every dimension FLOPs or the KV cache depend on."""

    layers: int
    hidden: int
    ffn: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    ffn_matrices: int = 3  # SwiGLU: gate, up, down.
    per_layer: tuple[LayerShape, ...] = ()  # set when layers differ (hybrid, MoE, per-layer heads)

    def layer(self, i: int) -> LayerShape:
        """Layer ``i``; a uniform decoder's layers are all the same softmax-attention + dense-FFN layer."""
        if self.per_layer:
            return self.per_layer[i]
        return LayerShape(
            mixer="full_attention",
            mixer_macs=self.hidden * (2 * self.q_dim + 2 * self.kv_dim),
            ffn_macs=self.ffn_matrices * self.hidden * self.ffn,
            q_dim=self.q_dim,
            kv_dim=self.kv_dim,
        )

    @property
    def q_dim(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        del out["per_layer"]
        if self.per_layer:
            out["layer_mixers"] = [layer.mixer for layer in self.per_layer]
        return out


@dataclass(frozen=True)
class VisionShape:
    """A ViT-style vision tower and the projector that maps its features into the decoder.

    ``tokens`` is the sequence length the tower runs on per image (CLIP: patches + CLS; Qwen2-VL:
    patches before the 2x2 merge); ``out_tokens`` is what reaches the language model per image.
    """

    layers: int
    hidden: int
    ffn: int
    tokens: int
    out_tokens: int
    patch_in: int  # channels * patch area (* temporal patch): the patch-embedding input size.
    projector: tuple[int, ...]  # projector matmul widths, e.g. (1024, 4096, 4096) = two matmuls.
    ffn_matrices: int = 2  # GELU MLP: fc1, fc2.

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _get(cfg: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        value = getattr(cfg, name, None)
        if value is not None:
            return value
    return default


def text_shape(config: Any) -> TextShape:
    """The decoder shape of any transformers config (VLM configs are unwrapped to their text part)."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    per_layer = layer_shapes(config) if is_heterogeneous(text) else ()
    # Per-layer attributes of transformers' heterogeneous configs are read from layer 0.
    first = text.per_layer_config[0] if getattr(text, "is_heterogeneous", False) else text
    hidden = int(_get(text, "hidden_size"))
    heads = int(_get(first, "num_attention_heads"))
    head_dim = int(_get(first, "head_dim", default=hidden // heads))
    ffn = _get(first, "intermediate_size")
    if per_layer:  # the paper's Eq. 5 needs one dense width: the median layer's active FFN
        ffn = sorted(layer.ffn_macs for layer in per_layer)[len(per_layer) // 2] // (3 * hidden)
    return TextShape(
        layers=int(_get(text, "num_hidden_layers")),
        hidden=hidden,
        ffn=int(ffn),
        heads=heads,
        kv_heads=int(_get(first, "num_key_value_heads", default=heads)),
        head_dim=head_dim,
        vocab=int(_get(text, "vocab_size")),
        per_layer=per_layer,
    )


def vision_shape(config: Any) -> VisionShape | None:
    """The vision tower + projector shape, for CLIP/SigLIP-style (LLaVA family) and Qwen2-VL towers.

    Returns None for configs without a vision part, or with one we do not know how to count.
    """
    vision = getattr(config, "vision_config", None)
    if vision is None:
        return None
    d_text = text_shape(config).hidden
    if hasattr(vision, "depth") and hasattr(vision, "embed_dim"):  # Qwen2-VL / Qwen2.5-VL style.
        merge = int(_get(vision, "spatial_merge_size", default=2))
        embed = int(vision.embed_dim)
        ffn = int(_get(vision, "intermediate_size", default=embed * int(_get(vision, "mlp_ratio", default=4))))
        patch = int(vision.patch_size)
        temporal = int(_get(vision, "temporal_patch_size", default=1))
        merged_in = embed * merge * merge
        return VisionShape(
            layers=int(vision.depth),
            hidden=embed,
            ffn=ffn,
            tokens=0,  # dynamic resolution: set from the preset or layout.
            out_tokens=0,
            patch_in=int(_get(vision, "in_channels", default=3)) * patch * patch * temporal,
            projector=(merged_in, merged_in, d_text),
        )
    image_size = _get(vision, "image_size")
    patch = _get(vision, "patch_size")
    if image_size is None or patch is None or not hasattr(vision, "hidden_size"):
        return None
    image_size = image_size if isinstance(image_size, int) else int(image_size[0])
    patches = (image_size // int(patch)) ** 2
    has_cls = getattr(vision, "model_type", "") in ("clip_vision_model", "")
    strategy = getattr(config, "vision_feature_select_strategy", "default")
    out_tokens = patches if (has_cls and strategy == "default") or not has_cls else patches + 1
    d_vis = int(vision.hidden_size)
    layer = getattr(config, "vision_feature_layer", -1)
    n_feature_layers = len(layer) if isinstance(layer, (list, tuple)) else 1
    return VisionShape(
        layers=int(vision.num_hidden_layers),
        hidden=d_vis,
        ffn=int(vision.intermediate_size),
        tokens=patches + (1 if has_cls else 0),
        out_tokens=out_tokens,
        patch_in=int(_get(vision, "num_channels", default=3)) * int(patch) ** 2,
        projector=(d_vis * n_feature_layers, d_text, d_text),
    )
