"""What the preparers share: mask writes, required inputs, text lists, folder links, size checks, progress lines."""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from hmfs.data.images import image_size
from hmfs.runtime import atomic_write_bytes

log = logging.getLogger(__name__)

N_FOLDS = 4
PROGRESS_EVERY = 1000  # files between two progress lines


def write_png(path: Path, label: np.ndarray) -> None:
    """label: (H, W) uint8, written as a single-channel "L" PNG (atomically, without fsync: regenerable)."""
    buffer = io.BytesIO()
    Image.fromarray(label).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue(), fsync=False)


def require(path: Path, expected: str) -> Path:
    """`path` if it exists, else FileNotFoundError naming it and what should be there."""
    if not path.exists():
        raise FileNotFoundError(f"expected {expected} at {path}")
    return path


def read_list(path: Path, expected: str) -> list[str]:
    """Non-empty lines of a text list, LF or CRLF."""
    return [line.strip() for line in require(path, expected).read_text().splitlines() if line.strip()]


def link_folder(target: Path, link: Path) -> None:
    """Make `link` a relative symlink to the folder `target` (an older symlink is replaced).

    Relative, so that the project (raw and prepared folders together) can be moved or copied whole;
    `cp -rL` makes a copy of the prepared folder alone that holds the images themselves.
    """
    link.parent.mkdir(parents=True, exist_ok=True)
    relative = os.path.relpath(target.resolve(), link.parent.resolve())
    if link.is_symlink():
        if os.readlink(link) == relative:
            return
    elif link.exists():
        raise ValueError(f"{link} exists and is not a symlink; remove it or prepare into another --out")
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.name}.tmp-link")
    if tmp.is_symlink():
        tmp.unlink()
    tmp.symlink_to(relative, target_is_directory=True)
    os.replace(tmp, link)


def check_size(mask_name: Path | str, mask_hw: tuple[int, int], image: Path) -> None:
    """ValueError when a (H, W) mask does not match the size of its image file (read from its header)."""
    width, height = image_size(require(image, f"the image of mask {mask_name}"))
    if (height, width) != tuple(mask_hw):
        raise ValueError(
            f"mask {mask_name} is {mask_hw[0]}x{mask_hw[1]} (HxW) but its image {image} is {height}x{width}"
        )


def progress(done: int, total: int, what: str) -> None:
    """An INFO line every PROGRESS_EVERY files and at the end."""
    if done % PROGRESS_EVERY == 0 or done == total:
        log.info("%s: %d/%d", what, done, total)


def read_json(path: Path) -> Any:
    """A JSON file's content; ValueError naming the file when it is truncated or not JSON."""
    try:
        return json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: truncated or invalid JSON ({error})") from error

