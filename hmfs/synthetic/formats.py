"""The raw formats of the synthetic benchmarks: JPEG, PNG and MAT bytes, VOC's palette and void band, SBD's struct."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import scipy.io
import scipy.ndimage
import scipy.sparse
from PIL import Image

from hmfs.data import PASCAL_CLASSES
from hmfs.runtime import atomic_write_bytes

VOC_CLASSES = PASCAL_CLASSES
JPEG_QUALITY = 90
# Fixed MAT-file header text: scipy writes the creation time there, which would break determinism.
MAT_HEADER = b"MATLAB 5.0 MAT-file, Platform: posix, Created by: hmfs.synthetic".ljust(116, b" ")


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


def sbd_struct(label: np.ndarray, banded: np.ndarray) -> dict[str, Any]:
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


def encode_jpeg(image: np.ndarray) -> bytes:
    """image: (H, W, 3) uint8 RGB -> JPEG bytes at JPEG_QUALITY."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def encode_png(image: Image.Image) -> bytes:
    """A PIL image ("L" or "P") -> PNG bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def encode_mat(variables: dict[str, Any]) -> bytes:
    """A MATLAB 5 file of `variables`, with MAT_HEADER in place of scipy's dated header."""
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, variables)
    return MAT_HEADER + buffer.getvalue()[len(MAT_HEADER):]


def write_lines(path: Path, lines: Sequence[str], newline: str = "\n") -> None:
    """A text list, each line ended by `newline`; written atomically, without fsync (regenerable data)."""
    atomic_write_bytes(path, "".join(line + newline for line in lines).encode(), fsync=False)
