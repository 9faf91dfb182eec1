"""FSS-1000: one folder link per class and the trn/val/test class lists (the tree's own, else HSNet's)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from hmfs.data.images import image_size
from hmfs.data.prepare.common import check_size, link_folder, progress, read_list, require
from hmfs.runtime import atomic_write_bytes

log = logging.getLogger(__name__)

FSS_SPLITS = ("trn", "val", "test")


def prepare_fss(fss_dir: Path, out_dir: Path, splits_out: Path, images_per_class: int = 10) -> dict[str, Any]:
    """Build DATA/FSS-1000 (one symlink per class) and SPLITS/fss.

    fss_dir: the FSS-1000 folder (<class>/{1..10}.jpg + .png, splits/{trn,val,test}.txt);
    out_dir: DATA root; splits_out: SPLITS root. Returns the class count per split.
    """
    fss_dir, out_dir, splits_out = map(Path, (fss_dir, out_dir, splits_out))
    require(fss_dir, "the FSS-1000 folder (<class>/{1..10}.jpg and .png, splits/)")
    # The synthetic tree ships its own class lists; the real download has none, so HSNet's
    # (shipped in hmfs/splits/fss) are used for it.
    list_dir = fss_dir / "splits"
    if not list_dir.is_dir():
        from hmfs.data.splits import packaged_splits_dir

        list_dir = packaged_splits_dir() / "fss"
        log.info("no %s: using HSNet's FSS-1000 class lists from %s", fss_dir / "splits", list_dir)
    splits = {
        split: read_list(list_dir / f"{split}.txt", f"the FSS-1000 {split} class list (one class folder name per line)")
        for split in FSS_SPLITS
    }
    seen: dict[str, str] = {}
    for split, names in splits.items():
        for name in names:
            if name in seen:
                raise ValueError(f"FSS-1000 class {name!r} is in both {seen[name]}.txt and {split}.txt")
            seen[name] = split
    for done, name in enumerate(seen, 1):
        folder = require(fss_dir / name, f"the FSS-1000 class folder of {name!r}")
        for n in range(1, images_per_class + 1):
            mask_path = require(folder / f"{n}.png", f"mask {n}.png of FSS-1000 class {name!r}")
            width, height = image_size(mask_path)
            check_size(mask_path, (height, width), folder / f"{n}.jpg")
        link_folder(folder, out_dir / "FSS-1000" / name)
        progress(done, len(seen), "fss classes")
    for split, names in splits.items():
        text = "".join(f"{name}\n" for name in names)
        atomic_write_bytes(splits_out / "fss" / f"{split}.txt", text.encode(), fsync=False)
    summary = {split: len(names) for split, names in splits.items()}
    log.info("fss prepared: %s", json.dumps(summary))
    return summary
