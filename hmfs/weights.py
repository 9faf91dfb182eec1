"""`python -m hmfs fetch-weights`: torchvision's ImageNet ResNet weights, downloaded once and checked against their published hash."""

from __future__ import annotations

import logging
import re
import urllib.error
from pathlib import Path

from hmfs.model.backbone import BACKBONES

log = logging.getLogger(__name__)

# torchvision names each weights file <arch>-<first 8 hex digits of its sha256>.pth.
HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,})\.")


def torchvision_weights_url(backbone: str) -> str:
    """The IMAGENET1K_V1 file of `backbone` (what HSNet loads), as torchvision publishes it."""
    import torchvision

    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; accepted: {', '.join(BACKBONES)}")
    enum = torchvision.models.get_model_weights(backbone)
    return enum.IMAGENET1K_V1.url


def fetch_weights(backbone: str, out: Path, url: str | None = None) -> Path:
    """Download `url` (default: torchvision's IMAGENET1K_V1 file) to `out`, check the sha256 prefix
    the file name carries and that the weights fit `backbone`; the file appears only when all pass."""
    import torch

    from hmfs.model.backbone import build_backbone

    url = url or torchvision_weights_url(backbone)
    match = HASH_IN_NAME.search(url.rsplit("/", 1)[-1])
    if match is None:
        raise ValueError(f"{url} carries no sha256 prefix in its name (<name>-<hex>.pth); cannot verify it")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.part")
    log.info("downloading %s -> %s (sha256 must start with %s)", url, out, match.group(1))
    try:
        torch.hub.download_url_to_file(url, str(partial), hash_prefix=match.group(1), progress=False)
    except RuntimeError as error:  # torch.hub's hash mismatch
        partial.unlink(missing_ok=True)
        raise ValueError(f"{url}: {error}") from error
    except (urllib.error.URLError, OSError) as error:
        partial.unlink(missing_ok=True)
        raise ValueError(f"could not download {url} ({error}); without internet, copy the file to {out} "
                         "by hand (its sha256 must start with the hex in its name)") from error
    try:
        build_backbone(backbone, partial)  # raises when the weights do not fit this architecture
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(out)
    return out


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("fetch-weights", help="download and verify torchvision's ImageNet ResNet weights",
                                   description=__doc__)
    parser.add_argument("--backbone", required=True, choices=BACKBONES)
    parser.add_argument("--out", required=True, type=Path, help="weights file to write")
    parser.add_argument("--url", default=None, help="another copy of the file (default: torchvision's)")
    parser.set_defaults(func=lambda args: (fetch_weights(args.backbone, args.out, args.url), 0)[1])
