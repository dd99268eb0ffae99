"""Sort-of-CLEVR scenes (Santoro et al., 2017): six objects, one per colour, at random places.

Each object's answers live where the object is drawn, so a VLM must keep the right image tokens
to answer; that is what makes the dataset a test of visual-token pruning.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageDraw

IMAGE_SIZE = 96
OBJECT_SIZE = 24  # side of a square, diameter of a circle, base of a triangle (pixels)
MIN_GAP = 30  # minimum distance between object centres, so objects never touch
CELL = 8  # the testbed's patch size: one image token per CELL x CELL pixels
MIN_CELLS = 7  # cells every object covers (see patch_owners): room for one token per fact of an object
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (230, 25, 25),
    "green": (30, 170, 50),
    "blue": (30, 60, 230),
    "orange": (250, 140, 0),
    "gray": (128, 128, 128),
    "yellow": (240, 220, 20),
}
SHAPES = ("circle", "square", "triangle")
BACKGROUND = (255, 255, 255)


@dataclass(frozen=True)
class SceneObject:
    color: str
    shape: str
    x: int  # centre, pixels from the left
    y: int  # centre, pixels from the top


Scene = tuple[SceneObject, ...]


def _distances_unique(scene: Scene) -> bool:
    """No two objects at the same distance from a third: "closest" / "furthest" have one answer."""
    for a in scene:
        d = sorted((b.x - a.x) ** 2 + (b.y - a.y) ** 2 for b in scene if b is not a)
        if len(set(d)) != len(d):
            return False
    return True


def _large_enough(scene: Scene) -> bool:
    """Every object owns at least ``MIN_CELLS`` image tokens, so none is only a speck after patching."""
    owners = patch_owners(scene, CELL)
    return all((owners == i).sum() >= MIN_CELLS for i in range(len(scene)))


def sample_scene(rng: random.Random) -> Scene:
    """Six objects (every colour once, random shapes) at integer centres with ``MIN_GAP`` between them,
    each covering at least ``MIN_CELLS`` cells."""
    half = OBJECT_SIZE // 2 + 1
    while True:
        objects: list[SceneObject] = []
        for color in COLORS:
            for _ in range(100):
                x, y = rng.randint(half, IMAGE_SIZE - half), rng.randint(half, IMAGE_SIZE - half)
                if all(math.hypot(o.x - x, o.y - y) >= MIN_GAP for o in objects):
                    objects.append(SceneObject(color, rng.choice(SHAPES), x, y))
                    break
        scene = tuple(objects)
        if len(scene) == len(COLORS) and _distances_unique(scene) and _large_enough(scene):
            return scene


def _draw(draw: ImageDraw.ImageDraw, o: SceneObject, fill) -> None:
    r = OBJECT_SIZE / 2
    box = (o.x - r, o.y - r, o.x + r - 1, o.y + r - 1)
    if o.shape == "circle":
        draw.ellipse(box, fill=fill)
    elif o.shape == "square":
        draw.rectangle(box, fill=fill)
    else:
        draw.polygon([(o.x, o.y - r), (o.x - r, o.y + r - 1), (o.x + r - 1, o.y + r - 1)], fill=fill)


def render(scene: Scene) -> Image.Image:
    """The scene as an RGB image: flat white background, solid shapes."""
    image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for o in scene:
        _draw(draw, o, COLORS[o.color])
    return image


def object_mask(scene: Scene) -> np.ndarray:
    """``(H, W)`` int array: index of the object drawn at each pixel, -1 for background.

    Drawn with the same code as :func:`render`, one grey level per object, so it matches the image.
    """
    image = Image.new("L", (IMAGE_SIZE, IMAGE_SIZE), 0)
    draw = ImageDraw.Draw(image)
    for i, o in enumerate(scene, 1):
        _draw(draw, o, i)
    return np.asarray(image, dtype=np.int64) - 1


def patch_owners(scene: Scene, patch: int) -> np.ndarray:
    """Row-major per ``patch`` x ``patch`` cell: the object covering most of it (at least 1/8 of its
    pixels), else -1. These are the image tokens that carry an object."""
    cells = IMAGE_SIZE // patch
    mask = object_mask(scene).reshape(cells, patch, cells, patch).transpose(0, 2, 1, 3).reshape(cells * cells, -1)
    counts = np.stack([(mask == i).sum(1) for i in range(len(scene))], axis=1)  # (cells^2, objects)
    best = counts.argmax(1)
    return np.where(counts.max(1) * 8 >= patch * patch, best, -1)


def describe(scene: Scene) -> list[dict]:
    """The scene as JSON-ready records (stored with every question, so answers can be recomputed)."""
    return [asdict(o) for o in scene]


def from_description(records: list[dict]) -> Scene:
    return tuple(SceneObject(**r) for r in records)
