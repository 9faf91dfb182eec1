"""`python -m hmfs verify-data`: decode every image and mask of a prepared benchmark and list every bad file at once."""

from __future__ import annotations

import argparse
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hmfs.data import BENCHMARKS
from hmfs.data.images import load_image, load_mask
from hmfs.runtime import atomic_write_bytes

log = logging.getLogger(__name__)

CHUNK = 200  # pairs per thread task
PROGRESS_EVERY = 5000


def _listing(folder: Path, suffix: str) -> list[str]:
    """Sorted names in `folder` ending in `suffix`; FileNotFoundError naming the folder."""
    if not folder.is_dir():
        raise FileNotFoundError(f"prepared folder {folder} not found; run `python -m hmfs prepare` first")
    return sorted(entry.name for entry in os.scandir(folder) if entry.name.endswith(suffix))


def image_mask_pairs(benchmark: str, data_root: Path) -> list[tuple[Path, Path]]:
    """Every (image, mask) pair of a prepared benchmark, as the loaders find them.

    PASCAL: each VOC2012/SegmentationClassAug/<id>.png with VOC2012/JPEGImages/<id>.jpg; COCO: each
    COCO2014/annotations/<split>/<name>.png with COCO2014/<split>/<name>.jpg; FSS-1000: each
    <class>/<n>.jpg (and every <n>.png) of every class folder with its <n>.png (<n>.jpg).
    """
    root = Path(data_root)
    if benchmark == "pascal":
        voc = root / "VOC2012"
        return [(voc / "JPEGImages" / f"{name[:-4]}.jpg", voc / "SegmentationClassAug" / name)
                for name in _listing(voc / "SegmentationClassAug", ".png")]
    if benchmark == "coco":
        coco = root / "COCO2014"
        return [(coco / split / f"{name[:-4]}.jpg", coco / "annotations" / split / name)
                for split in ("train2014", "val2014") for name in _listing(coco / "annotations" / split, ".png")]
    if benchmark == "fss":
        fss = root / "FSS-1000"
        pairs = []
        for cls in _listing(fss, ""):
            folder = fss / cls
            if not folder.is_dir():
                continue
            stems = sorted({name.rsplit(".", 1)[0] for name in _listing(folder, ".jpg") + _listing(folder, ".png")})
            pairs += [(folder / f"{stem}.jpg", folder / f"{stem}.png") for stem in stems]
        return pairs
    raise ValueError(f"unknown benchmark {benchmark!r}; accepted: {', '.join(BENCHMARKS)}")


def _shown(path: Path) -> str:
    """The path, and the real file behind it when a symlinked folder leads elsewhere (the raw download)."""
    real = path.resolve()
    return str(path) if real == path.absolute() else f"{path} (the file {real})"


def check_pair(image: Path, mask: Path, to_grey: bool = False) -> list[str]:
    """What is wrong with one pair, one line per problem (empty when both decode and sizes match)."""
    problems, size, mask_hw = [], None, None
    try:
        size = load_image(image).size  # (W, H)
    except FileNotFoundError:
        problems.append(f"{image}: missing (the image of mask {mask})")
    except ValueError as error:
        problems.append(str(error).replace(str(image), _shown(image), 1))
    try:
        mask_hw = load_mask(mask, to_grey=to_grey).shape  # (H, W)
    except FileNotFoundError:
        problems.append(f"{mask}: missing (the mask of image {image})")
    except ValueError as error:
        problems.append(str(error).replace(str(mask), _shown(mask), 1))
    if size is not None and mask_hw is not None and (mask_hw[1], mask_hw[0]) != size:
        problems.append(f"{mask}: mask is {mask_hw[1]}x{mask_hw[0]} (WxH) but its image {_shown(image)} is "
                        f"{size[0]}x{size[1]}")
    return problems


def verify_benchmark(benchmark: str, data_root: Path, threads: int = 1) -> dict[str, int]:
    """Decode every image and mask of a prepared benchmark in `threads` threads (PIL decodes without
    the GIL); ValueError listing every unreadable, missing or mis-sized file, else the counts."""
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    pairs = image_mask_pairs(benchmark, data_root)
    if not pairs:
        raise ValueError(f"no image/mask pairs under {data_root} for {benchmark}; run `python -m hmfs prepare` first")
    to_grey = benchmark == "fss"  # HSNet reads FSS-1000 masks with .convert('L')

    def check_chunk(chunk: list[tuple[Path, Path]]) -> list[str]:
        return [problem for image, mask in chunk for problem in check_pair(image, mask, to_grey)]

    chunks = [pairs[start:start + CHUNK] for start in range(0, len(pairs), CHUNK)]
    problems, done = [], 0
    with ThreadPoolExecutor(threads) as pool:
        for chunk, found in zip(chunks, pool.map(check_chunk, chunks)):
            problems += found
            before, done = done, done + len(chunk)
            if before // PROGRESS_EVERY != done // PROGRESS_EVERY or done == len(pairs):
                log.info("%s: %d/%d pairs decoded, %d problem(s) so far", benchmark, done, len(pairs), len(problems))
    if problems:
        raise ValueError(f"{benchmark} under {data_root}: {len(problems)} problem(s) in {len(pairs):,} image/mask "
                         "pairs (replace or re-download these files, then prepare again):\n" + "\n".join(problems))
    return {"pairs": len(pairs)}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "verify-data", help="decode every image and mask of a prepared benchmark; list all bad files at once",
        description="Decode every image and mask the loaders will read (as they read them) and check that each "
                    "mask has its image's size; every unreadable, truncated, missing or mis-sized file is listed in "
                    "one error. The workflow runs it once after prepare, before any training.")
    parser.add_argument("--benchmark", required=True, choices=BENCHMARKS)
    parser.add_argument("--data-root", required=True, type=Path, help="the prepared DATA folder")
    parser.add_argument("--threads", type=int, default=1, help="decoding threads (the workflow passes the job's)")
    parser.add_argument("--summary", type=Path, default=None,
                        help="write the counts as JSON here when every file is good (the workflow's marker)")
    parser.set_defaults(func=run_verify)


def run_verify(args: argparse.Namespace) -> int:
    counts = verify_benchmark(args.benchmark, args.data_root, args.threads)
    log.info("%s: all %d image/mask pairs decode and match in size", args.benchmark, counts["pairs"])
    if args.summary is not None:
        text = json.dumps({"benchmark": args.benchmark, "data_root": str(args.data_root), **counts}, indent=2)
        atomic_write_bytes(args.summary, (text + "\n").encode(), fsync=False)
    return 0
