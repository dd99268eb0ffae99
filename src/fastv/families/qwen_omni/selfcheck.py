"""The self-check of this family: its tiny random-weight model(s) built from a config (no download),
its prompt builder(s) and its doctor case(s)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fastv.selfcheck.case import Case, case_of, on
from fastv.selfcheck.prompts import continued_positions
from fastv.selfcheck.tiny import (
    IMAGE_TOKEN,
    QWEN3_VISION,
    QWEN25_VISION,
    VIDEO_TOKEN,
    TinyQwenVL,
    grid_vlm,
    left_pad,
    qwen_text_kwargs,
    seeded,
)

AUDIO_TOKEN = 124  # the thinkers' <|AUDIO|> placeholder, between audio start / end markers
AUDIO_START_TOKEN = 125
AUDIO_END_TOKEN = 126


@dataclass
class TinyQwenOmni(TinyQwenVL):
    """A tiny Omni thinker: Qwen-VL style patches and grids, plus log-mel audio features."""

    mel_bins: int = 8

    def audio(self, frames: int, seed: int = 0) -> tuple[torch.Tensor, int]:
        """Log-mel features (mel_bins, frames) of one clip and the number of audio tokens the model makes of it
        (counted by its own audio tower; the thinker's ``get_audio_features``, which every release has)."""
        generator = torch.Generator().manual_seed(seed)
        features = torch.randn(self.mel_bins, frames, generator=generator)
        with torch.no_grad():
            out = self.model.get_audio_features(features[None], torch.ones(1, frames, dtype=torch.long))
        return features, int(out.last_hidden_state.shape[0])


def _omni_audio(**extra) -> dict:
    return {
        "num_mel_bins": 8,
        "encoder_layers": 1,
        "encoder_attention_heads": 2,
        "encoder_ffn_dim": 64,
        "d_model": 32,
        "max_source_positions": 64,
        "output_dim": 64,
        **extra,
    }


def _omni(name: str, attn_implementation: str, seed: int, **config) -> TinyQwenOmni:
    markers = {"audio_start_token_id": AUDIO_START_TOKEN, "audio_end_token_id": AUDIO_END_TOKEN}
    vlm = grid_vlm(name, attn_implementation, seed, audio_token_id=AUDIO_TOKEN, **markers, **config)
    return TinyQwenOmni(vlm.model, vlm.patch_dim, vlm.merge)


@seeded
def tiny_qwen2_5_omni(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0) -> TinyQwenOmni:
    """The Qwen2.5-Omni thinker: Qwen2.5-VL's decoder, vision tower and M-RoPE, plus a Whisper-style audio
    tower (a clip of f mel frames gives ((f - 1) // 2 + 1 - 2) // 2 + 1 audio tokens)."""
    return _omni(
        "Qwen2_5OmniThinker",
        attn_implementation,
        seed,
        text_config=qwen_text_kwargs(layers),
        vision_config=dict(QWEN25_VISION),
        audio_config=_omni_audio(),
    )


@seeded
def tiny_qwen3_omni(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0) -> TinyQwenOmni:
    """The Qwen3-Omni-MoE thinker (4 experts, 2 per token): Qwen3-VL's q/k norms, interleaved M-RoPE and
    DeepStack (features added after decoder layers 0-2), plus a conv-downsampling audio tower."""
    text = qwen_text_kwargs(layers)
    text["head_dim"] = 16
    text["rope_parameters"] = {**text["rope_parameters"], "mrope_section": [4, 2, 2], "interleaved": True}
    text |= {"num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32, "decoder_sparse_step": 1}
    return _omni(
        "Qwen3OmniMoeThinker",
        attn_implementation,
        seed,
        text_config=text,
        vision_config=dict(QWEN3_VISION),
        audio_config=_omni_audio(downsample_hidden_size=8),
    )


VISION_START, VISION_END = 122, 123  # the tiny thinkers' vision markers (``tiny.grid_vlm``)


def omni_prompt(
    vlm: TinyQwenOmni,
    image_grid=(1, 4, 6),
    video_grid=(2, 4, 4),
    audio_frames: int | None = 40,
    seed: int = 0,
    before: int = 3,
    after: int = 4,
    order: tuple[str, ...] = ("audio", "image", "video"),
    audio_in_video: bool = False,
) -> dict:
    """Text, then an audio clip, an image and a video (each between its start / end markers, as the Omni
    processors write them, in ``order``; None leaves one out), then text. Videos take 1 second per
    temporal patch (``video_second_per_grid``).

    ``audio_in_video``: the clip is the video's soundtrack instead (``use_audio_in_video=True``): the
    video's tokens and the clip's are interleaved in time, as ``interleave_audio`` lays them out.
    """
    generator = torch.Generator().manual_seed(seed)

    def text(n: int) -> list[int]:
        return torch.randint(3, IMAGE_TOKEN, (n,), generator=generator).tolist()

    ids, inputs, n_audio = text(before), {}, 0
    if audio_frames is not None:
        features, n_audio = vlm.audio(audio_frames, seed=seed + 200)
        inputs |= {"input_features": features[None], "feature_attention_mask": torch.ones(1, audio_frames).long()}
    for part in order:
        if part == "audio" and audio_frames is not None and not audio_in_video:
            ids += [AUDIO_START_TOKEN] + [AUDIO_TOKEN] * n_audio + [AUDIO_END_TOKEN] + text(1)
        elif part == "image" and image_grid is not None:
            patches, grid, count = vlm.visual(image_grid, seed=seed)
            ids += [VISION_START] + [IMAGE_TOKEN] * count + [VISION_END] + text(1)
            inputs |= {"pixel_values": patches, "image_grid_thw": grid}
        elif part == "video" and video_grid is not None:
            patches, grid, count = vlm.visual(video_grid, seed=seed + 100)
            if audio_in_video:
                tokens = [AUDIO_START_TOKEN, *interleave_audio(vlm, video_grid, n_audio), AUDIO_END_TOKEN]
            else:
                tokens = [VIDEO_TOKEN] * count
            ids += [VISION_START, *tokens, VISION_END, *text(1)]
            inputs |= {"pixel_values_videos": patches, "video_grid_thw": grid, "video_second_per_grid": torch.ones(1)}
    if audio_in_video:
        inputs["use_audio_in_video"] = True
    ids = torch.tensor(ids + text(after))[None]
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), **inputs}


def interleave_audio(vlm: TinyQwenOmni, video_grid, n_audio: int, second_per_grid: float = 1.0) -> list[int]:
    """A video's tokens interleaved with its soundtrack's ``n_audio`` tokens, in time order, as the Omni
    processors write them: Qwen2.5-Omni in chunks of ``seconds_per_chunk`` (video then audio per chunk),
    Qwen3-Omni token by token (a video token first on a tie)."""
    config = vlm.model.config
    t, h, w = video_grid
    per_patch = h * w // vlm.merge**2
    video = [frame * second_per_grid * config.position_id_per_seconds for frame in range(t) for _ in range(per_patch)]
    audio = list(range(n_audio))
    out: list[int] = []
    if config.model_type == "qwen2_5_omni_thinker":
        per_chunk = int(config.position_id_per_seconds * config.seconds_per_chunk)
        chunked = vlm.model.get_chunked_index
        video_chunks = chunked(torch.tensor(video), per_chunk, 0)
        audio_chunks = chunked(torch.tensor(audio), per_chunk, 0)
        for j in range(max(len(video_chunks), len(audio_chunks))):
            if j < len(video_chunks):
                out += [VIDEO_TOKEN] * (video_chunks[j][1] - video_chunks[j][0])
            if j < len(audio_chunks):
                out += [AUDIO_TOKEN] * (audio_chunks[j][1] - audio_chunks[j][0])
        return out
    v = a = 0
    while v < len(video) and a < len(audio):
        if video[v] <= audio[a]:
            out.append(VIDEO_TOKEN)
            v += 1
        else:
            out.append(AUDIO_TOKEN)
            a += 1
    return out + [VIDEO_TOKEN] * (len(video) - v) + [AUDIO_TOKEN] * (len(audio) - a)


def omni_batch(singles: list[dict]) -> dict:
    """A left-padded batch of ``omni_prompt``s: every sample's images, videos and audio clips concatenated in
    order (clips right-padded to the longest, with their feature_attention_mask)."""
    ids, mask = left_pad([s["input_ids"][0] for s in singles])
    batch = {"input_ids": ids, "attention_mask": mask}
    for key in ("pixel_values", "image_grid_thw", "pixel_values_videos", "video_grid_thw", "video_second_per_grid"):
        parts = [s[key] for s in singles if key in s]
        if parts:
            batch[key] = torch.cat(parts)
    clips = [s for s in singles if "input_features" in s]
    if clips:
        frames = max(s["input_features"].shape[-1] for s in clips)
        pad = torch.nn.functional.pad
        batch["input_features"] = torch.cat(
            [pad(s["input_features"], (0, frames - s["input_features"].shape[-1])) for s in clips]
        )
        batch["feature_attention_mask"] = torch.cat(
            [pad(s["feature_attention_mask"], (0, frames - s["feature_attention_mask"].shape[-1])) for s in clips]
        )
    return batch


def omni_positions(vlm: TinyQwenOmni, inputs: dict):
    """positions(n_total) for an Omni thinker, from its own get_rope_index (audio lengths from the
    feature_attention_mask, video time steps from video_second_per_grid)."""
    lengths = inputs["feature_attention_mask"].sum(-1) if "feature_attention_mask" in inputs else None
    prompt, _ = vlm.model.get_rope_index(
        inputs["input_ids"],
        inputs.get("image_grid_thw"),
        inputs.get("video_grid_thw"),
        inputs["attention_mask"],
        bool(inputs.get("use_audio_in_video", False)),
        lengths,
        inputs.get("video_second_per_grid"),
    )
    return continued_positions(prompt)


def _omni_case(vlm, inputs: dict) -> Case:
    """Qwen Omni thinkers: 3-D positions from the thinker's get_rope_index (audio lengths, video time steps)."""
    return case_of(vlm, inputs, positions=omni_positions(vlm, inputs))


# Audio, image and video in one prompt: audio tokens are never candidates.
CASES = {
    "qwen2_5_omni_thinker": on(tiny_qwen2_5_omni, omni_prompt, _omni_case),
    "qwen3_omni_moe_thinker": on(tiny_qwen3_omni, omni_prompt, _omni_case),
}
