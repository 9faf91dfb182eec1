"""Image and mask files read with PIL (no torch): a file that cannot be decoded raises an error naming it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# What PIL raises for a file that is not a whole image of a known format: OSError ("image file is
# truncated", UnidentifiedImageError, "Truncated File Read"), SyntaxError (a broken PNG chunk),
# ValueError, and the bomb check. FileNotFoundError (an OSError) is left alone: callers name the layout.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def unreadable(path: Path, what: str, error: BaseException) -> ValueError:
    """The error for a file PIL could not decode: `<path>: truncated or unreadable <what> (<PIL's reason>)`."""
    return ValueError(f"{path}: truncated or unreadable {what} ({type(error).__name__}: {error})")


def load_image(path: Path) -> Image.Image:
    """An RGB PIL image (grey or palette JPEGs converted, as HSNet's `.convert('RGB')`).

    A file PIL cannot decode (truncated, not an image) raises ValueError naming `path`.
    """
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except FileNotFoundError:
        raise
    except DECODE_ERRORS as error:
        raise unreadable(path, "image", error) from error


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file's header only (no decoding); ValueError naming `path` when unreadable."""
    try:
        with Image.open(path) as img:
            return img.size
    except FileNotFoundError:
        raise
    except DECODE_ERRORS as error:
        raise unreadable(path, "image", error) from error


def load_mask(path: Path, to_grey: bool = False) -> np.ndarray:
    """A label map as a (H, W) uint8 array.

    With `to_grey` (FSS-1000, whose masks HSNet reads with `.convert('L')`) every mode is converted
    to grey. Otherwise palette PNGs give their indices (no palette conversion, so VOC's class
    numbers survive), single-channel PNGs their values, and multi-channel masks a ValueError. A file
    PIL cannot decode (truncated, not an image) raises ValueError naming `path`.
    """
    try:
        with Image.open(path) as img:
            mode = img.mode
            if to_grey:  # before the palette case: a "P" FSS mask means its colours, as in HSNet
                array = np.array(img.convert("L"), dtype=np.uint8)
            elif mode in ("L", "P", "I", "I;16", "I;16B", "I;16L"):
                array = np.array(img)
            else:
                array = None
    except FileNotFoundError:
        raise
    except DECODE_ERRORS as error:
        raise unreadable(path, "mask", error) from error
    if array is None:
        raise ValueError(f"mask {path}: expected a single-channel (L or P) PNG, got mode {mode}")
    if array.dtype != np.uint8:  # 16/32-bit grey
        if array.min() < 0 or array.max() > 255:
            raise ValueError(f"mask {path}: values outside 0..255 in a {mode} image")
        array = array.astype(np.uint8)
    return array
