"""Keep pictures: each image (or frame, or LLaVA-NeXT base / high-res view) with dropped patches dimmed.

One row per view, one column per selection (FastV's ranking beside random dropping). Compositing is
done in PIL on an upscaled copy (64x64 images stay crisp); matplotlib (Agg) only lays out the grid.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from fastv.analysis.keep import KeepPicture
from fastv.analysis.plots import _pyplot, _save
from fastv.families.layout import View

DIM = 0.3  # share of a dropped patch's own colour left after washing it towards grey
GREY = 70.0
KEPT_OUTLINE = (0, 140, 255)
TARGET_SIDE = 448  # pixels of a panel's longer side


def render_view(frame: Image.Image, view: View, kept: set[int]) -> Image.Image:
    """``frame`` with the boxes of ``view``'s dropped tokens dimmed and kept ones outlined."""
    scale = TARGET_SIDE / max(frame.width, frame.height)
    size = (max(1, round(frame.width * scale)), max(1, round(frame.height * scale)))
    resample = Image.NEAREST if scale >= 2 else Image.BICUBIC
    base = frame.convert("RGB").resize(size, resample)
    factor = np.ones((size[1], size[0]), dtype=np.float32)
    outlines = []
    for token, (x0, y0, x1, y1) in zip(view.tokens, view.boxes, strict=True):
        box = (round(x0 * scale), round(y0 * scale), round(x1 * scale), round(y1 * scale))
        if token in kept:
            outlines.append(box)
        else:
            factor[max(0, box[1]) : max(0, box[3]), max(0, box[0]) : max(0, box[2])] = DIM
    pixels = np.asarray(base, dtype=np.float32)
    pixels = (pixels * factor[..., None] + GREY * (1 - factor[..., None])).astype(np.uint8)
    out = Image.fromarray(pixels)
    draw = ImageDraw.Draw(out)
    width = 1 if len(view.tokens) > 256 else 2
    for x0, y0, x1, y1 in outlines:
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline=KEPT_OUTLINE, width=width)
    return out


def draw_keep(picture: KeepPicture, path: str | Path, title: str | None = None) -> Path:
    """Write the keep picture: rows = views of every image / frame, columns = selections."""
    plt = _pyplot()
    rows = [(i, view) for i, lay in enumerate(picture.layouts) for view in lay.views]
    labels = list(picture.selections)
    heights = [3.4 * picture.layouts[i].size[0] / picture.layouts[i].size[1] + 0.7 for i, _ in rows]
    fig, axes = plt.subplots(
        len(rows),
        len(labels),
        figsize=(3.4 * len(labels), sum(heights)),
        dpi=110,
        squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )
    for r, (index, view) in enumerate(rows):
        layout = picture.layouts[index]
        frame = picture.frames[index][min(view.frame, len(picture.frames[index]) - 1)]
        for c, label in enumerate(labels):
            kept = picture.kept_tokens(label, index)
            shown = kept & set(view.tokens)
            ax = axes[r][c]
            ax.imshow(render_view(frame, view, kept))
            ax.set_xticks([])
            ax.set_yticks([])
            text = f"{label}\n{view.label}: kept {len(shown)}/{len(view.tokens)}"
            extra = [t for t in layout.unplaced if t in kept]
            if layout.unplaced and view is layout.views[-1]:
                text += f" (+{len(extra)}/{len(layout.unplaced)} {layout.unplaced_name})"
            ax.set_title(text, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, path)
