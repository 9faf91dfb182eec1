"""Deterministic small stand-ins for PASCAL VOC2012 + SBD, COCO 2014 and FSS-1000 in their raw download formats."""

from __future__ import annotations

import argparse
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import scipy.io
import scipy.ndimage
import scipy.sparse
from PIL import Image, ImageDraw
from pycocotools import mask as mask_utils

from hmfs.backgrounds import BACKGROUNDS, load_photos, photo_background
from hmfs.data import BENCHMARKS, PASCAL_CLASSES
from hmfs.runtime import atomic_write_bytes

log = logging.getLogger(__name__)

VOC_CLASSES = PASCAL_CLASSES

# The real COCO 2014 categories: (id, name, supercategory); ids 12, 26, 29, 30, 45, 66, 68, 69, 71, 83
# do not exist, so class index (position in the sorted ids) differs from id - 1 after person.
COCO_CATEGORIES = (
    (1, "person", "person"), (2, "bicycle", "vehicle"), (3, "car", "vehicle"),
    (4, "motorcycle", "vehicle"), (5, "airplane", "vehicle"), (6, "bus", "vehicle"),
    (7, "train", "vehicle"), (8, "truck", "vehicle"), (9, "boat", "vehicle"),
    (10, "traffic light", "outdoor"), (11, "fire hydrant", "outdoor"), (13, "stop sign", "outdoor"),
    (14, "parking meter", "outdoor"), (15, "bench", "outdoor"), (16, "bird", "animal"),
    (17, "cat", "animal"), (18, "dog", "animal"), (19, "horse", "animal"), (20, "sheep", "animal"),
    (21, "cow", "animal"), (22, "elephant", "animal"), (23, "bear", "animal"),
    (24, "zebra", "animal"), (25, "giraffe", "animal"), (27, "backpack", "accessory"),
    (28, "umbrella", "accessory"), (31, "handbag", "accessory"), (32, "tie", "accessory"),
    (33, "suitcase", "accessory"), (34, "frisbee", "sports"), (35, "skis", "sports"),
    (36, "snowboard", "sports"), (37, "sports ball", "sports"), (38, "kite", "sports"),
    (39, "baseball bat", "sports"), (40, "baseball glove", "sports"), (41, "skateboard", "sports"),
    (42, "surfboard", "sports"), (43, "tennis racket", "sports"), (44, "bottle", "kitchen"),
    (46, "wine glass", "kitchen"), (47, "cup", "kitchen"), (48, "fork", "kitchen"),
    (49, "knife", "kitchen"), (50, "spoon", "kitchen"), (51, "bowl", "kitchen"),
    (52, "banana", "food"), (53, "apple", "food"), (54, "sandwich", "food"), (55, "orange", "food"),
    (56, "broccoli", "food"), (57, "carrot", "food"), (58, "hot dog", "food"), (59, "pizza", "food"),
    (60, "donut", "food"), (61, "cake", "food"), (62, "chair", "furniture"),
    (63, "couch", "furniture"), (64, "potted plant", "furniture"), (65, "bed", "furniture"),
    (67, "dining table", "furniture"), (70, "toilet", "furniture"), (72, "tv", "electronic"),
    (73, "laptop", "electronic"), (74, "mouse", "electronic"), (75, "remote", "electronic"),
    (76, "keyboard", "electronic"), (77, "cell phone", "electronic"), (78, "microwave", "appliance"),
    (79, "oven", "appliance"), (80, "toaster", "appliance"), (81, "sink", "appliance"),
    (82, "refrigerator", "appliance"), (84, "book", "indoor"), (85, "clock", "indoor"),
    (86, "vase", "indoor"), (87, "scissors", "indoor"), (88, "teddy bear", "indoor"),
    (89, "hair drier", "indoor"), (90, "toothbrush", "indoor"),
)  # fmt: skip

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

JPEG_QUALITY = 90
FSS_IMAGES_PER_CLASS = 10  # FSS-1000 has exactly 10 annotated images per class
FSS_SPLIT_RATIO = (520, 240, 240)  # trn : val : test classes, as in HSNet's FSS-1000 splits
MIN_VISIBLE_PIXELS = 16  # every class drawn into an image keeps at least this many labelled pixels
MAX_CLASSES_PER_IMAGE = 5  # COCO: a cap so objects keep a usable size
COCO_CLASSES_PER_IMAGE = 2  # COCO: the class guarantee grows to about this many classes per image
MAX_LAYOUT_TRIES = 50
# Log-uniform range of an object's half-size over the image's shorter side. Measured (resnet18
# pretrained on synthetic classes, 96 px, 200-episode epochs, COCO fold 0): with 0.15-0.55 hybrid
# masking leaves "all background" after 5 epochs, feature masking after 3.
OBJECT_HALF_SIZE = (0.15, 0.55)
# Fixed MAT-file header text: scipy writes the creation time there, which would break determinism.
MAT_HEADER = b"MATLAB 5.0 MAT-file, Platform: posix, Created by: hmfs.synthetic".ljust(116, b" ")
# Stream ids that keep the random streams of the benchmarks and splits apart.
_PASCAL, _COCO, _FSS = 1, 2, 3


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


# ----------------------------------------------------------------------------------------------
# Drawing


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


PHOTO_SHARE = 0.7  # with photo backgrounds: the share of images on a photo crop; the rest keep the clutter


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
    hmfs.commands.prepare: the smaller instance wins). Returns the image (H, W, 3) uint8, the instances in
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


def voc_boundary_band(label: np.ndarray) -> np.ndarray:
    """VOC's 'void' band: `label` (H, W) uint8 with 255 on every pixel that touches another
    value in its 3 x 3 neighbourhood (a thin band on both sides of every object outline)."""
    band = scipy.ndimage.maximum_filter(label, 3) != scipy.ndimage.minimum_filter(label, 3)
    return np.where(band, np.uint8(255), label)


def voc_palette() -> list[int]:
    """The standard PASCAL VOC colour map (256 RGB entries, flat), the palette of its PNGs."""
    palette = []
    for index in range(256):
        r = g = b = 0
        value = index
        for bit in range(8):
            r |= ((value >> 0) & 1) << (7 - bit)
            g |= ((value >> 1) & 1) << (7 - bit)
            b |= ((value >> 2) & 1) << (7 - bit)
            value >>= 3
        palette += [r, g, b]
    return palette


# ----------------------------------------------------------------------------------------------
# Files


def _write(path: Path, data: bytes) -> None:
    """Write through a temporary name and a rename, so a killed run never leaves half a file."""
    atomic_write_bytes(path, data, fsync=False)


def _jpeg(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _mat(variables: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, variables)
    return MAT_HEADER + buffer.getvalue()[len(MAT_HEADER):]


def _write_lines(path: Path, lines: Sequence[str], newline: str = "\n") -> None:
    _write(path, "".join(line + newline for line in lines).encode())


def _image_size(rng: np.random.Generator, image_size: int) -> tuple[int, int]:
    """(height, width), each within +-25 % of `image_size`."""
    height, width = (int(round(image_size * rng.uniform(0.75, 1.25))) for _ in range(2))
    return height, width


def _scene_with_visible(
    rng: np.random.Generator,
    height: int,
    width: int,
    specs: Sequence[ObjectSpec],
    required: Sequence[int],
    band: bool = False,
    photos: Sequence[np.ndarray] = (),
) -> tuple[np.ndarray, list[Instance], np.ndarray]:
    """render_scene, redrawn until every class in `required` keeps MIN_VISIBLE_PIXELS (after the
    VOC band when `band`); the layout is random, so overlaps can hide a class entirely."""
    for _ in range(MAX_LAYOUT_TRIES):
        image, instances, owner = render_scene(rng, height, width, specs, photos)
        label = class_map(owner, instances)
        if band:
            label = voc_boundary_band(label)
        counts = np.bincount(label.ravel(), minlength=256)
        if all(counts[c + 1] >= MIN_VISIBLE_PIXELS for c in required):
            return image, instances, owner
    raise ValueError(
        f"could not place classes {list(required)} visibly in a {height}x{width} image after "
        f"{MAX_LAYOUT_TRIES} layouts; use a larger --image-size"
    )


def _distractors(rng: np.random.Generator, maximum: int = 2) -> list[ObjectSpec]:
    """Unlabelled irregular blobs with random colours and textures."""
    return [
        ObjectSpec(
            Appearance("blob", tuple(int(x) for x in rng.integers(0, 256, 3)), str(rng.choice(TEXTURES))),
            -1,
        )
        for _ in range(int(rng.integers(0, maximum + 1)))
    ]


def _log_progress(done: int, total: int, what: str) -> None:
    if done % 200 == 0 or done == total:
        log.info("%s: %d/%d images", what, done, total)


# ----------------------------------------------------------------------------------------------
# PASCAL VOC2012 + SBD


def _pascal_specs(rng: np.random.Generator, primary: int, classes: Sequence[Appearance]) -> list[ObjectSpec]:
    """1-3 labelled objects (the first of class `primary`, the others the same or another class,
    as VOC images often hold a second class) plus 0-2 unlabelled distractors."""
    labels = [primary]
    for _ in range(int(rng.integers(0, 3))):
        labels.append(primary if rng.random() < 0.5 else int(rng.integers(len(classes))))
    return [ObjectSpec(classes[c], c) for c in labels] + _distractors(rng)


def generate_pascal(
    out: Path, *, seed: int = 0, image_size: int = 128, train_per_class: int = 15, val_per_class: int = 8,
    background: str = "clutter",
) -> dict[str, Any]:
    """Write a VOC2012 devkit and an SBD release under `out` (the notes at the top of
    hmfs.commands.prepare say how they combine) and `out/pascal_summary.json`; returns the summary.

    train_per_class: train_aug images per class as the image's main class; val_per_class: the
    same for VOC val. As in reality, part of train_aug is VOC train (half of it also in SBD), the
    rest SBD only, and a quarter of VOC val is also listed in SBD (which prepare must drop from
    training). VOC masks carry the 255 band, SBD masks do not.
    """
    if train_per_class < 1 or val_per_class < 1:
        raise ValueError(f"images per class must be >= 1, got train {train_per_class}, val {val_per_class}")
    out = Path(out)
    photos = backdrop_photos(background)
    rng = np.random.default_rng([seed, _PASCAL])
    classes = draw_appearances(rng, len(VOC_CLASSES))
    n_train, n_val = len(VOC_CLASSES) * train_per_class, len(VOC_CLASSES) * val_per_class
    codes = rng.choice(5 * 100_000, size=n_train + n_val, replace=False)  # years 2007..2011
    ids = [f"{2007 + code // 100_000}_{code % 100_000:06d}" for code in codes]
    train_ids, val_ids = ids[:n_train], ids[n_train:]
    voc_train, sbd_train, sbd_val = [], [], []
    for image_id in train_ids:
        draw = rng.random()
        if draw < 0.3:
            voc_train.append(image_id)
        if draw < 0.15 or draw >= 0.3:
            (sbd_train if rng.random() < 0.75 else sbd_val).append(image_id)
    for image_id in val_ids:
        if rng.random() < 0.25:
            (sbd_train if rng.random() < 0.75 else sbd_val).append(image_id)
    voc_seg = set(voc_train) | set(val_ids)
    sbd = set(sbd_train) | set(sbd_val)

    voc = out / "VOCdevkit" / "VOC2012"
    sbd_root = out / "benchmark_RELEASE" / "dataset"
    for folder in (voc / "JPEGImages", voc / "SegmentationClass", voc / "ImageSets" / "Segmentation",
                   sbd_root / "img", sbd_root / "cls"):  # fmt: skip
        folder.mkdir(parents=True, exist_ok=True)
    palette = voc_palette()
    per_class = {"train_aug": np.zeros(len(VOC_CLASSES), int), "val": np.zeros(len(VOC_CLASSES), int)}
    for split, split_ids, stream in (("train_aug", train_ids, 0), ("val", val_ids, 1)):
        for index, image_id in enumerate(split_ids):
            image_rng = np.random.default_rng([seed, _PASCAL, stream, index])
            height, width = _image_size(image_rng, image_size)
            primary = index % len(VOC_CLASSES)
            specs = _pascal_specs(image_rng, primary, classes)
            required = sorted({spec.label for spec in specs if spec.label >= 0})
            image, instances, owner = _scene_with_visible(
                image_rng, height, width, specs, required, band=image_id in voc_seg, photos=photos
            )
            label = class_map(owner, instances)  # (H, W) uint8, 0..20
            banded = voc_boundary_band(label)
            jpeg = _jpeg(image)
            _write(voc / "JPEGImages" / f"{image_id}.jpg", jpeg)
            if image_id in voc_seg:
                png = Image.fromarray(banded)
                png.putpalette(palette)  # turns the "L" image into a "P" one
                _write(voc / "SegmentationClass" / f"{image_id}.png", _png(png))
            if image_id in sbd:
                _write(sbd_root / "img" / f"{image_id}.jpg", jpeg)
                _write(sbd_root / "cls" / f"{image_id}.mat", _mat({"GTcls": _sbd_struct(label, banded)}))
            used = banded if image_id in voc_seg else label  # what prepare will read for this image
            present = np.unique(used)
            per_class[split][present[(present >= 1) & (present <= 20)] - 1] += 1
            _log_progress(index + 1, len(split_ids), f"pascal {split}")
    _write_lines(voc / "ImageSets" / "Segmentation" / "train.txt", sorted(voc_train))
    _write_lines(voc / "ImageSets" / "Segmentation" / "val.txt", sorted(val_ids))
    _write_lines(voc / "ImageSets" / "Segmentation" / "trainval.txt", sorted(voc_seg))
    _write_lines(sbd_root / "train.txt", sorted(sbd_train))
    _write_lines(sbd_root / "val.txt", sorted(sbd_val))
    summary = {
        "benchmark": "pascal",
        "seed": seed,
        "image_size": image_size,
        "background": background,
        "train_per_class": train_per_class,
        "val_per_class": val_per_class,
        "train_aug_images": n_train,
        "val_images": n_val,
        "voc_train": len(voc_train),
        "voc_val": len(val_ids),
        "sbd_train": len(sbd_train),
        "sbd_val": len(sbd_val),
        "voc_val_also_in_sbd": len(set(val_ids) & sbd),
        "classes": {name: look.describe() for name, look in zip(VOC_CLASSES, classes)},
        "images_per_class": {split: dict(zip(VOC_CLASSES, n.tolist())) for split, n in per_class.items()},
    }
    _write((out / "pascal_summary.json"), (json.dumps(summary, indent=2) + "\n").encode())
    return summary


def _sbd_struct(label: np.ndarray, banded: np.ndarray) -> dict[str, Any]:
    """SBD's GTcls: Segmentation (H, W) uint8 0..20, Boundaries (20 x 1 cell of sparse (H, W)
    outline maps, one per class) and CategoriesPresent (column of class ids)."""
    edge = banded == 255
    boundaries = np.empty((len(VOC_CLASSES), 1), dtype=object)
    for c in range(len(VOC_CLASSES)):
        boundaries[c, 0] = scipy.sparse.csc_matrix(edge & (label == c + 1))
    present = np.unique(label)
    return {
        "Segmentation": label,
        "Boundaries": boundaries,
        "CategoriesPresent": present[present > 0].astype(np.uint8).reshape(-1, 1),
    }


# ----------------------------------------------------------------------------------------------
# COCO 2014


def assign_classes(
    rng: np.random.Generator, n_images: int, n_classes: int, min_images: int, extra_prob: float = 0.3
) -> list[list[int]]:
    """Classes of each image such that every class is in at least `min_images` images: each class
    in turn goes to the `min_images` images holding the fewest classes so far (random ties), then
    some images get one more random class. Returns n_images lists of distinct class indices."""
    if n_classes * min_images > n_images * MAX_CLASSES_PER_IMAGE or min_images > n_images:
        raise ValueError(
            f"{n_images} images cannot give each of {n_classes} classes {min_images} images with at "
            f"most {MAX_CLASSES_PER_IMAGE} classes per image; raise the image count or lower "
            f"--min-images-per-class"
        )
    assigned: list[list[int]] = [[] for _ in range(n_images)]
    counts = np.zeros(n_images, dtype=int)
    for c in rng.permutation(n_classes):
        for i in np.lexsort((rng.random(n_images), counts))[:min_images]:
            assigned[i].append(int(c))
            counts[i] += 1
    for classes in assigned:
        if (not classes or rng.random() < extra_prob) and len(classes) < MAX_CLASSES_PER_IMAGE:
            classes.append(int(rng.choice(np.setdiff1d(np.arange(n_classes), classes))))
    return assigned


def generate_coco(
    out: Path,
    *,
    seed: int = 0,
    image_size: int = 128,
    train_images: int = 400,
    val_images: int = 200,
    min_images_per_class: int = 6,
    background: str = "clutter",
) -> dict[str, Any]:
    """Write `out/coco/{train2014,val2014}/COCO_<split>2014_<12-digit id>.jpg`,
    `out/coco/annotations/instances_{train,val}2014.json` (real category ids and names; polygon
    segmentations, plus iscrowd=1 compressed-RLE regions for clusters of tiny copies) and
    `out/coco_summary.json`; returns the summary. Every class is visible in at least
    max(min_images_per_class, images * 2 // 80) images of each split."""
    out = Path(out)
    photos = backdrop_photos(background)
    rng = np.random.default_rng([seed, _COCO])
    classes = draw_appearances(rng, len(COCO_CATEGORIES))
    image_ids = rng.choice(np.arange(1, 581930), size=train_images + val_images, replace=False)
    categories = [{"supercategory": sup, "id": cid, "name": name} for cid, name, sup in COCO_CATEGORIES]
    summary: dict[str, Any] = {
        "benchmark": "coco",
        "seed": seed,
        "image_size": image_size,
        "background": background,
        "min_images_per_class": min_images_per_class,
        "classes": {name: look.describe() for (_, name, _), look in zip(COCO_CATEGORIES, classes)},
    }
    annotation_id = 0
    splits = (("train", image_ids[:train_images], 0), ("val", image_ids[train_images:], 1))
    for split, split_ids, stream in splits:
        folder = out / "coco" / f"{split}2014"
        folder.mkdir(parents=True, exist_ok=True)
        # More images buy more images per class (about COCO_CLASSES_PER_IMAGE classes per image).
        per_class_floor = max(min_images_per_class, len(split_ids) * COCO_CLASSES_PER_IMAGE // len(classes))
        assigned = assign_classes(np.random.default_rng([seed, _COCO, stream]), len(split_ids),
                                  len(classes), per_class_floor)  # fmt: skip
        images, annotations = [], []
        per_class = np.zeros(len(classes), int)
        crowds = 0
        for index, (image_id, image_classes) in enumerate(zip(split_ids.tolist(), assigned)):
            image_rng = np.random.default_rng([seed, _COCO, stream, index])
            height, width = _image_size(image_rng, image_size)
            specs = []
            for rank, c in enumerate(image_classes):
                # Every tenth image shows its first class as a crowd, so both kinds always exist.
                crowd = (index % 10 == 0 and rank == 0) or image_rng.random() < 0.05
                specs.append(ObjectSpec(classes[c], c, crowd=crowd))
                if image_rng.random() < 0.3:
                    specs.append(ObjectSpec(classes[c], c))
            specs += _distractors(image_rng)
            image, instances, owner = _scene_with_visible(image_rng, height, width, specs, image_classes, photos=photos)
            file_name = f"COCO_{split}2014_{image_id:012d}.jpg"
            _write(folder / file_name, _jpeg(image))
            images.append({"id": image_id, "file_name": file_name, "height": height, "width": width})
            for instance in instances:  # paint order: larger first, so ids grow as area shrinks
                if instance.label < 0:
                    continue
                annotation_id += 1
                rle = mask_utils.encode(np.asfortranarray(instance.mask.astype(np.uint8)))
                if instance.crowd:
                    segmentation: Any = {"size": [height, width], "counts": rle["counts"].decode("ascii")}
                    crowds += 1
                else:
                    segmentation = instance.polygons
                annotations.append({
                    "id": annotation_id,
                    "image_id": image_id,
                    "category_id": COCO_CATEGORIES[instance.label][0],
                    "segmentation": segmentation,
                    "area": float(mask_utils.area(rle)),
                    "bbox": [round(float(x), 2) for x in mask_utils.toBbox(rle)],
                    "iscrowd": int(instance.crowd),
                })  # fmt: skip
            present = np.unique(class_map(owner, instances)).astype(int)
            per_class[present[present > 0] - 1] += 1
            _log_progress(index + 1, len(split_ids), f"coco {split}")
        document = {
            "info": {"description": "hmfs synthetic COCO 2014 stand-in", "version": "1.0", "year": 2014},
            "licenses": [],
            "images": images,
            "annotations": annotations,
            "categories": categories,
        }
        annotations_dir = out / "coco" / "annotations"
        annotations_dir.mkdir(parents=True, exist_ok=True)
        _write(annotations_dir / f"instances_{split}2014.json", json.dumps(document).encode())
        summary[split] = {
            "images": len(images),
            "annotations": len(annotations),
            "crowd_annotations": crowds,
            "images_per_class_floor": per_class_floor,
            "images_per_class_min": int(per_class.min()),
        }
    _write(out / "coco_summary.json", (json.dumps(summary, indent=2) + "\n").encode())
    return summary


# ----------------------------------------------------------------------------------------------
# FSS-1000


def fss_class_names(rng: np.random.Generator, n: int) -> list[str]:
    """`n` distinct made-up lowercase words (some joined by '_', like FSS's 'hotel_slipper')."""
    consonants, vowels = "bdfgklmnprstvz", "aeiou"

    def word() -> str:
        syllables = int(rng.integers(2, 4))
        return "".join(rng.choice(list(consonants)) + rng.choice(list(vowels)) for _ in range(syllables))

    names: list[str] = []
    while len(names) < n:
        name = word() + (f"_{word()}" if rng.random() < 0.2 else "")
        if name not in names:
            names.append(name)
    return names


def generate_fss(out: Path, *, seed: int = 0, image_size: int = 128, num_classes: int = 50,
                 background: str = "clutter") -> dict[str, Any]:
    """Write `out/FSS-1000/<class>/{1..10}.jpg` + `.png` (mode L, 0 / 255), the split lists
    `out/FSS-1000/splits/{trn,val,test}.txt` (520:240:240 ratio; test.txt with CRLF line ends like
    HSNet's) and `out/fss_summary.json`; returns the summary. Images also show unlabelled
    objects of other classes."""
    n_trn = round(num_classes * FSS_SPLIT_RATIO[0] / sum(FSS_SPLIT_RATIO))
    n_val = round(num_classes * FSS_SPLIT_RATIO[1] / sum(FSS_SPLIT_RATIO))
    if min(n_trn, n_val, num_classes - n_trn - n_val) < 1:
        raise ValueError(f"--fss-classes {num_classes} leaves a split without classes; use >= 5")
    out = Path(out)
    photos = backdrop_photos(background)
    rng = np.random.default_rng([seed, _FSS])
    names = fss_class_names(rng, num_classes)
    classes = draw_appearances(rng, num_classes)
    root = out / "FSS-1000"
    for c, name in enumerate(names):
        (root / name).mkdir(parents=True, exist_ok=True)
        for n in range(1, FSS_IMAGES_PER_CLASS + 1):
            image_rng = np.random.default_rng([seed, _FSS, c, n])
            height, width = _image_size(image_rng, image_size)
            specs = [ObjectSpec(classes[c], c) for _ in range(int(image_rng.integers(1, 4)))]
            others = image_rng.choice(np.setdiff1d(np.arange(num_classes), [c]), int(image_rng.integers(0, 3)))
            specs += [ObjectSpec(classes[o], int(o)) for o in others]  # unlabelled in this class's masks
            specs += _distractors(image_rng)
            image, instances, owner = _scene_with_visible(image_rng, height, width, specs, [c], photos=photos)
            mask = np.where(class_map(owner, instances) == c + 1, np.uint8(255), np.uint8(0))
            _write(root / name / f"{n}.jpg", _jpeg(image))
            _write(root / name / f"{n}.png", _png(Image.fromarray(mask)))
        _log_progress((c + 1) * FSS_IMAGES_PER_CLASS, num_classes * FSS_IMAGES_PER_CLASS, "fss")
    order = [names[i] for i in rng.permutation(num_classes)]
    splits = {"trn": order[:n_trn], "val": order[n_trn:n_trn + n_val], "test": order[n_trn + n_val:]}
    (root / "splits").mkdir(exist_ok=True)
    for split, split_names in splits.items():
        _write_lines(root / "splits" / f"{split}.txt", split_names, "\r\n" if split == "test" else "\n")
    summary = {
        "benchmark": "fss",
        "seed": seed,
        "image_size": image_size,
        "background": background,
        "classes": len(names),
        "images_per_class": FSS_IMAGES_PER_CLASS,
        "splits": {split: len(split_names) for split, split_names in splits.items()},
        "appearance": {name: look.describe() for name, look in zip(names, classes)},
    }
    _write(out / "fss_summary.json", (json.dumps(summary, indent=2) + "\n").encode())
    return summary


# ----------------------------------------------------------------------------------------------
# Command line


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="write small synthetic benchmarks in the raw download formats",
        description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--out", type=Path, required=True, help="raw data folder to write")
    parser.add_argument("--benchmark", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS),
                        help="benchmarks to write")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="same seed and counts give the same bytes")
    parser.add_argument("--image-size", type=int, default=128, help="images are 75-125 %% of it per side")
    parser.add_argument("--pascal-train", type=int, default=15, help="train_aug images per class")
    parser.add_argument("--pascal-val", type=int, default=8, help="VOC val images per class")
    parser.add_argument("--coco-train", type=int, default=400, help="train2014 images")
    parser.add_argument("--coco-val", type=int, default=200, help="val2014 images")
    parser.add_argument("--min-images-per-class", type=int, default=6, help="COCO: per class and split")
    parser.add_argument("--fss-classes", type=int, default=50, help="split 520:240:240 like FSS-1000")
    parser.add_argument("--background", choices=BACKGROUNDS, default="clutter",
                        help="clutter: procedural only; photos: crops of scikit-image's real photos for most images")
    parser.set_defaults(func=run_generate)


def backdrop_photos(background: str) -> list[np.ndarray]:
    """The photos a generator draws backgrounds from: none for `clutter`, scikit-image's for `photos`."""
    if background not in BACKGROUNDS:
        raise ValueError(f"unknown background {background!r}; accepted: {', '.join(BACKGROUNDS)}")
    return load_photos() if background == "photos" else []


def run_generate(args: argparse.Namespace) -> int:
    if args.image_size < 32:
        raise ValueError(f"--image-size {args.image_size} is too small; use >= 32")
    common = {"seed": args.seed, "image_size": args.image_size, "background": args.background}
    for benchmark in args.benchmark:
        if benchmark == "pascal":
            summary = generate_pascal(args.out, train_per_class=args.pascal_train,
                                      val_per_class=args.pascal_val, **common)  # fmt: skip
        elif benchmark == "coco":
            summary = generate_coco(args.out, train_images=args.coco_train, val_images=args.coco_val,
                                    min_images_per_class=args.min_images_per_class, **common)  # fmt: skip
        else:
            summary = generate_fss(args.out, num_classes=args.fss_classes, **common)
        # Counts only: the per-class tables stay in <benchmark>_summary.json.
        keep = ("train", "val", "splits")
        counts = {k: v for k, v in summary.items() if not isinstance(v, dict) or k in keep}
        log.info("generated %s under %s: %s", benchmark, args.out, json.dumps(counts))
    return 0
