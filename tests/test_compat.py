"""fastv on every supported transformers release: names read in one place, arguments found by what they are."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
import torch
import transformers
from packaging.version import Version
from transformers import DynamicCache

import fastv
from fastv import compat
from fastv.families import supported_families
from fastv.selfcheck.tiny import left_pad, prompt_ids

ROOT = Path(__file__).resolve().parents[1]


def _padded_batch(vlm) -> dict:
    prompts = [prompt_ids(2, [vlm.image_tokens], 3, seed=1), prompt_ids(6, [vlm.image_tokens], 5, seed=2)]
    ids, mask = left_pad(prompts)
    return {"input_ids": ids, "attention_mask": mask, "pixel_values": vlm.pixel_values(2)}


def test_cache_keyword_is_the_installed_releases():
    expected = "cache" if Version(transformers.__version__) >= Version("5.24") else "past_key_values"
    assert compat.cache_keyword() == expected


def test_find_cache_by_type_under_any_keyword():
    cache = DynamicCache()
    assert compat.find_cache({"cache": cache}) is cache
    assert compat.find_cache({"x": 1}, {"past_key_values": cache}) is cache
    assert compat.find_cache({"past_key_values": None, "use_cache": True}) is None


def test_positional_attention_mask_is_read(llava):
    """model(input_ids, pixel_values, attention_mask) positionally equals the keyword call on a padded batch."""
    model, batch = llava.model, _padded_batch(llava)
    fastv.apply(model, fastv.FastVConfig(k=2, ratio=0.5))
    try:
        with torch.no_grad():
            by_keyword = model(**batch).logits
            keep_keyword = fastv.last_keep(model)
            positional = model(batch["input_ids"], batch["pixel_values"], batch["attention_mask"]).logits
            keep_positional = fastv.last_keep(model)
    finally:
        fastv.remove(model)
    assert by_keyword.shape == positional.shape
    assert torch.equal(by_keyword, positional)
    for got, want in zip(keep_positional, keep_keyword, strict=True):
        assert torch.equal(got, want)


@pytest.mark.parametrize("version", ["5.25.1", "5.99.0"])
def test_newer_transformers_warns_once_naming_range_and_doctor(llava, monkeypatch, version):
    monkeypatch.setattr(compat, "transformers_version", lambda: Version(version))
    monkeypatch.setattr(compat, "_warned", set())
    with pytest.warns(
        UserWarning, match=rf"tested on transformers 5\.16\.1 to 5\.25\.0; you have {version}.*fastv doctor"
    ):
        fastv.apply(llava.model, fastv.FastVConfig())
    fastv.remove(llava.model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fastv.apply(llava.model, fastv.FastVConfig())  # once per process
    fastv.remove(llava.model)


@pytest.mark.parametrize("version", ["5.16.1", "5.22.2", "5.23.0", "5.24.0", "5.25.0", "5.25.0.dev0"])
def test_tested_releases_do_not_warn(llava, monkeypatch, version):
    monkeypatch.setattr(compat, "transformers_version", lambda: Version(version))
    monkeypatch.setattr(compat, "_warned", set())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fastv.apply(llava.model, fastv.FastVConfig())
    fastv.remove(llava.model)


def _pinned(lock: str, package: str) -> str:
    match = re.search(rf"^{package}==(\S+)$", (ROOT / "locks" / lock).read_text(), re.MULTILINE)
    assert match, f"{package} is not pinned in locks/{lock}"
    return match.group(1)


def test_declared_range_and_locks_are_the_tested_releases():
    """pyproject's floor is the oldest lock's transformers; the newest lock is the newest tested release."""
    floor = re.search(r'"transformers>=([\d.]+)', (ROOT / "pyproject.toml").read_text()).group(1)
    oldest, newest = compat.TESTED_TRANSFORMERS
    assert Version(floor) == Version(oldest)
    assert _pinned("oldest.txt", "transformers") == oldest
    assert _pinned("newest.txt", "transformers") == newest
    bound = re.search(r"^transformers<(\S+)$", (ROOT / "locks" / "vllm.in").read_text(), re.MULTILINE).group(1)
    assert Version(oldest) <= Version(_pinned("vllm.txt", "transformers")) < Version(bound)
    for lock in ("oldest.txt", "vllm.txt", "newest.txt"):
        assert Version(_pinned(lock, "torch")).base_version in compat.TESTED_TORCH, lock


def test_gemma4_video_switch_says_what_the_stock_model_does():
    """``gemma4_runs_videos`` is True exactly where the unpatched model encodes a video prompt (up to 5.18,
    nested; from 5.23, with frame counts); 5.19 to 5.22's forward drops the frame counts and raises."""
    from fastv.families.gemma4.selfcheck import gemma4_prompt, tiny_gemma4

    vlm = tiny_gemma4()
    try:
        vlm.model(**gemma4_prompt(vlm, n_images=1, frames=2))
        ran = True
    except ValueError as error:
        assert "num_frames_per_video" in str(error)
        ran = False
    assert compat.gemma4_runs_videos() == ran
    version = Version(transformers.__version__)
    assert ran == (version >= Version("5.23") or version < Version("5.19"))
    assert compat.gemma4_nests_videos() == (version < Version("5.19"))


def test_rotary_table_switch_says_what_the_flop_counter_sees():
    """``rotary_table_is_matmul`` is True exactly where FlopCounterMode counts the rotary table (up to 5.18:
    2 FLOPs per position and inverse frequency); from 5.19 the table is a broadcast multiply it does not see."""
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    rotary = LlamaRotaryEmbedding(LlamaConfig(hidden_size=64, num_attention_heads=4, head_dim=16))
    positions = torch.arange(18)[None]
    with FlopCounterMode(display=False) as counter:
        rotary(torch.zeros(1, 18, 64), positions)
    assert counter.get_total_flops() == (2 * 18 * 8 if compat.rotary_table_is_matmul(rotary) else 0)


def test_hunyuan_vl_rotation_is_xd_rope_on_every_release():
    """The HunYuan-VL adapter's rotary (``compat.multimodal_rotary`` where the attention mixes the axes) on the stock rotary tables (per-axis in 5.16, folded after) rotates as XD-RoPE,
    built here by hand: rotary dim j (of cos's duplicated halves) turns by axis a(j)'s position times
    frequency j mod d/2, a(j) being the ``mrope_section`` chunk (2 * section wide) that holds j."""
    from fastv.families.hunyuan_vl.selfcheck import tiny_hunyuan_vl
    from fastv.selfcheck.reference import language_model

    lm = language_model(tiny_hunyuan_vl(layers=1).model)
    sections = lm.config.rope_parameters["mrope_section"]
    n, d = 6, lm.layers[0].self_attn.head_dim
    positions = torch.stack([torch.arange(n) * (axis + 1) + axis for axis in range(len(sections))])[:, None]
    tables = lm.rotary_emb(torch.zeros(1, n, lm.config.hidden_size), position_ids=positions)
    states = torch.randn(1, 2, n, d)
    rotated = supported_families()["hunyuan_vl"].rotary(lm.layers[0].self_attn)(states, states, *tables)[0]

    axis_of = torch.repeat_interleave(torch.arange(len(sections)), 2 * torch.tensor(sections))
    angles = positions[axis_of, 0].T.float() * lm.rotary_emb.inv_freq.repeat(2)  # (n, d)
    half = torch.cat((-states[..., d // 2 :], states[..., : d // 2]), dim=-1)
    torch.testing.assert_close(rotated, states * angles.cos() + half * angles.sin(), rtol=0, atol=1e-5)


def test_loading_switches_mark_the_releases_read_from_the_wheels():
    """The tensor-parallel rewrite (5.19) and PerceptionLM's own vision configs (5.20) sit where the 5.16.1 to
    5.25.0 wheels put them."""
    version = Version(transformers.__version__)
    assert compat.stock_tensor_parallel_runs_vlms() == (version >= Version("5.19"))
    assert compat.perception_lm_forces_timm_tower() == (version < Version("5.20"))
