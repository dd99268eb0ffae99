"""Token -> image-region layouts of Aya Vision / Command A Vision, Ovis2, Gemma 4, FastVLM, PerceptionLM,
and Idefics2's refusal.

Where a PIL image processor exists, a red marker goes through it and the model's own token-forming code
(pixel shuffle, pooler, flattening); tokens that see red must be exactly those whose boxes overlap it.
Command A Vision's and PerceptionLM's processors need torchvision (not a dependency): their tiling is
checked against the processor's own function (read from its source) or a stand-in canvas choice.
"""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from fastv.families.layout import LayoutRequest, layouts
from fastv.selfcheck.tiny import IMAGE_TOKEN, VIDEO_TOKEN
from tests.analysis.test_layout import PATCH, _check_view, _marked_image

TILED = [((20, 44), (28, 4, 40, 16)), ((16, 16), (0, 0, 8, 8)), ((40, 18), (2, 24, 10, 36))]


def _shuffled_redness(tiles: torch.Tensor) -> torch.Tensor:
    """Redness per token of 16x16 tiles whose 4x4-pixel patches are merged 2x2, row-major."""
    red = tiles[:, 0] - tiles[:, 1]
    return torch.nn.functional.avg_pool2d(red[:, None], 2 * PATCH)[:, 0].flatten()


@pytest.mark.parametrize(("size", "marker"), TILED)
def test_aya_vision_tiles_then_thumbnail(size, marker):
    from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import GotOcr2ImageProcessorPil

    from fastv.families.cohere.selfcheck import tiny_cohere_vlm

    config = tiny_cohere_vlm(layers=1).model.config
    processor = GotOcr2ImageProcessorPil(size={"height": 16, "width": 16}, crop_to_patches=True, max_patches=4)
    batch = processor(_marked_image(size, marker), return_tensors="pt")
    tiles = batch["pixel_values"]
    redness = _shuffled_redness(tiles)
    (layout,) = layouts(LayoutRequest(config, [size], processor, inputs=dict(batch)))
    assert layout.n_tokens == tiles.shape[0] * 4 and not layout.unplaced
    assert len(layout.views) == tiles.shape[0] and (len(layout.views) == 1 or "thumbnail" in layout.views[-1].label)
    for view in layout.views:
        _check_view(view, redness, marker, peak=float(redness.max()))


def test_aya_vision_follows_the_calls_tiling_not_the_processors_default():
    """Aya's processor passes crop_to_patches=True; pixel_values of one tile per image mean untiled."""
    from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import GotOcr2ImageProcessorPil

    from fastv.families.cohere.selfcheck import tiny_cohere_vlm

    config = tiny_cohere_vlm(layers=1).model.config
    processor = GotOcr2ImageProcessorPil(size={"height": 16, "width": 16}, max_patches=4)  # crop_to_patches False
    (tiled,) = layouts(LayoutRequest(config, [(20, 44)], processor))
    assert len(tiled.views) == 3 and tiled.views[-1].label == "image 1 thumbnail"  # 2 x 1 tiles: Aya's default
    (plain,) = layouts(LayoutRequest(config, [(20, 44)], processor, inputs={"pixel_values": torch.zeros(1, 3, 16, 16)}))
    assert plain.n_tokens == 4 and plain.views[0].boxes[3] == (22.0, 10.0, 44.0, 20.0)
    with pytest.raises(Exception, match="pixel_values hold 2 tiles"):
        layouts(LayoutRequest(config, [(20, 44)], processor, inputs={"pixel_values": torch.zeros(2, 3, 16, 16)}))


@pytest.mark.parametrize("variant", ["aya_vision", "cohere2_vision"])
def test_cohere_pixel_shuffle_is_row_major(variant):
    from fastv.families.cohere.selfcheck import tiny_cohere_vlm

    vlm = tiny_cohere_vlm(layers=1, variant=variant)
    rows, cols = torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij")
    coords = torch.stack([rows, cols], -1).reshape(1, 16, 2)  # row-major patches
    merged = vlm.model.model.multi_modal_projector.pixel_shuffle(coords).reshape(4, -1, 2)
    for token in range(4):
        assert set(merged[token, :, 0].tolist()) == {2 * (token // 2), 2 * (token // 2) + 1}
        assert set(merged[token, :, 1].tolist()) == {2 * (token % 2), 2 * (token % 2) + 1}


def _cohere2_vision_processor_canvas():
    """``get_optimal_tiled_canvas`` of transformers' Cohere2Vision image processor, read from its source
    (the module imports torchvision, which is not installed)."""
    import functools

    import transformers

    path = f"{transformers.__path__[0]}/models/cohere2_vision/image_processing_cohere2_vision.py"
    tree = ast.parse(Path(path).read_text())
    wanted = {"get_all_supported_aspect_ratios", "get_optimal_tiled_canvas"}
    module = ast.Module([n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in wanted], [])
    scope = {"np": np, "lru_cache": functools.lru_cache}
    exec(compile(module, path, "exec"), scope)
    return scope["get_optimal_tiled_canvas"]


def test_cohere2_vision_canvas_is_the_processors():
    from fastv.families.cohere import cohere2_vision_canvas

    reference = _cohere2_vision_processor_canvas()
    for h in range(8, 140, 7):
        for w in range(8, 140, 9):
            for high in (1, 2, 4, 12):
                assert tuple(cohere2_vision_canvas((h, w), (32, 32), 1, high)) == tuple(
                    reference((h, w), (32, 32), 1, high)
                ), (h, w, high)


def test_cohere2_vision_tiles_then_thumbnail():
    from fastv.families.cohere.selfcheck import tiny_cohere_vlm

    config = tiny_cohere_vlm(layers=1, variant="cohere2_vision").model.config
    processor = SimpleNamespace(size={"height": 16, "width": 16}, min_patches=1, max_patches=12, crop_to_patches=True)
    (wide, small) = layouts(LayoutRequest(config, [(16, 64), (12, 12)], processor))
    labels = [f"image 1 tile 1,{c}" for c in range(1, 5)] + ["image 1 thumbnail"]
    assert [v.label for v in wide.views] == labels  # 4 x 1 tiles hold it unscaled
    assert wide.n_tokens == 5 * 4 and wide.views[1].boxes[0] == (16.0, 0.0, 24.0, 8.0)
    assert small.n_tokens == 4 and small.views[0].boxes[3] == (6.0, 6.0, 12.0, 12.0)  # fits one tile: no thumbnail


@pytest.mark.parametrize(("size", "marker"), TILED)
@pytest.mark.parametrize("covering", [True, False])
def test_ovis2_thumbnail_then_tiles(size, marker, covering):
    from transformers.models.ovis2.image_processing_pil_ovis2 import Ovis2ImageProcessorPil

    from fastv.families.ovis2.selfcheck import tiny_ovis2

    config = tiny_ovis2(layers=1).model.config
    processor = Ovis2ImageProcessorPil(
        size={"height": 16, "width": 16}, crop_to_patches=True, max_patches=4, use_covering_area_grid=covering
    )
    batch = processor(_marked_image(size, marker), return_tensors="pt")
    tiles = batch["pixel_values"]
    redness = _shuffled_redness(tiles)
    (layout,) = layouts(LayoutRequest(config, [size], processor, inputs={"pixel_values": tiles}))
    rows, cols = batch["grids"][0].tolist()
    assert layout.n_tokens == tiles.shape[0] * 4 == (1 + (rows * cols if rows * cols > 1 else 0)) * 4
    if rows * cols > 1:
        assert "thumbnail" in layout.views[0].label and layout.views[-1].label.endswith(f"tile {rows},{cols}")
    for view in layout.views:
        _check_view(view, redness, marker, peak=float(redness.max()))


def test_ovis2_merge_follows_the_vision_model():
    """The tower's own hidden_stride merge, on patch coordinates."""
    from fastv.families.ovis2.selfcheck import tiny_ovis2

    vlm = tiny_ovis2(layers=1)
    tower = vlm.model.model.vision_tower
    image_size = 16
    n = image_size // PATCH

    class Coords(torch.nn.Module):  # the transformer's patch features: (row + 1, col + 1), zeros elsewhere
        def forward(self, pixel_values, **kwargs):
            rows, cols = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
            feats = torch.zeros(1, n * n, tower.config.hidden_size)
            feats[0, :, 0], feats[0, :, 1] = rows.flatten() + 1.0, cols.flatten() + 1.0
            return (feats,)

    merged = []

    def grab(module, args):
        merged.append(args[0])
        raise StopIteration

    original = tower.transformer
    tower.transformer = Coords()
    handle = tower.head_linear.register_forward_pre_hook(grab)
    try:
        with pytest.raises(StopIteration):
            tower(torch.zeros(1, 3, image_size, image_size))
    finally:
        handle.remove()
        tower.transformer = original
    tokens = merged[0][0].reshape(-1, 4, tower.config.hidden_size)[..., :2]  # (token, its 2x2 patches, row/col+1)
    config = vlm.model.config
    processor = SimpleNamespace(size={"height": image_size, "width": image_size}, max_patches=1)
    (layout,) = layouts(LayoutRequest(config, [(image_size, image_size)], processor))
    (view,) = layout.views
    assert layout.n_tokens == tokens.shape[0] == 4
    for token, box in zip(view.tokens, view.boxes, strict=True):
        real = tokens[token][(tokens[token] > 0).all(-1)] - 1  # the padding patches are zeros
        assert real.numel()
        for row, col in real.tolist():
            x, y = (col + 0.5) * PATCH, (row + 0.5) * PATCH
            assert box[0] < x < box[2] and box[1] < y < box[3], (token, box, x, y)


def _gemma4_processor():
    from transformers.models.gemma4.image_processing_pil_gemma4 import Gemma4ImageProcessorPil

    return Gemma4ImageProcessorPil(patch_size=PATCH, max_soft_tokens=70, pooling_kernel_size=2)


def _gemma4_token_redness(config, batch) -> torch.Tensor:
    """Per-token redness: the patches' red minus green, pooled by the model's own pooler on their positions."""
    from transformers.models.gemma4.modeling_gemma4 import Gemma4VisionPooler

    patches = batch["pixel_values"][0].reshape(-1, PATCH * PATCH, 3)  # (patches, pixels, rgb), unnormalised
    red = (patches[..., 0] - patches[..., 1]).mean(-1)
    positions = batch["image_position_ids"]
    length = positions.shape[1] // config.vision_config.pooling_kernel_size**2
    pooled, mask = Gemma4VisionPooler(config.vision_config)._avg_pool_by_positions(
        red[None, :, None], positions, length
    )
    return pooled[0, mask[0], 0]


@pytest.mark.parametrize(("size", "marker"), [((40, 80), (40, 8, 56, 24)), ((44, 20), (4, 28, 12, 40))])
def test_gemma4_pooled_blocks_of_the_resized_image(size, marker):
    from fastv.families.gemma4.selfcheck import tiny_gemma4

    config = tiny_gemma4(layers=1).model.config
    processor = _gemma4_processor()
    batch = processor(_marked_image(size, marker), return_tensors="pt")
    redness = _gemma4_token_redness(config, batch)
    (layout,) = layouts(LayoutRequest(config, [size], processor, inputs=dict(batch)))
    assert layout.n_tokens == redness.numel() == int(batch["num_soft_tokens_per_image"][0])
    _check_view(layout.views[0], redness, marker)
    (again,) = layouts(LayoutRequest(config, [size], processor))  # no positions: the processor's resize
    assert again == layout


def test_gemma4_video_frames_are_separate_grids():
    from fastv.families.gemma4.selfcheck import tiny_gemma4

    config = tiny_gemma4(layers=1).model.config
    processor = _gemma4_processor()
    frames = processor(
        [_marked_image((40, 80), (0, 0, 8, 8))] * 3, return_tensors="pt"
    )  # 40 x 88 px: 5 x 11 tokens a frame
    inputs = {"video_position_ids": frames["image_position_ids"], "num_frames_per_video": torch.tensor([3])}
    (video,) = layouts(LayoutRequest(config, [], inputs=inputs, video_sizes=[(40, 80)], video_frames=[8]))
    assert video.n_tokens == 3 * 55 and video.n_frames == 3 and [v.frame for v in video.views] == [0, 1, 2]
    assert video.views[2].tokens[0] == 110 and video.views[2].boxes[12] == pytest.approx((80 / 11, 8, 160 / 11, 16))


def test_fast_vlm_map_cells_follow_the_models_flattening():
    from transformers.modeling_outputs import BaseModelOutputWithPooling
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    from fastv.compat import stacked_image_features
    from fastv.families.fast_vlm.selfcheck import tiny_fast_vlm

    vlm = tiny_fast_vlm(layers=1)
    inner = vlm.model.model
    processor = CLIPImageProcessorPil(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})
    size, marker = (32, 64), (40, 0, 48, 32)  # 64x32 -> 32x16, crop columns 8..24: the marker is the right half
    pixels = processor(_marked_image(size, marker), return_tensors="pt")["pixel_values"]

    class Map(torch.nn.Module):  # a (B, C, 2, 2) feature map: the red of each 8x8 stride cell, then zeros
        def forward(self, pixel_values, **kwargs):
            red = torch.nn.functional.avg_pool2d(pixel_values[:, :1] - pixel_values[:, 1:2], 8)
            return BaseModelOutputWithPooling(last_hidden_state=torch.cat([red, torch.zeros(1, 31, 2, 2)], 1))

    tower, projector = inner.vision_tower, inner.multi_modal_projector
    inner.vision_tower, inner.multi_modal_projector = Map(), torch.nn.Identity()
    try:
        redness = stacked_image_features(inner.get_image_features(pixels).pooler_output)[0, :, 0]
    finally:
        inner.vision_tower, inner.multi_modal_projector = tower, projector
    ids = torch.tensor([[5, *[IMAGE_TOKEN] * 4, 6]])
    (layout,) = layouts(LayoutRequest(vlm.model.config, [size], processor, inputs={"input_ids": ids}))
    assert layout.n_tokens == 4 and layout.views[0].boxes[1] == (32.0, 0.0, 48.0, 16.0)
    _check_view(layout.views[0], redness, marker)
    assert {t for t in range(4) if redness[t] > 0.5 * redness.max()} == {1, 3}


def _plm_pooled_centres(config, region) -> torch.Tensor:
    """Patch centres of a 16x16 tile stretched over ``region``, pooled by the model's own projector pooling."""
    from transformers.models.perception_lm.modeling_perception_lm import PerceptionLMAdaptiveAvgPooling

    x0, y0, x1, y1 = region
    rows, cols = torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij")
    centres = torch.stack([x0 + (cols + 0.5) / 4 * (x1 - x0), y0 + (rows + 0.5) / 4 * (y1 - y0)], -1)
    return PerceptionLMAdaptiveAvgPooling(config.projector_pooling_ratio)(centres.reshape(1, 16, 2))[0]


@pytest.mark.parametrize(("mode", "canvas"), [("thumb+tile", (2, 1)), ("thumb+tile", (1, 1)), ("vanilla", None)])
def test_perception_lm_thumbnail_then_tiles(mode, canvas):
    from fastv.families.perception_lm.selfcheck import tiny_perception_lm

    config = tiny_perception_lm(layers=1).model.config
    processor = SimpleNamespace(  # the canvas choice is the (torchvision) processor's own method
        vision_input_type=mode,
        tile_size=16,
        _fit_image_to_canvas=lambda img_width, img_height, tile_size: canvas,
        _find_closest_aspect_ratio=lambda **kwargs: pytest.fail("the canvas fitted"),
    )
    tiles = 1 if canvas is None else canvas[0] * canvas[1] + 1
    ids = torch.tensor([[5, *[IMAGE_TOKEN] * (4 * tiles), 6]])
    size = (20, 44)
    (layout,) = layouts(LayoutRequest(config, [size], processor, inputs={"input_ids": ids}))
    assert layout.n_tokens == 4 * tiles and len(layout.views) == tiles
    whole = (0.0, 0.0, 44.0, 20.0)
    regions = [whole] + (
        [(0.0, 0.0, 22.0, 20.0), (22.0, 0.0, 44.0, 20.0)] if canvas == (2, 1) else [whole] * (tiles - 1)
    )
    for view, region in zip(layout.views, regions, strict=True):
        centres = _plm_pooled_centres(config, region)
        for token, box in zip(view.tokens, view.boxes, strict=True):
            x, y = centres[token - view.tokens[0]].tolist()
            assert box[0] < x < box[2] and box[1] < y < box[3], (view.label, token, box, x, y)


def test_perception_lm_video_frames_and_prompt_checks():
    from fastv.errors import FastVError
    from fastv.families.perception_lm.selfcheck import tiny_perception_lm

    config = tiny_perception_lm(layers=1).model.config
    ids = torch.tensor([[5, *[VIDEO_TOKEN] * 8, 6]])
    inputs = {"input_ids": ids, "pixel_values_videos": torch.zeros(1, 2, 3, 16, 16)}
    (video,) = layouts(LayoutRequest(config, [], inputs=inputs, video_sizes=[(32, 48)], video_frames=[5]))
    assert video.n_tokens == 8 and [v.frame for v in video.views] == [0, 1] and video.views[1].tokens == (4, 5, 6, 7)
    assert video.views[0].boxes[3] == (24.0, 16.0, 48.0, 32.0)
    with pytest.raises(FastVError, match="not 2 square tile grids"):
        layouts(LayoutRequest(config, [], inputs={**inputs, "input_ids": ids[:, :-2]}, video_sizes=[(32, 48)]))


def test_idefics2_refuses_with_the_reason():
    from fastv.errors import UnsupportedModelError

    config = type("C", (), {"model_type": "idefics2"})()
    with pytest.raises(UnsupportedModelError, match="perceiver-resampler latents, each attending to the whole image"):
        layouts(LayoutRequest(config, [(16, 16)]))
