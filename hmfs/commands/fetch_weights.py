"""`python -m hmfs fetch-weights`: torchvision's ImageNet ResNet weights, checked against the manifest and the architecture."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from hmfs.model.backbone import BACKBONES

log = logging.getLogger(__name__)


def weights_asset(backbone: str) -> str:
    """The download manifest's name for `backbone`'s IMAGENET1K_V1 file (resnet50 -> resnet50_imagenet)."""
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; accepted: {', '.join(BACKBONES)}")
    return f"{backbone}_imagenet"


def torchvision_weights_url(backbone: str) -> str:
    """The IMAGENET1K_V1 file of `backbone` (what HSNet loads), as torchvision publishes it."""
    import torchvision

    weights_asset(backbone)  # an unknown backbone fails here, listing the accepted ones
    enum = torchvision.models.get_model_weights(backbone)
    return enum.IMAGENET1K_V1.url


def fetch_weights(backbone: str, out: Path, *, source: Path | None = None, url: str | None = None,
                  manifest: Path | None = None) -> Path:
    """Put torchvision's IMAGENET1K_V1 file of `backbone` at `out` and return `out`.

    source: a copy already on disk (what the workflow's `download_asset` fetched, or your own);
    without it the file is downloaded (hmfs.download: the manifest's sources in order, resumed,
    verified) beside `out` under its published name. Either way the file must match the manifest's
    checksum (the sha256 prefix torchvision puts in its name) and fit `backbone`; `out`, a copy,
    appears only when both pass. url: another source to download from instead of the manifest's.
    """
    from hmfs.download.http import download
    from hmfs.download.manifest import load_manifest, override_urls
    from hmfs.download.verify import verify_archive
    from hmfs.model.backbone import build_backbone

    name = weights_asset(backbone)
    entries = load_manifest(manifest)
    if url is not None:
        entries = override_urls(entries, {name: [url]})
    asset = entries.get(name)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if source is None:
        source = download(asset, out.parent / asset.filename)
    else:
        verify_archive(asset, Path(source))
    partial = out.with_name(f".{out.name}.part")
    shutil.copyfile(source, partial)
    try:
        build_backbone(backbone, partial)  # raises when the weights do not fit this architecture
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(out)
    log.info("%s: %s -> %s (%s)", name, source, out, asset.checksum)
    return out


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("fetch-weights", description=__doc__,
                                   help="download (or take) torchvision's ImageNet ResNet weights, verified")
    parser.add_argument("--backbone", required=True, choices=BACKBONES)
    parser.add_argument("--out", required=True, type=Path, help="weights file to write")
    parser.add_argument("--source", type=Path, default=None,
                        help="a copy of torchvision's file already on disk (default: download it)")
    parser.add_argument("--url", default=None, help="download from this address instead of the manifest's")
    parser.add_argument("--manifest", type=Path, default=None, help="another download manifest (default: hmfs's own)")
    parser.set_defaults(func=lambda args: (fetch_weights(args.backbone, args.out, source=args.source, url=args.url,
                                                         manifest=args.manifest), 0)[1])
