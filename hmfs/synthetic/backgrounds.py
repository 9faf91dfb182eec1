"""Natural-image backgrounds for the synthetic benchmark: crops of the real photos and textures scikit-image ships."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image

BACKGROUNDS = ("clutter", "photos")  # procedural clutter only, or real photo crops (with the clutter drawn over them)

# The photographs and textures in scikit-image's wheel (skimage/data; no download): scenes, animals,
# objects, microscopy, astronomy and textures (brick, grass, gravel), so crops carry natural image
# statistics (1/f spectra, edges, texture) at every scale. Grey ones are tinted when used.
PHOTO_NAMES = ("astronaut", "brick", "camera", "cell", "chelsea", "coffee", "coins", "grass", "gravel",
               "hubble_deep_field", "immunohistochemistry", "moon", "page", "retina", "rocket", "text")
CROP_FRACTION = (0.25, 1.0)  # side of the square crop over the photo's shorter side (zoom range)


def load_photos() -> list[np.ndarray]:
    """The photos of `PHOTO_NAMES` plus the stereo motorcycle pair, each (H, W, 3) uint8, in a fixed order."""
    import skimage.data

    photos = []
    for name in PHOTO_NAMES:
        image = np.asarray(getattr(skimage.data, name)())
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        photos.append(np.ascontiguousarray(image[..., :3]))
    left, right, _ = skimage.data.stereo_motorcycle()
    return photos + [np.asarray(left), np.asarray(right)]


def photo_background(rng: np.random.Generator, photos: Sequence[np.ndarray], height: int, width: int) -> np.ndarray:
    """A random square crop of a random photo, resized to (height, width), flipped and recoloured; (H, W, 3) float32.

    Recolouring (a channel permutation and per-channel gains 0.7-1.2) keeps the photo's structure
    but stops the colours of a few photos from becoming a cue.
    """
    photo = photos[int(rng.integers(len(photos)))]
    rows, cols = photo.shape[:2]
    side = rng.uniform(*CROP_FRACTION) * min(rows, cols)
    top, left = rng.uniform(0, rows - side), rng.uniform(0, cols - side)
    crop = Image.fromarray(photo).crop((int(left), int(top), int(left + side), int(top + side)))
    image = np.asarray(crop.resize((width, height), Image.BILINEAR), dtype=np.float32)
    if rng.random() < 0.5:
        image = image[:, ::-1]
    image = image[..., rng.permutation(3)] * rng.uniform(0.7, 1.2, 3).astype(np.float32)
    return np.clip(image, 0, 255)


def backdrop_photos(background: str) -> list[np.ndarray]:
    """The photos a generator draws backgrounds from: none for `clutter`, scikit-image's for `photos`."""
    if background not in BACKGROUNDS:
        raise ValueError(f"unknown background {background!r}; accepted: {', '.join(BACKGROUNDS)}")
    return load_photos() if background == "photos" else []
