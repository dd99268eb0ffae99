"""What FastV needs to know about a model family, behind one small adapter class.

The defaults fit the transformers layout shared by most decoder VLMs (an outer model holding a
``language_model`` (or Idefics' ``text_model``) decoder whose ``layers`` each have a ``self_attn`` with ``q_proj`` / ``k_proj``,
optional ``q_norm`` / ``k_norm`` and the modeling file's ``apply_rotary_pos_emb``). A family overrides
only what differs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from fastv.compat import multimodal_rotary
from fastv.core.segments import contiguous_runs
from fastv.errors import FastVError, UnsupportedModelError

PositionEmbeddings = tuple[torch.Tensor, torch.Tensor]


class Family:
    """Adapter for one model family; instances are registered by ``config.model_type``."""

    name: str = ""
    model_types: tuple[str, ...] = ()
    model_classes: tuple[str, ...] = ()
    # Config attributes holding the token ids whose positions are prunable (image / video tokens).
    prunable_token_attrs: tuple[str, ...] = ("image_token_id", "video_token_id")
    # The first transformers release that has this family's model classes ("": every supported release). It
    # is what the README and the error say; whether the installed release has them is read from it.
    first_transformers: str = ""
    # Values of ``text_config.layer_types`` whose layers mix tokens through a fixed-size recurrent state
    # (linear attention, short convolutions) instead of attention over a KV cache (hybrid decoders).
    recurrent_layer_types: tuple[str, ...] = ()

    def unavailable_reason(self) -> str | None:
        """Why the installed transformers cannot run this family (its model classes are missing), or None."""
        import transformers

        missing = [name for name in self.model_classes if not hasattr(transformers, name)]
        if not missing:
            return None
        since = f", added in transformers {self.first_transformers}" if self.first_transformers else ""
        return f"transformers {transformers.__version__} has no {missing[0]}{since}"

    # --- where things are -------------------------------------------------------------------
    def language_model(self, model: nn.Module) -> nn.Module:
        """The decoder stack (a ``*Model`` with ``.layers`` and ``.config``) inside ``model``."""
        for path in ("model.language_model", "language_model", "model.text_model"):
            module: object = model
            for attr in path.split("."):
                module = getattr(module, attr, None)
            if isinstance(module, nn.Module) and hasattr(module, "layers"):
                return module
        raise UnsupportedModelError(
            f"{type(model).__name__} has no `language_model` decoder with `.layers`; FastV's {self.name!r} "
            "adapter expects the transformers layout. Pass the *ForConditionalGeneration model."
        )

    def decoder_layers(self, language_model: nn.Module) -> Sequence[nn.Module]:
        return language_model.layers

    def attention(self, layer: nn.Module) -> nn.Module:
        return layer.self_attn

    def text_config(self, language_model: nn.Module):
        return language_model.config

    def check_supported(self, model: nn.Module, language_model: nn.Module) -> None:
        """Refuse a checkpoint whose decoder the adapter cannot rank with, before any forward runs.

        The adapter rebuilds keys and queries from ``k_proj`` / ``q_proj``. Multi-head latent attention
        (Mistral Small 4 under ``model_type="mistral3"``, DeepSeek-style) caches compressed latents
        instead, so there is nothing to rebuild them from.
        """
        first = self.first_attention_layer(language_model)
        if first is None:
            raise UnsupportedModelError(
                f"FastV does not support {type(model).__name__}: none of its decoder layers attends over a KV cache, "
                "so no layer can rank image tokens."
            )
        attention = self.attention(self.decoder_layers(language_model)[first])
        if not (hasattr(attention, "k_proj") and hasattr(attention, "q_proj")):
            text_type = getattr(self.text_config(language_model), "model_type", "?")
            raise UnsupportedModelError(
                f"FastV does not support {type(model).__name__} with a {text_type!r} decoder: its attention "
                f"({type(attention).__name__}) has no q_proj / k_proj. Its keys come from compressed latents "
                "(multi-head latent attention, as in Mistral Small 4), which FastV's "
                f"{self.name!r} adapter cannot rebuild to rank image tokens."
            )

    def check_inputs(self, model: nn.Module, inputs: dict) -> None:
        """Refuse, at prefill and before the vision tower runs, inputs this release's model would misread.

        Default: nothing to refuse.
        """

    def is_recurrent(self, layer_idx: int, text_config) -> bool:
        """Whether decoder layer ``layer_idx`` is a recurrent one (Gated DeltaNet, short convolution).

        Such a layer has no attention map to rank with and no KV length; when pruned, it runs its
        recurrence over the kept tokens only and caches a fixed-size state.
        """
        types = getattr(text_config, "layer_types", None)
        return bool(self.recurrent_layer_types) and types is not None and types[layer_idx] in self.recurrent_layer_types

    def recurrent_mixer(self, layer: nn.Module) -> nn.Module:
        """A recurrent layer's token mixer (what replaces attention), for FLOPs counting."""
        for name in ("linear_attn", "conv", "mamba", "mixer"):
            if isinstance(getattr(layer, name, None), nn.Module):
                return getattr(layer, name)
        raise UnsupportedModelError(f"FastV's {self.name!r} adapter cannot find the mixer of {type(layer).__name__}.")

    def recurrence_macs(self, mixer: nn.Module) -> int:
        """Multiply-accumulates per token of a recurrent mixer beyond its Linear / Conv1d weights
        (a short convolution has none; a linear-attention state update has some)."""
        return 0

    def first_attention_layer(self, language_model: nn.Module) -> int | None:
        """The first layer with a KV cache (0 unless the decoder is hybrid): its length is the full sequence's."""
        config = self.text_config(language_model)
        layers = self.decoder_layers(language_model)
        return next((i for i in range(len(layers)) if not self.is_recurrent(i, config)), None)

    # --- which tokens are candidates ------------------------------------------------------------
    def prunable_token_ids(self, config) -> list[int]:
        ids = [getattr(config, attr, None) for attr in self.prunable_token_attrs]
        return [int(i) for i in ids if i is not None]

    def prunable_mask(self, model: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, n) bool: positions holding image / video tokens, read from the outer ``input_ids``."""
        ids = torch.tensor(self.prunable_token_ids(model.config), device=input_ids.device)
        return torch.isin(input_ids, ids)

    def segments(self, model: nn.Module, input_ids: torch.Tensor, prunable: torch.Tensor, inputs: dict) -> torch.Tensor:
        """(B, n) long: which image (or video frame) each prunable token belongs to, -1 elsewhere.

        Used by ``budget="per_image"``. Default: each contiguous run of one placeholder id is one
        image; families whose videos are one run of frames override this to split it per frame.
        """
        return contiguous_runs(torch.where(prunable, input_ids, torch.full_like(input_ids, -1)))

    def block_ids(self, model: nn.Module, input_ids: torch.Tensor, inputs: dict) -> torch.Tensor | None:
        """(B, n) long ids of image blocks that attend bidirectionally (-1 elsewhere), or None (all causal)."""
        return None

    def blocks_in_layer(self, layer: nn.Module, text_config) -> bool:
        """Whether this layer applies the ``block_ids`` blocks (Gemma 3: every layer; Gemma 4: sliding ones only)."""
        return True

    # --- the queries and keys FastV ranks with -----------------------------------------------------
    def rotary(self, attention: nn.Module) -> Callable:
        """The rotary the attention applies to its queries and keys: ``(q, k, cos, sin) -> (q, k)``."""
        multimodal = multimodal_rotary(attention)
        if multimodal is not None:
            return multimodal
        module = sys.modules[type(attention).__module__]
        rotary = getattr(module, "apply_rotary_pos_emb", None)
        if rotary is None:
            raise FastVError(
                f"{type(attention).__name__} has no module-level `apply_rotary_pos_emb`; the {self.name!r} "
                "adapter must override `rotary`."
            )
        return rotary

    def _project(self, attention: nn.Module, hidden: torch.Tensor, proj: str, norm: str) -> torch.Tensor:
        states = getattr(attention, proj)(hidden).view(*hidden.shape[:-1], -1, attention.head_dim)
        if hasattr(attention, norm):
            states = getattr(attention, norm)(states)
        return states.transpose(1, 2)

    def queries(
        self, attention: nn.Module, hidden: torch.Tensor, position_embeddings: PositionEmbeddings
    ) -> torch.Tensor:
        """Rotated queries (B, H, q, d) for the normed ``hidden`` rows given (their cos/sin)."""
        queries = self._project(attention, hidden, "q_proj", "q_norm")
        cos, sin = position_embeddings
        return self.rotary(attention)(queries, queries, cos, sin)[0]

    def keys(self, attention: nn.Module, hidden: torch.Tensor, position_embeddings: PositionEmbeddings) -> torch.Tensor:
        """Rotated keys (B, H_kv, n, d), as the attention layer would cache them."""
        keys = self._project(attention, hidden, "k_proj", "k_norm")
        cos, sin = position_embeddings
        return self.rotary(attention)(keys, keys, cos, sin)[1]

    def scaling(self, attention: nn.Module) -> float:
        return float(attention.scaling)

    def softcap(self, attention: nn.Module) -> float | None:
        """Attention-logit soft-capping (Gemma 2 style ``tanh(x / c) * c``), or None."""
        cap = getattr(attention, "attn_logit_softcapping", None)
        return None if cap is None else float(cap)

    # --- model-specific steps the decoder runs between layers ----------------------------------------
    def patch_language_model(self, language_model: nn.Module, current_plan: Callable[[], Any]) -> list[Any]:
        """Adapt steps of the decoder's own forward that index the full sequence (e.g. Qwen3-VL's DeepStack).

        ``current_plan()`` gives the running prefill's ``KeepPlan`` while the decoder's hidden states hold only
        the kept tokens (from layer k's input on), else None: decide "pruned or not" by it, never by comparing
        sequence widths (a pruned batch can be exactly as wide as the full one). Returns handles with
        ``.remove()``, undone by ``fastv.remove``. Default: nothing to adapt.
        """
        return []

    # --- pictures --------------------------------------------------------------------------------
    def visual_layouts(self, request: Any) -> list[Any]:
        """Which original-image region each visual token covers (``fastv.families.layout``), for
        ``fastv show-keep`` and the attention study. Families that do not know their geometry say so."""
        raise UnsupportedModelError(
            f"FastV's {self.name!r} adapter has no token -> image-region layout yet (used by show-keep and "
            "analyze pictures; pruning itself does not need it)."
        )

    # --- masks ---------------------------------------------------------------------------------
    def sliding_window(self, layer: nn.Module, text_config) -> int | None:
        """The window a layer attends within, or None for full attention.

        Read from the attention module when it states it (Qwen2, Gemma 3: None on full layers), else
        from the layer's type in ``text_config.layer_types``, else from ``text_config.sliding_window``
        (Mistral applies its window to every layer; Llama has none).
        """
        attention = self.attention(layer)
        if hasattr(attention, "sliding_window"):
            window = attention.sliding_window
            return None if window is None else int(window)
        layer_types = getattr(text_config, "layer_types", None)
        layer_idx = getattr(attention, "layer_idx", None)
        window = getattr(text_config, "sliding_window", None)
        if layer_types is not None and layer_idx is not None:
            return window if layer_types[layer_idx] == "sliding_attention" else None
        return None if window is None else int(window)
