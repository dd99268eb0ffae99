"""Plots, keep pictures and the two CLIs, on tiny models (saved with a local processor for the CLI)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from fastv.analysis import StudyReport, analyze
from fastv.analysis.draw import draw_keep, render_view
from fastv.analysis.keep import keep_picture
from fastv.cli import main
from fastv.config import FastVConfig
from fastv.families.layout import View
from fastv.families.llava.selfcheck import llava_next_image, tiny_llava, tiny_llava_next
from fastv.selfcheck.tiny import IMAGE_TOKEN, prompt_ids
from tests.analysis.saved import save_tiny_llava, save_tiny_llava_next


def _png_ok(path) -> None:
    assert path.stat().st_size > 2000
    with Image.open(path) as im:
        assert im.width > 100 and im.height > 100
        assert np.asarray(im.convert("L")).std() > 1  # not blank


def _image(size=(20, 44), seed=0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (*size, 3), dtype=np.uint8))


def test_plots_written(tmp_path):
    from fastv.analysis.plots import plot_allocation, plot_attention_map, plot_efficiency

    vlm = tiny_llava(layers=3)
    ids = prompt_ids(3, [16], 4)[None]
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "pixel_values": vlm.pixel_values(1)}
    samples = [analyze(vlm.model, inputs, max_new_tokens=3, map_layers=(0, 2), map_bins=16) for _ in range(2)]
    report = StudyReport(samples)
    assert torch.allclose(report.allocation.sum(-1), torch.ones(3).double(), atol=1e-5)
    for path in (
        plot_allocation(report, tmp_path / "a.png"),
        plot_efficiency(report, tmp_path / "e.png"),
        plot_attention_map(samples[0], 2, tmp_path / "m.png"),
    ):
        _png_ok(path)
    data = json.loads(json.dumps(report.to_dict()))
    assert len(data["mean"]["allocation"]) == 3 and data["samples"][0]["maps"]["2"]


def test_render_view_dims_dropped_patches():
    frame = Image.new("RGB", (8, 8), (200, 200, 200))
    view = View("v", 0, (0, 1), ((0, 0, 4, 8), (4, 0, 8, 8)))
    out = np.asarray(render_view(frame, view, kept={0}))
    left, right = out[:, : out.shape[1] // 2], out[:, out.shape[1] // 2 :]
    assert right[10:-10, 10:-10].mean() < 0.6 * left[10:-10, 10:-10].mean()


def test_keep_picture_llava_next_unpadded(tmp_path):
    vlm = tiny_llava_next(layers=3)
    tiles, count = llava_next_image(vlm, (20, 44))
    ids = prompt_ids(2, [count], 3)[None]
    inputs = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "pixel_values": tiles[None],
        "image_sizes": torch.tensor([[20, 44]]),
    }
    configs = [FastVConfig(k=2, ratio=0.5), FastVConfig(k=2, ratio=0.5, rank="random")]
    picture = keep_picture(vlm.model, None, inputs, [_image()], configs)
    (layout,) = picture.layouts
    assert layout.n_tokens == count
    for label in picture.selections:
        kept = picture.kept_tokens(label, 0)
        assert len(kept) == count - count // 2  # every kept image token is placed on the image
    assert set(picture.selections) == {"FastV (last_token), K=2, R=50%", "random, K=2, R=50%"}
    _png_ok(draw_keep(picture, tmp_path / "keep.png", title="t"))


@pytest.fixture(scope="module")
def saved_llava(tmp_path_factory):
    return save_tiny_llava(tmp_path_factory.mktemp("llava"))


def test_cli_analyze_folder(saved_llava, tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    for seed in range(2):
        _image((24, 24), seed).save(images / f"{seed}.png")
    out = tmp_path / "out"
    code = main(
        [
            *(
                "analyze",
                "--model",
                str(saved_llava),
                "--image",
                str(images),
                "--prompt",
                "what shape is in the image ?",
            ),
            "--max-new-tokens",
            "3",
            "--map-bins",
            "8",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0, capsys.readouterr().err
    data = json.loads((out / "analysis.json").read_text())
    assert data["n_samples"] == 2 and len(data["mean"]["allocation"]) == 3
    for row in data["samples"][0]["shares"]:
        for query in row:
            assert abs(sum(query) - 1) < 1e-5
    for name in ("allocation.png", "efficiency.png", "attention_map_layer0.png", "attention_map_layer2.png"):
        _png_ok(out / name)


def test_cli_analyze_jsonl_last_query(saved_llava, tmp_path):
    _image().save(tmp_path / "a.png")
    (tmp_path / "s.jsonl").write_text(json.dumps({"image": "a.png", "prompt": "describe it"}) + "\n")
    code = main(
        [
            *("analyze", "--model", str(saved_llava), "--image", str(tmp_path / "s.jsonl"), "--queries", "last"),
            "--max-new-tokens",
            "0",
            "--map-layers",
            "--out",
            str(tmp_path / "o"),
            "--no-progress",
        ]
    )
    assert code == 0
    assert json.loads((tmp_path / "o" / "analysis.json").read_text())["samples"][0]["query_positions"]


def test_cli_show_keep_llava(saved_llava, tmp_path, capsys):
    _image().save(tmp_path / "a.png")
    _image(seed=1).save(tmp_path / "b.png")
    out = tmp_path / "keep.png"
    code = main(
        [
            *("show-keep", "--model", str(saved_llava), "--image", str(tmp_path / "a.png"), str(tmp_path / "b.png")),
            "--prompt",
            "<image> <image> what colour ?",
            "--k",
            "1",
            "--ratio",
            "0.75",
            "--out",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "kept 8/32 image tokens" in printed and "random" in printed
    _png_ok(out)


def test_cli_show_keep_llava_next(tmp_path, capsys):
    model = save_tiny_llava_next(tmp_path / "next")
    _image((44, 20)).save(tmp_path / "tall.png")
    out = tmp_path / "keep.png"
    code = main(
        [
            *("show-keep", "--model", str(model), "--image", str(tmp_path / "tall.png"), "--prompt", "describe it"),
            "--out",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    _png_ok(out)


def test_cli_errors_are_messages(saved_llava, tmp_path, capsys):
    missing = str(tmp_path / "missing.png")
    code = main(["analyze", "--model", str(saved_llava), "--image", missing, "--prompt", "x", "--out", str(tmp_path)])
    assert code == 2 and "neither an image" in capsys.readouterr().err


def test_keep_picture_qwen2_vl_image_and_video(tmp_path):
    from fastv.families.qwen_vl.selfcheck import tiny_qwen2_vl
    from fastv.selfcheck.tiny import VIDEO_TOKEN, mm_prompt

    vlm = tiny_qwen2_vl(layers=3)
    image, image_grid, n_image = vlm.visual((1, 4, 6))
    video, video_grid, n_video = vlm.visual((2, 4, 4), seed=1)
    ids, types = mm_prompt(3, [(IMAGE_TOKEN, n_image), (VIDEO_TOKEN, n_video)], 4)
    inputs = {
        "input_ids": ids[None],
        "attention_mask": torch.ones(1, ids.numel(), dtype=torch.long),
        "mm_token_type_ids": types[None],
        "pixel_values": image,
        "image_grid_thw": image_grid,
        "pixel_values_videos": video,
        "video_grid_thw": video_grid,
    }
    frames = [_image((16, 16), seed) for seed in range(4)]
    configs = [FastVConfig(k=1, ratio=0.5), FastVConfig(k=1, ratio=0.5, rank="random")]
    picture = keep_picture(vlm.model, None, inputs, [_image((16, 24))], configs, videos=[frames])
    image_layout, video_layout = picture.layouts
    assert (image_layout.n_tokens, video_layout.n_tokens) == (n_image, n_video)
    assert [v.frame for v in video_layout.views] == [0, 2]
    for label, kept in picture.selections.items():
        placed = len(picture.kept_tokens(label, 0)) + len(picture.kept_tokens(label, 1))
        assert placed == len(kept & set(torch.cat(picture.positions).tolist())) == (n_image + n_video) // 2
    _png_ok(draw_keep(picture, tmp_path / "qwen.png"))


def test_with_placeholders_fills_missing_images():
    from types import SimpleNamespace

    from fastv.analysis.report import with_placeholders

    proc = SimpleNamespace(image_token="<image>")
    assert with_placeholders(proc, "<image> what ?", 2) == "<image> <image> what ?"
    assert with_placeholders(proc, "what ?", 2) == "what ?"  # none: the loader adds them (or a chat template)
    assert with_placeholders(proc, "<image> <image> what ?", 2) == "<image> <image> what ?"


def test_a_vqa_dataset_jsonl_is_read_as_study_samples(tmp_path):
    """``fastv eval``'s dataset records ({image, question, answer}) work as analysis input directly."""
    from fastv.analysis.report import samples_from

    lines = [{"image": "a.png", "question": "what shape?", "answer": "circle", "id": "q1"}, {"image": "b.png"}]
    (tmp_path / "d.jsonl").write_text(json.dumps(lines[0]) + "\n")
    (sample,) = samples_from(str(tmp_path / "d.jsonl"), None)
    assert (sample.images, sample.prompt, sample.id) == ((tmp_path / "a.png",), "what shape?", "q1")
    (tmp_path / "e.jsonl").write_text(json.dumps(lines[1]) + "\n")
    with pytest.raises(
        ValueError, match=r"e\.jsonl:1: expected a JSON object with 'image' and 'prompt' \(or 'question'\)"
    ):
        samples_from(str(tmp_path / "e.jsonl"), None)
