"""Token -> image-region mapping: a red marker planted in the image must land in the boxes the layout gives.

The processor's real pixel tiles give each vision patch a "redness"; the model's own packing code
(LLaVA-NeXT's ``pack_image_features``) turns per-tile patches into the decoder's token order. Tokens
that see red must be exactly those whose layout box overlaps the marker.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
from transformers.models.llava_next.image_processing_pil_llava_next import LlavaNextImageProcessorPil

from fastv.families.layout import LayoutRequest, assign_positions, layouts
from fastv.families.llava.selfcheck import tiny_llava, tiny_llava_next
from fastv.families.qwen_vl import qwen2_vl_layout
from fastv.selfcheck.tiny import IMAGE_TOKEN

PATCH = 4  # tiny models: 16x16 tiles, 4x4-pixel patches


def _marked_image(size: tuple[int, int], box: tuple[int, int, int, int]) -> Image.Image:
    h, w = size
    pixels = np.full((h, w, 3), 40, dtype=np.uint8)
    x0, y0, x1, y1 = box
    pixels[y0:y1, x0:x1] = (255, 0, 0)
    return Image.fromarray(pixels)


def _patch_redness(tiles: torch.Tensor) -> torch.Tensor:
    """(tiles, patches, 1): how red each vision patch is, in the vision tower's row-major patch order."""
    red = tiles[:, 0] - tiles[:, 1]  # normalised, but red minus green still peaks on the marker
    pooled = torch.nn.functional.avg_pool2d(red[:, None], PATCH)[:, 0]
    return pooled.flatten(1)[..., None]


def _overlaps(a, b, margin: float = 0.0) -> bool:
    return a[0] < b[2] - margin and b[0] < a[2] - margin and a[1] < b[3] - margin and b[1] < a[3] - margin


def _check_view(view, redness: torch.Tensor, marker, peak: float | None = None) -> None:
    """Red tokens (above half the view's peak, or half of ``peak``) overlap the marker; boxes inside it are red."""
    local = peak is None
    peak = redness[list(view.tokens)].max() if local else peak
    red = {t for t in view.tokens if redness[t] > 0.5 * peak}
    assert red or not local, view.label
    # every token that sees the marker has a box overlapping it (a patch straddling the edge may be faint)
    for token, box in zip(view.tokens, view.boxes, strict=True):
        if token in red:
            assert _overlaps(box, marker), (view.label, token, box)
    # every token whose box lies well inside the marker sees red
    for token, box in zip(view.tokens, view.boxes, strict=True):
        inside = box[0] >= marker[0] and box[1] >= marker[1] and box[2] <= marker[2] and box[3] <= marker[3]
        if inside:
            assert token in red, (view.label, token, box)


def test_llava_marker_lands_in_its_patch():
    vlm = tiny_llava(layers=1)
    processor = CLIPImageProcessorPil(size={"height": 16, "width": 16}, do_center_crop=False)
    size, marker = (32, 48), (12, 8, 24, 16)  # a stretch: 48x32 -> 16x16, marker covers patch cols 1, rows 1
    pixels = processor(_marked_image(size, marker), return_tensors="pt")["pixel_values"]
    (layout,) = layouts(LayoutRequest(vlm.model.config, [size], processor))
    assert layout.n_tokens == vlm.image_tokens
    redness = _patch_redness(pixels)[0, :, 0]
    (view,) = layout.views
    _check_view(view, redness, marker)
    assert view.boxes[5] == (12.0, 8.0, 24.0, 16.0)  # row 1, col 1 of a 4x4 grid over 48x32


@pytest.mark.parametrize("builder", ["llava.selfcheck.tiny_vipllava", "paligemma.selfcheck.tiny_paligemma"])
def test_square_grid_families_use_the_llava_grid(builder):
    """VipLLaVA (always drops the CLS token) and PaliGemma (SigLIP, no CLS, image stretched to a square):
    one square patch grid per image, as LLaVA's."""
    import importlib

    module, name = builder.rsplit(".", 1)
    vlm = getattr(importlib.import_module(f"fastv.families.{module}"), name)(layers=1)
    processor = CLIPImageProcessorPil(size={"height": 16, "width": 16}, do_center_crop=False)
    size, marker = (32, 48), (12, 8, 24, 16)
    pixels = processor(_marked_image(size, marker), return_tensors="pt")["pixel_values"]
    (layout,) = layouts(LayoutRequest(vlm.model.config, [size], processor))
    assert layout.n_tokens == vlm.image_tokens and not layout.unplaced
    _check_view(layout.views[0], _patch_redness(pixels)[0, :, 0], marker)


def test_llava_center_crop_geometry():
    vlm = tiny_llava(layers=1)
    processor = CLIPImageProcessorPil(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})
    size, marker = (32, 64), (24, 8, 32, 16)  # 64x32 -> 32x16 -> crop cols 8..24 of the resized image
    pixels = processor(_marked_image(size, marker), return_tensors="pt")["pixel_values"]
    (layout,) = layouts(LayoutRequest(vlm.model.config, [size], processor))
    _check_view(layout.views[0], _patch_redness(pixels)[0, :, 0], marker)
    assert layout.views[0].boxes[0] == (16.0, 0.0, 24.0, 8.0)


@pytest.mark.parametrize(
    ("size", "marker"),
    [
        ((20, 44), (24, 4, 32, 12)),  # wide: canvas 16x32, padded rows removed by unpadding
        ((44, 20), (4, 28, 12, 36)),  # tall: padded columns removed
        ((32, 32), (8, 20, 16, 28)),  # square: 2x2 tiles, no unpadding
    ],
)
def test_llava_next_marker_lands_in_its_tokens(size, marker):
    vlm = tiny_llava_next(layers=1)
    config = vlm.model.config
    processor = LlavaNextImageProcessorPil(
        size={"height": 16, "width": 16},
        crop_size={"height": 16, "width": 16},
        image_grid_pinpoints=config.image_grid_pinpoints,
        do_center_crop=False,
    )
    batch = processor(_marked_image(size, marker), return_tensors="pt")
    tiles, image_sizes = batch["pixel_values"][0], batch["image_sizes"]
    features = _patch_redness(tiles)
    packed, lens = vlm.model.model.pack_image_features(
        [features], image_sizes, "default", image_newline=torch.tensor([-100.0])
    )
    redness = packed[0][:, 0]
    (layout,) = layouts(LayoutRequest(config, [size], processor))
    assert layout.n_tokens == int(lens[0])
    assert all(redness[t] == -100.0 for t in layout.unplaced)  # the newline tokens
    base, high = layout.views
    assert len(layout.unplaced) + len(base.tokens) + len(high.tokens) == layout.n_tokens
    _check_view(base, redness, marker)
    _check_view(high, redness, marker)


def test_llava_next_unpadded_boxes_cover_the_image():
    vlm = tiny_llava_next(layers=1)
    (layout,) = layouts(LayoutRequest(vlm.model.config, [(20, 44)]))
    high = layout.views[1]
    xs = [b[0] for b in high.boxes] + [b[2] for b in high.boxes]
    ys = [b[1] for b in high.boxes] + [b[3] for b in high.boxes]
    # canvas 16x32 (4x8 tokens), image fitted as 15x32 -> unpadding keeps all 4 rows here
    assert min(xs) == pytest.approx(0.0) and max(xs) == pytest.approx(44.0)
    assert min(ys) > -44 / 32 * 4 and max(ys) < 20 + 44 / 32 * 4
    assert len(high.tokens) + 4 == layout.n_tokens - 16  # 4 rows -> 4 newline tokens


def test_assign_positions_splits_images_in_order():
    vlm = tiny_llava(layers=1)
    lays = layouts(LayoutRequest(vlm.model.config, [(16, 16), (16, 16)]))
    ids = torch.tensor([5] + [IMAGE_TOKEN] * 16 + [7] + [IMAGE_TOKEN] * 16 + [9])
    first, second = assign_positions(lays, ids, vlm.model.config)
    assert first.tolist() == list(range(1, 17)) and second.tolist() == list(range(18, 34))
    with pytest.raises(Exception, match="layout expects"):
        assign_positions(lays, ids[:20], vlm.model.config)


def test_qwen2_vl_merged_grid_and_frames():
    from types import SimpleNamespace

    config = SimpleNamespace(
        model_type="qwen2_vl", vision_config=SimpleNamespace(spatial_merge_size=2, temporal_patch_size=2)
    )
    request = LayoutRequest(
        config,
        [(56, 112)],
        inputs={"image_grid_thw": torch.tensor([[1, 4, 8]]), "video_grid_thw": torch.tensor([[2, 2, 2]])},
        video_sizes=[(28, 28)],
    )
    image, video = qwen2_vl_layout(request)
    assert image.n_tokens == 8 and image.views[0].boxes[5] == (28.0, 28.0, 56.0, 56.0)
    assert video.n_tokens == 2 and [v.frame for v in video.views] == [0, 2] and video.n_frames == 4


def test_video_llava_frames_keep_their_cls():
    from fastv.families.llava.selfcheck import tiny_video_llava
    from fastv.selfcheck.tiny import VIDEO_TOKEN

    vlm = tiny_video_llava(layers=1)
    config = vlm.model.config
    lays = layouts(LayoutRequest(config, [(16, 16)], video_sizes=[(32, 32)], video_frames=[3]))
    image, video = lays
    assert image.n_tokens == vlm.image_tokens and video.n_tokens == vlm.video_token_count(3)
    assert video.unplaced == (0, 17, 34) and [v.frame for v in video.views] == [0, 1, 2]
    assert video.views[1].tokens[0] == 18 and video.views[1].boxes[0] == (0.0, 0.0, 8.0, 8.0)
    ids = torch.tensor([5] + [IMAGE_TOKEN] * 16 + [6] + [VIDEO_TOKEN] * 51 + [7])
    first, second = assign_positions(lays, ids, config)
    assert first[0] == 1 and second[0] == 18 and second.numel() == 51


def test_llava_next_video_pooled_frames_follow_the_pooler():
    from transformers.models.llava_next_video.modeling_llava_next_video import LlavaNextVideoPooler

    from fastv.families.llava.selfcheck import tiny_llava_next_video

    vlm = tiny_llava_next_video(layers=1)
    config = vlm.model.config
    (video,) = layouts(LayoutRequest(config, [], video_sizes=[(16, 16)], video_frames=[2]))
    assert video.n_tokens == vlm.video_token_count(2)
    side = 4  # 16 / 4 patches per side
    rows, cols = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    centres = torch.stack([cols, rows], -1).reshape(1, side * side, 2).float() * PATCH + PATCH / 2  # x, y
    pooled = LlavaNextVideoPooler(config)(centres)[0]  # (tokens per frame, 2): mean centre of each pooled token
    view = video.views[1]
    for token, box in zip(view.tokens, view.boxes, strict=True):
        x, y = pooled[token - view.tokens[0]].tolist()
        assert box[0] < x < box[2] and box[1] < y < box[3]


def test_llava_pad_to_square_geometry():
    from transformers.models.llava.image_processing_pil_llava import LlavaImageProcessorPil

    vlm = tiny_llava(layers=1)
    processor = LlavaImageProcessorPil(
        do_pad=True, size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16}, do_center_crop=True
    )
    size, marker = (32, 64), (40, 8, 56, 24)  # 64x32 padded to 64x64 (16 rows above and below), then 16x16
    pixels = processor(_marked_image(size, marker), return_tensors="pt")["pixel_values"]
    (layout,) = layouts(LayoutRequest(vlm.model.config, [size], processor))
    _check_view(layout.views[0], _patch_redness(pixels)[0, :, 0], marker)
    assert layout.views[0].boxes[0] == (0.0, -16.0, 16.0, 0.0)  # the first row lies in the padding


@pytest.mark.parametrize(
    ("size", "aspect"), [((12, 44), "anyres_max_9"), ((32, 32), "anyres_max_1"), ((44, 30), "anyres_max_1")]
)
def test_llava_onevision_boxes_hold_the_packed_patch_centres(size, aspect):
    """Pack canvas-coordinate features with the model's own code (unpadding, bilinear shrinking, newlines)."""
    import copy

    from transformers.image_processing_utils import select_best_resolution

    from fastv.families.llava.selfcheck import tiny_llava_onevision

    vlm = tiny_llava_onevision(layers=1)
    config = copy.deepcopy(vlm.model.config)
    config.vision_aspect_ratio = aspect
    side = 4
    canvas = select_best_resolution(size, config.image_grid_pinpoints)
    tiles_h, tiles_w = canvas[0] // 16, canvas[1] // 16
    rows, cols = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    tiles = [torch.stack([cols, rows], -1).reshape(side * side, 2).float() * PATCH + PATCH / 2]  # base tile
    for t in range(tiles_h * tiles_w):
        offset = torch.tensor([t % tiles_w * 16.0, t // tiles_w * 16.0])
        tiles.append(tiles[0] + offset)
    features = torch.stack(tiles)  # (1 + tiles, 16, 2) canvas-pixel centres (x, y)
    packed, lens = vlm.model.model.pack_image_features(
        [features], torch.tensor([size]), image_newline=torch.tensor([-1e4, -1e4]), vision_aspect_ratio=aspect
    )
    (layout,) = layouts(LayoutRequest(config, [size]))
    assert layout.n_tokens == int(lens[0])
    assert all(packed[0][t, 0] == -1e4 for t in layout.unplaced)
    base, high = layout.views
    from fastv.families.llava import _canvas_to_image

    scale, pad_x, pad_y = _canvas_to_image(size, canvas)
    for token, box in zip(high.tokens, high.boxes, strict=True):
        x, y = packed[0][token].tolist()
        x, y = (x - pad_x) / scale, (y - pad_y) / scale
        assert box[0] - 1e-4 <= x <= box[2] + 1e-4 and box[1] - 1e-4 <= y <= box[3] + 1e-4, (token, box, x, y)
    for token, box in zip(base.tokens, base.boxes, strict=True):
        x, y = (packed[0][token] * torch.tensor([size[1] / 16, size[0] / 16])).tolist()
        assert box[0] < x < box[2] and box[1] < y < box[3]


def test_llava_onevision_video_frames_and_trailing_newline():
    from fastv.families.llava.selfcheck import tiny_llava_onevision

    vlm = tiny_llava_onevision(layers=1)
    (video,) = layouts(LayoutRequest(vlm.model.config, [], video_sizes=[(16, 16)], video_frames=[3]))
    assert video.n_tokens == vlm.video_token_count(3) and video.unplaced == (video.n_tokens - 1,)
    assert [len(v.tokens) for v in video.views] == [4, 4, 4]


def test_gemma3_pooled_grid():
    from fastv.families.gemma3.selfcheck import tiny_gemma3

    vlm = tiny_gemma3(layers=1)
    (layout,) = layouts(LayoutRequest(vlm.model.config, [(30, 60)]))
    assert layout.n_tokens == vlm.image_tokens == 4
    assert layout.views[0].boxes[3] == (30.0, 15.0, 60.0, 30.0)


def test_mistral3_rows_skip_the_break_tokens():
    from fastv.families.mistral3.selfcheck import mistral3_image_ids, tiny_mistral3
    from fastv.selfcheck.tiny import IMAGE_TOKEN as IMG

    vlm = tiny_mistral3(layers=1)
    config = vlm.model.config
    (layout,) = layouts(LayoutRequest(config, [(160, 240)], inputs={"image_sizes": torch.tensor([[16, 24]])}))
    assert layout.n_tokens == 6 and layout.views[0].boxes[4] == (80.0, 80.0, 160.0, 160.0)
    ids = torch.tensor([5, *mistral3_image_ids((16, 24)), 6])
    (positions,) = assign_positions([layout], ids, config)
    assert positions.tolist() == [1, 2, 3, 5, 6, 7] and bool((ids[positions] == IMG).all())


@pytest.mark.parametrize(("size", "marker"), [((20, 44), (28, 4, 40, 16)), ((12, 12), (0, 0, 6, 6))])
def test_idefics3_tiles_then_global_image(size, marker):
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

    from fastv.families.simple.selfcheck import tiny_idefics3

    vlm = tiny_idefics3(layers=1)
    processor = Idefics3ImageProcessorPil(size={"longest_edge": 32}, max_image_size={"longest_edge": 16})
    tiles = processor(_marked_image(size, marker), return_tensors="pt")["pixel_values"][0]
    red = tiles[:, 0] - tiles[:, 1]
    redness = torch.nn.functional.avg_pool2d(red[:, None], 2 * PATCH)[:, 0].flatten()  # pixel shuffle: 2x2 patches
    (layout,) = layouts(LayoutRequest(vlm.model.config, [size], processor))
    assert layout.n_tokens == tiles.shape[0] * vlm.image_tokens
    for view in layout.views:
        _check_view(view, redness, marker, peak=float(redness.max()))


@pytest.mark.parametrize(("size", "marker"), [((20, 44), (28, 4, 40, 16)), ((16, 16), (0, 0, 8, 8))])
def test_internvl_tiles_then_thumbnail(size, marker):
    from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import GotOcr2ImageProcessorPil

    from fastv.families.simple.selfcheck import tiny_internvl

    vlm = tiny_internvl(layers=1)
    processor = GotOcr2ImageProcessorPil(size={"height": 16, "width": 16}, crop_to_patches=True, max_patches=4)
    tiles = processor(_marked_image(size, marker), return_tensors="pt")["pixel_values"]
    red = tiles[:, 0] - tiles[:, 1]
    redness = torch.nn.functional.avg_pool2d(red[:, None], 2 * PATCH)[:, 0].flatten()  # pixel shuffle: 2x2 patches
    (layout,) = layouts(LayoutRequest(vlm.model.config, [size], processor))
    assert layout.n_tokens == tiles.shape[0] * vlm.image_tokens
    for view in layout.views:
        _check_view(view, redness, marker, peak=float(redness.max()))


def test_internvl_pixel_shuffle_is_row_major():
    from fastv.families.simple.selfcheck import tiny_internvl

    vlm = tiny_internvl(layers=1)
    rows, cols = torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij")
    coords = torch.stack([rows, cols], -1)[None]  # (1, 4, 4, 2): patch (row, col), the model's reshape of patches
    merged = vlm.model.model.pixel_shuffle(coords, scale_factor=0.5).reshape(4, -1, 2)  # token -> its patches
    for token in range(4):
        assert set(merged[token, :, 0].tolist()) == {2 * (token // 2), 2 * (token // 2) + 1}
        assert set(merged[token, :, 1].tolist()) == {2 * (token % 2), 2 * (token % 2) + 1}


def test_idefics3_pixel_shuffle_is_row_major():
    from fastv.families.simple.selfcheck import tiny_idefics3

    vlm = tiny_idefics3(layers=1)
    rows, cols = torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij")
    coords = torch.stack([rows, cols], -1).reshape(1, 16, 2)  # row-major patches
    merged = vlm.model.model.connector.pixel_shuffle(coords, scale_factor=2).reshape(4, -1, 2)
    for token in range(4):
        assert set(merged[token, :, 0].tolist()) == {2 * (token // 2), 2 * (token // 2) + 1}
        assert set(merged[token, :, 1].tolist()) == {2 * (token % 2), 2 * (token % 2) + 1}


def test_every_family_has_a_layout_or_says_it_has_none():
    """Layouts live in each family's module; a family without one raises a clear error, never a wrong picture."""
    from fastv.errors import UnsupportedModelError
    from fastv.families import Family, supported_families

    without = []
    for model_type, family in supported_families().items():
        if type(family).visual_layouts is not Family.visual_layouts:
            continue
        without.append(model_type)
        with pytest.raises(
            UnsupportedModelError, match=rf"'{family.name}' adapter has no token -> image-region layout"
        ):
            layouts(LayoutRequest(config=type("C", (), {"model_type": model_type})(), image_sizes=[(8, 8)]))
    assert sorted(without) == [
        "hunyuan_vl",
        "lfm2_vl",
        "llava_onevision1_5",
        "minicpmv4_6",
        "molmo2",
        "ovis2_5",
    ]


@pytest.mark.parametrize(
    ("model_type", "patch"),
    [
        ("qwen3_vl", 16),
        ("qwen3_vl_moe", 16),
        ("qwen3_5", 16),
        ("qwen3_5_moe", 16),
        ("qwen2_5_omni_thinker", 14),
        ("qwen3_omni_moe_thinker", 16),
        ("glm4v", 14),
        ("glm4v_moe", 14),
        ("glm46v", 14),
    ],
)
@pytest.mark.parametrize(("size", "marker"), [((64, 128), (40, 8, 72, 40)), ((60, 100), (10, 30, 40, 58))])
def test_merged_grid_families_place_the_processors_merged_patches(model_type, patch, size, marker):
    """The real (PIL) image processor resizes to whole merged patches and orders patches (t, h/2, w/2, 2, 2):
    the four patches of each merged token are consecutive rows of ``pixel_values``."""
    from types import SimpleNamespace

    from transformers.models.glm4v.image_processing_pil_glm4v import Glm4vImageProcessorPil
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    processor_class = Glm4vImageProcessorPil if model_type.startswith("glm4") else Qwen2VLImageProcessorPil
    processor = processor_class(
        patch_size=patch,
        merge_size=2,
        temporal_patch_size=2,
        size={"shortest_edge": 32 * 32, "longest_edge": 256 * 256},
    )
    inputs = processor(_marked_image(size, marker), return_tensors="pt")
    patches = inputs["pixel_values"].view(-1, 3, 2, patch, patch)
    redness = (patches[:, 0] - patches[:, 1]).mean(dim=(1, 2, 3)).view(-1, 4).mean(-1)  # per merged token
    config = SimpleNamespace(
        model_type=model_type, vision_config=SimpleNamespace(spatial_merge_size=2, temporal_patch_size=2)
    )
    (layout,) = layouts(LayoutRequest(config, [size], processor, inputs=dict(inputs)))
    assert layout.n_tokens == redness.numel() == int(inputs["image_grid_thw"].prod()) // 4
    _check_view(layout.views[0], redness, marker)


def test_glm4v_video_prompts_have_no_layout():
    """GLM-4V writes video frames with the image token id: a clear refusal, not misplaced boxes."""
    from fastv.errors import UnsupportedModelError

    config = type("C", (), {"model_type": "glm4v"})()
    with pytest.raises(UnsupportedModelError, match="video frames with the image token id"):
        layouts(LayoutRequest(config, [], video_sizes=[(28, 28)], video_frames=[2]))
