"""Scenes of the synthetic benchmarks: class looks (shape x colour x texture), backgrounds, objects and their masks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw
from pycocotools import mask as mask_utils

from hmfs.synthetic.backgrounds import photo_background

# A class is one (shape, colour, texture) combination: 12 x 10 x 5 = 600 distinct looks. The thin
# shapes (arc, comb, cross, arrow, star) carry the fine detail the paper's claim is about.
SHAPES = ("disc", "ellipse", "square", "triangle", "diamond", "hexagon", "star", "cross",
          "crescent", "arc", "comb", "arrow")  # fmt: skip
COLOURS = {
    "red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (235, 215, 40),
    "magenta": (210, 50, 200), "cyan": (40, 200, 210), "orange": (245, 140, 30),
    "purple": (120, 50, 170), "white": (240, 240, 240), "black": (25, 25, 25),
}  # fmt: skip
TEXTURES = ("solid", "stripes", "checker", "dots", "rings")

# Log-uniform range of an object's half-size over the image's shorter side. Measured (resnet18
# pretrained on synthetic classes, 96 px, 200-episode epochs, COCO fold 0): with 0.15-0.55 hybrid
# masking leaves "all background" after 5 epochs, feature masking after 3.
OBJECT_HALF_SIZE = (0.15, 0.55)
PHOTO_SHARE = 0.7  # with photo backgrounds: the share of images on a photo crop; the rest keep the clutter


@dataclass(frozen=True)
class Appearance:
    """The look of one class (or of an unlabelled distractor, whose shape is `blob`)."""

    shape: str
    colour: tuple[int, int, int]
    texture: str

    def describe(self) -> str:
        names = {rgb: name for name, rgb in COLOURS.items()}
        return f"{names.get(self.colour, 'random-colour')} {self.texture} {self.shape}"


@dataclass(frozen=True)
class ObjectSpec:
    """One thing to draw: `label` >= 0 is a class index of the benchmark, -1 an unlabelled distractor."""

    appearance: Appearance
    label: int
    crowd: bool = False


@dataclass
class Instance:
    """A drawn object. polygons: flat [x0, y0, x1, y1, ...] lists in pixels (one object may have
    several, e.g. a comb's teeth; a crowd has the polygons of all its members); mask: (H, W) bool."""

    label: int
    crowd: bool
    polygons: list[list[float]]
    mask: np.ndarray



def _arc(start: float, stop: float, n: int, rx: float = 1.0, ry: float = 1.0, closed: bool = False):
    t = np.linspace(start, stop, n, endpoint=not closed)
    return np.stack([rx * np.cos(t), ry * np.sin(t)], axis=1)


def _rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def shape_polygons(shape: str, rng: np.random.Generator | None = None) -> list[np.ndarray]:
    """Polygons (each (N, 2) float64, x/y in [-1, 1]) whose union is `shape`; `blob` (an
    irregular polygon, never a class shape) needs `rng`."""
    pi = np.pi
    if shape == "disc":
        return [_arc(0, 2 * pi, 36, closed=True)]
    if shape == "ellipse":
        return [_arc(0, 2 * pi, 36, 1.0, 0.55, closed=True)]
    if shape == "square":
        return [_rect(-0.8, -0.8, 0.8, 0.8)]
    if shape == "triangle":
        return [np.array([[0.0, -0.95], [0.95, 0.75], [-0.95, 0.75]])]
    if shape == "diamond":
        return [np.array([[0.0, -1.0], [0.6, 0.0], [0.0, 1.0], [-0.6, 0.0]])]
    if shape == "hexagon":
        return [_arc(0, 2 * pi, 6, 0.9, 0.9, closed=True)]
    if shape == "star":
        points = _arc(-pi / 2, 1.5 * pi, 10, closed=True)
        points[1::2] *= 0.42
        return [points]
    if shape == "cross":
        return [_rect(-0.28, -0.95, 0.28, 0.95), _rect(-0.95, -0.28, 0.95, 0.28)]
    if shape == "crescent":  # left half-disc minus a half-ellipse, centred
        outer = _arc(pi / 2, 1.5 * pi, 20)
        inner = _arc(1.5 * pi, pi / 2, 20, rx=0.45)[1:-1]
        return [np.concatenate([outer, inner]) + np.array([0.5, 0.0])]
    if shape == "arc":  # a horseshoe: thin band, open on one side
        outer = _arc(0.25 * pi, 1.75 * pi, 28)
        inner = _arc(1.75 * pi, 0.25 * pi, 28, rx=0.62, ry=0.62)
        return [np.concatenate([outer, inner])]
    if shape == "comb":
        teeth = [_rect(x - 0.1, -0.6, x + 0.1, 0.95) for x in (-0.8, -0.27, 0.27, 0.8)]
        return [_rect(-0.95, -0.95, 0.95, -0.55), *teeth]
    if shape == "arrow":
        return [_rect(-0.95, -0.18, 0.3, 0.18), np.array([[0.2, -0.6], [0.98, 0.0], [0.2, 0.6]])]
    if shape == "blob":
        if rng is None:
            raise ValueError("shape 'blob' needs a random generator")
        n = int(rng.integers(5, 10))
        angles = np.sort(rng.uniform(0, 2 * pi, n))
        radii = rng.uniform(0.45, 1.0, n)
        return [np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)]
    raise ValueError(f"unknown shape {shape!r}; accepted: {', '.join(SHAPES)}, blob")


def _texture(texture: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Pattern in {0, 1} at object-local coordinates u, v (float arrays, ~[-1, 1]); the pattern
    scales with the object, so small objects carry fine detail."""
    if texture == "solid":
        return np.zeros(u.shape, dtype=bool)
    if texture == "stripes":
        return np.floor(u * 3 + 10) % 2 == 1
    if texture == "checker":
        return (np.floor(u * 2.5 + 10) + np.floor(v * 2.5 + 10)) % 2 == 1
    if texture == "dots":
        return ((u * 3) % 1 - 0.5) ** 2 + ((v * 3) % 1 - 0.5) ** 2 < 0.1
    if texture == "rings":
        return np.floor(np.hypot(u, v) * 4) % 2 == 1
    raise ValueError(f"unknown texture {texture!r}; accepted: {', '.join(TEXTURES)}")


def _second_colour(rgb: np.ndarray) -> np.ndarray:
    """The pattern's other colour: darker for light colours, lighter for dark ones."""
    if rgb @ np.array([0.299, 0.587, 0.114]) > 90:
        return rgb * 0.4
    return rgb + (255 - rgb) * 0.6


def draw_appearances(rng: np.random.Generator, n: int) -> list[Appearance]:
    """`n` distinct class looks drawn without replacement from all shape x colour x texture."""
    combos = [(s, c, t) for s in SHAPES for c in COLOURS for t in TEXTURES]
    if n > len(combos):
        raise ValueError(f"{n} classes asked for, but only {len(combos)} distinct looks exist")
    picked = rng.choice(len(combos), size=n, replace=False)
    return [Appearance(combos[i][0], COLOURS[combos[i][1]], combos[i][2]) for i in picked]


def _muted(rng: np.random.Generator) -> tuple[int, int, int]:
    grey = rng.uniform(70, 190)
    rgb = grey + (rng.uniform(0, 255, 3) - grey) * 0.35
    return tuple(int(x) for x in rgb)


def _background(rng: np.random.Generator, height: int, width: int, photos: Sequence[np.ndarray] = ()) -> np.ndarray:
    """A photo crop (PHOTO_SHARE of the images, when `photos` are given) or procedural clutter:
    smooth colour field + gradient + muted lines and blobs; (H, W, 3) float32."""
    if len(photos) and rng.random() < PHOTO_SHARE:
        return photo_background(rng, photos, height, width)
    grey = rng.uniform(80, 180)
    coarse = (grey + (rng.uniform(40, 220, size=(3, 4, 3)) - grey) * 0.6).astype(np.uint8)
    field = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC), np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = (xs * np.cos(angle) + ys * np.sin(angle)) / max(height, width)
    field = field + ramp[..., None] * rng.uniform(-50, 50, 3).astype(np.float32)
    canvas = Image.fromarray(np.clip(field, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(3, 9))):
        x0, x1 = rng.uniform(0, width, 2)
        y0, y1 = rng.uniform(0, height, 2)
        draw.line([(x0, y0), (x1, y1)], fill=_muted(rng), width=int(rng.integers(1, 4)))
    for _ in range(int(rng.integers(2, 6))):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        rx, ry = rng.uniform(3, 0.2 * width), rng.uniform(3, 0.2 * height)
        draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=_muted(rng))
    return np.asarray(canvas, dtype=np.float32)


def _polygon_mask(polygons: list[list[float]], height: int, width: int) -> np.ndarray:
    """Union of flat pixel polygons rasterised by pycocotools (as COCO's annToMask does); (H, W) bool."""
    rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
    return mask_utils.decode(rle).astype(bool)


def render_scene(
    rng: np.random.Generator, height: int, width: int, specs: Sequence[ObjectSpec], photos: Sequence[np.ndarray] = ()
) -> tuple[np.ndarray, list[Instance], np.ndarray]:
    """Draw `specs` over a background: procedural clutter, or a crop of one of `photos` (`_background`).

    Unlabelled distractors are painted first; labelled objects follow from the largest to the
    smallest, so a smaller object is drawn over a larger one (COCO's overlap rule in
    hmfs.data.prepare: the smaller instance wins). Returns the image (H, W, 3) uint8, the instances in
    paint order and `owner` (H, W) int16: index of the instance that shows at each pixel, -1 where
    only background shows.
    """
    base = min(height, width)
    n_labelled = sum(spec.label >= 0 for spec in specs)
    # Half-size over the shorter side, log-uniform in OBJECT_HALF_SIZE (at least 5 pixels, so that
    # small images keep visible objects), the upper end shrinking when several objects share the
    # image. Measured: with 0.08-0.33 a CPU-sized training run (resnet18, 128 px, 8 x 200 episodes)
    # never left "all background"; at 0.10-0.45 it reached 11 val mIoU.
    low = max(OBJECT_HALF_SIZE[0], 5.0 / base)
    high = max(1.5 * low, OBJECT_HALF_SIZE[1] / np.sqrt(max(1, n_labelled)))
    drawn = []  # (spec, parts, instance); a part is (polygons, cx, cy, sx, sy, angle)
    for spec in specs:
        if spec.crowd:  # a cluster of tiny copies, annotated together as one iscrowd region
            ccx, ccy = rng.uniform(0.2 * width, 0.8 * width), rng.uniform(0.2 * height, 0.8 * height)
            centres = [(ccx + rng.uniform(-1, 1) * 0.12 * base, ccy + rng.uniform(-1, 1) * 0.12 * base)
                       for _ in range(int(rng.integers(3, 6)))]  # fmt: skip
            sizes = [base * rng.uniform(0.035, 0.055) for _ in centres]
        else:
            size = base * np.exp(rng.uniform(np.log(low), np.log(high)))
            centres = [(rng.uniform(0.7 * size, max(0.7 * size, width - 0.7 * size)),
                        rng.uniform(0.7 * size, max(0.7 * size, height - 0.7 * size)))]  # fmt: skip
            sizes = [size]
        parts, flat = [], []
        for (cx, cy), size in zip(centres, sizes):
            aspect = np.exp(rng.uniform(-0.15, 0.15))
            sx, sy, angle = size * aspect, size / aspect, rng.uniform(0, 2 * np.pi)
            rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
            polygons = []
            for local in shape_polygons(spec.appearance.shape, rng):
                xy = (local * [sx, sy]) @ rot.T + [cx, cy]
                polygons.append([round(float(value), 2) for value in xy.ravel()])
            parts.append((polygons, cx, cy, sx, sy, angle))
            flat.extend(polygons)
        mask = _polygon_mask(flat, height, width)
        drawn.append((spec, parts, Instance(spec.label, spec.crowd, flat, mask)))
    # Stable sort: distractors first (in their order), then labelled objects by decreasing area.
    drawn.sort(key=lambda item: (item[0].label >= 0, -int(item[2].mask.sum()) * (item[0].label >= 0)))

    image = _background(rng, height, width, photos)
    owner = np.full((height, width), -1, dtype=np.int16)
    for index, (spec, parts, instance) in enumerate(drawn):
        colour = np.array(spec.appearance.colour, np.float32) * rng.uniform(0.85, 1.1)
        second = _second_colour(colour)
        for polygons, cx, cy, sx, sy, angle in parts:
            ys, xs = np.nonzero(_polygon_mask(polygons, height, width))
            dx, dy = xs + 0.5 - cx, ys + 0.5 - cy
            u = (dx * np.cos(angle) + dy * np.sin(angle)) / sx
            v = (-dx * np.sin(angle) + dy * np.cos(angle)) / sy
            pattern = _texture(spec.appearance.texture, u, v)
            image[ys, xs] = np.where(pattern[:, None], second, colour)
        if spec.label >= 0:
            owner[instance.mask] = index
    image += rng.normal(0, 5, image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8), [item[2] for item in drawn], owner


def class_map(owner: np.ndarray, instances: Sequence[Instance]) -> np.ndarray:
    """(H, W) uint8: class index + 1 of the instance that shows at each pixel, 0 elsewhere."""
    lut = np.array([inst.label + 1 if inst.label >= 0 else 0 for inst in instances] + [0], np.uint8)
    return lut[owner]  # owner -1 reads the trailing 0


def distractors(rng: np.random.Generator, maximum: int = 2) -> list[ObjectSpec]:
    """0 to `maximum` unlabelled irregular blobs (label -1) with random colours and textures."""
    return [
        ObjectSpec(
            Appearance("blob", tuple(int(x) for x in rng.integers(0, 256, 3)), str(rng.choice(TEXTURES))),
            -1,
        )
        for _ in range(int(rng.integers(0, maximum + 1)))
    ]

