"""Qwen2.5-Omni and Qwen3-Omni(-MoE) thinkers: text, audio, images and videos in one prompt.

Image and video tokens are pruned; audio tokens never are (they are not visual tokens). Positions are
3-D M-RoPE with audio tokens and video time steps (``video_second_per_grid``); Qwen3-Omni adds q/k norms,
interleaved M-RoPE and DeepStack. With ``use_audio_in_video`` a video's tokens are interleaved with its
soundtrack's audio tokens.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

import fastv
from fastv.errors import UnsupportedModelError
from fastv.families import Family, family_for
from fastv.families.qwen_omni.selfcheck import (
    AUDIO_TOKEN,
    omni_batch,
    omni_positions,
    omni_prompt,
    tiny_qwen2_5_omni,
    tiny_qwen3_omni,
)
from fastv.selfcheck.checks import compare_with_reference
from fastv.selfcheck.reference import decoder_inputs, language_model
from fastv.selfcheck.tiny import IMAGE_TOKEN, VIDEO_TOKEN
from tests.families.equivalence import (
    assert_batch_equals_rows_alone,
    assert_batch_matches_singles,
    assert_deepstack_matters,
    assert_full_width_batch_matches_singles,
    assert_matches_reference,
    assert_ratio_zero_identical,
    assert_remove_restores,
    prefill_with_fastv,
)

BUILDERS = {"qwen2_5_omni_thinker": tiny_qwen2_5_omni, "qwen3_omni_moe_thinker": tiny_qwen3_omni}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def omni(request):
    return BUILDERS[request.param]()


def _ids(inputs: dict) -> torch.Tensor:
    return inputs["input_ids"][0]


def _prunable(inputs: dict) -> torch.Tensor:
    return torch.isin(_ids(inputs), torch.tensor([IMAGE_TOKEN, VIDEO_TOKEN]))


def _audio(inputs: dict) -> torch.Tensor:
    return (_ids(inputs) == AUDIO_TOKEN).nonzero().squeeze(1)


def _check(omni, inputs: dict, config: fastv.FastVConfig, segments: torch.Tensor | None = None, steps: int = 8):
    """FastV against the cache-free reference (prefill and ``steps`` cached decode steps, kept set from eager
    attention maps), and every audio position kept. Returns the comparison."""
    result = compare_with_reference(
        omni.model, inputs, config, _prunable(inputs), omni_positions(omni, inputs), segments=segments, steps=steps
    )
    assert_matches_reference(result)
    audio = _audio(inputs)
    assert bool(torch.isin(audio, result.kept.cpu()).all()), "an audio token was dropped"
    return result


def test_tiny_thinker_reads_audio_images_and_videos(omni):
    """The audio tokens really carry the audio tower's features, and (Qwen3-Omni) DeepStack rows exist."""
    inputs = omni_prompt(omni)
    ids, audio = _ids(inputs), _audio(inputs)
    assert audio.numel() >= 5 and int((ids == IMAGE_TOKEN).sum()) == 6 and int((ids == VIDEO_TOKEN).sum()) == 8
    embeds, deepstack = decoder_inputs(omni.model, **inputs)
    with torch.no_grad():
        placeholder = omni.model.get_input_embeddings()(torch.tensor(AUDIO_TOKEN))
    assert float((embeds[0, audio] - placeholder).abs().amax(dim=-1).min()) > 0.1
    if omni.model.config.model_type == "qwen3_omni_moe_thinker":
        mask, features = deepstack
        assert len(features) == 3 and torch.equal(mask.cpu(), _prunable(inputs))
    else:
        assert deepstack is None


def test_ratio_zero_is_identical_to_unpatched_model(omni):
    assert_ratio_zero_identical(omni.model, omni_prompt(omni))


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("rank", ["last_token", "mean", "random"])
def test_audio_image_and_video_match_the_reference(omni, k, rank):
    _check(omni, omni_prompt(omni, video_grid=(4, 4, 4)), fastv.FastVConfig(k=k, ratio=0.5, rank=rank))


@pytest.mark.parametrize("rank", ["last_token", "random"])
def test_audio_tokens_are_never_dropped(omni, rank):
    """Audio and an image, 90% of the image dropped: every audio token stays, and the outputs equal the reference."""
    inputs = omni_prompt(omni, video_grid=None, order=("image", "audio"))
    ids = _ids(inputs)
    result = _check(omni, inputs, fastv.FastVConfig(k=2, ratio=0.9, rank=rank))
    image = (ids == IMAGE_TOKEN).nonzero().squeeze(1)
    assert int(torch.isin(image, result.kept.cpu()).sum()) == 1 and result.kept.numel() == ids.numel() - 5


def test_an_adapter_that_ranked_audio_would_be_caught(omni, monkeypatch):
    """The audio check above is not vacuous: an adapter counting audio tokens as candidates drops some."""
    family = family_for(omni.model)
    audio_id = omni.model.config.audio_token_id
    monkeypatch.setattr(
        family, "prunable_mask", lambda model, ids: Family.prunable_mask(family, model, ids) | (ids == audio_id)
    )
    inputs = omni_prompt(omni, video_grid=None, order=("image", "audio"))
    _, kept = prefill_with_fastv(omni.model, inputs, fastv.FastVConfig(k=2, ratio=0.9, rank="random"))
    assert not bool(torch.isin(_audio(inputs), kept).all())


def _frames(inputs: dict) -> torch.Tensor:
    """(n,) segment ids written out by hand: the image is 0, each video frame (4 tokens, in order) its own."""
    ids = _ids(inputs)
    segments = torch.full_like(ids, -1)
    segments[ids == IMAGE_TOKEN] = 0
    video = (ids == VIDEO_TOKEN).nonzero().squeeze(1)
    segments[video] = 1 + torch.arange(video.numel()) // 4
    return segments


@pytest.mark.parametrize("audio_in_video", [False, True])
def test_video_with_or_without_its_soundtrack(omni, audio_in_video):
    """use_audio_in_video interleaves the video's tokens with its audio tokens (several runs of video tokens):
    the global and the per-frame budget both equal the reference, and no audio token is dropped."""
    inputs = omni_prompt(omni, video_grid=(4, 4, 4), audio_in_video=audio_in_video)
    video = _ids(inputs) == VIDEO_TOKEN
    runs = int((video & ~torch.cat([torch.tensor([False]), video[:-1]])).sum())
    assert (runs > 1) == audio_in_video
    assert (_audio(inputs).numel() > 0) and bool(inputs.get("use_audio_in_video", False)) == audio_in_video
    _check(omni, inputs, fastv.FastVConfig(k=2, ratio=0.5), steps=4)
    per_frame = fastv.FastVConfig(k=1, ratio=0.75, rank="mean", budget="per_image")
    _check(omni, inputs, per_frame, segments=_frames(inputs), steps=4)


def test_padded_batch_matches_single_runs(omni):
    """Audio clips of different lengths (one sample without audio, one without video) in one left-padded
    batch: the same tokens and kept positions as each sample alone."""
    singles = [
        omni_prompt(omni, seed=0),
        omni_prompt(omni, (1, 8, 4), None, audio_frames=24, seed=1, before=5, order=("image", "audio")),
        omni_prompt(omni, (1, 2, 2), (2, 4, 4), audio_frames=None, seed=2, before=2),
    ]
    batch = omni_batch(singles)
    assert batch["input_features"].shape[0] == 2 and batch["feature_attention_mask"].sum(-1).tolist() == [40, 24]
    assert_batch_matches_singles(omni.model, singles, batch, fastv.FastVConfig(k=1, ratio=0.5))
    assert_batch_matches_singles(omni.model, singles, batch, fastv.FastVConfig(k=2, ratio=0.5, budget="per_image"))


@pytest.mark.parametrize("k", [1, 2])
def test_a_batch_whose_longest_row_has_no_visual_tokens(omni, k):
    """An audio-only longest row drops nothing, so the pruned batch is as wide as the full one: Qwen3-Omni's
    DeepStack rows must still go to the kept visual tokens of the other row."""
    singles = [
        omni_prompt(omni, (1, 4, 6), (2, 4, 4), audio_frames=None, seed=1, before=2),
        omni_prompt(omni, None, None, audio_frames=40, seed=2, before=80),
    ]
    assert singles[1]["input_ids"].shape[1] > singles[0]["input_ids"].shape[1]
    config = fastv.FastVConfig(k=k, ratio=0.5)
    assert_batch_equals_rows_alone(omni.model, singles, omni_batch(singles), config, text_rows=(1,))


def test_a_batch_whose_longest_row_keeps_every_visual_token(omni):
    singles = [
        omni_prompt(omni, (1, 8, 4), (2, 4, 4), audio_frames=24, seed=1, before=2),
        omni_prompt(omni, (1, 4, 6), None, audio_frames=None, seed=2, before=60),
    ]
    assert_full_width_batch_matches_singles(omni.model, singles, omni_batch(singles), ks=(1, 2))


def test_deepstack_matters_to_the_reference():
    """Qwen3-Omni: without the DeepStack rows the pruned logits differ, so the checks above cannot pass vacuously."""
    vlm = tiny_qwen3_omni()
    inputs = omni_prompt(vlm)
    assert_deepstack_matters(vlm.model, inputs, omni_positions(vlm, inputs))


def test_remove_restores_the_model(omni):
    assert_remove_restores(omni.model, omni_prompt(omni), fastv.FastVConfig(k=1, ratio=0.75))
    assert "_deepstack_process" not in language_model(omni.model).__dict__


@pytest.mark.parametrize(
    ("model_type", "thinker"), [("qwen2_5_omni", "qwen2_5_omni_thinker"), ("qwen3_omni_moe", "qwen3_omni_moe_thinker")]
)
def test_full_omni_models_are_refused_with_the_reason(model_type, thinker):
    """The talker reads the thinker's hidden states at every prompt position; FastV points to the thinker."""

    class Stub(nn.Module):
        config = SimpleNamespace(model_type=model_type)

    with pytest.raises(
        UnsupportedModelError, match=rf"model_type='{model_type}'\): the full Omni model .+talker"
    ) as error:
        fastv.apply(Stub(), fastv.FastVConfig())
    assert "fastv.apply(model.thinker, config)" in str(error.value) and thinker in str(error.value)
