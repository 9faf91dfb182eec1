"""What the generators share: random streams, image sizes, scenes redrawn until every class shows, progress lines."""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from hmfs.synthetic.formats import voc_boundary_band
from hmfs.synthetic.scenes import Instance, ObjectSpec, class_map, render_scene

log = logging.getLogger(__name__)

MIN_VISIBLE_PIXELS = 16  # every class drawn into an image keeps at least this many labelled pixels
MAX_LAYOUT_TRIES = 50
# Stream ids that keep the random streams of the benchmarks and splits apart (pretraining's are 11-13).
PASCAL_STREAM, COCO_STREAM, FSS_STREAM = 1, 2, 3


def random_image_size(rng: np.random.Generator, image_size: int) -> tuple[int, int]:
    """(height, width), each within +-25 % of `image_size`."""
    height, width = (int(round(image_size * rng.uniform(0.75, 1.25))) for _ in range(2))
    return height, width


def scene_with_visible(
    rng: np.random.Generator,
    height: int,
    width: int,
    specs: Sequence[ObjectSpec],
    required: Sequence[int],
    band: bool = False,
    photos: Sequence[np.ndarray] = (),
) -> tuple[np.ndarray, list[Instance], np.ndarray]:
    """render_scene, redrawn until every class in `required` keeps MIN_VISIBLE_PIXELS (after the
    VOC band when `band`); the layout is random, so overlaps can hide a class entirely. Returns
    render_scene's (image (H, W, 3) uint8, instances, owner (H, W) int16)."""
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


def log_progress(done: int, total: int, what: str) -> None:
    """An INFO line every 200 images and at the end."""
    if done % 200 == 0 or done == total:
        log.info("%s: %d/%d images", what, done, total)

