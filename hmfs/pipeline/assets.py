"""The real data in the workflow: which manifest assets a config needs, where each file lives, and the rules' flags.

Per asset (hmfs/download/manifest.yaml) the workflow runs
    download_asset            (head node) <downloads_dir>/<filename>, verified; deleted once unpacked
    unpack_asset              <raw_dir>/<asset>.unpacked.json, written after the archive is unpacked and its
                              members counted (or a folder the user unpacked before is counted and linked in)
    install_backbone_weights  <backbone_weights.dir>/<backbone>_imagenet.pth, for the weights files
unless `data.local` names the user's own copy (an archive or file: not downloaded; a folder: not
downloaded, and unpack_asset only counts it and links it in). Nothing is downloaded while
`data.download` is false: a run stops first with `downloads_refused`, the files and where to put them.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Any

from hmfs.download.gdrive import drive_url
from hmfs.download.manifest import Asset, Manifest, human_bytes, load_manifest

# The assets each benchmark's `prepare` reads, and torchvision's weights file of each backbone.
BENCHMARK_ASSETS = {
    "pascal": ("voc2012_trainval", "sbd"),
    "coco": ("coco_train2014", "coco_val2014", "coco_annotations2014"),
    "fss": ("fss1000",),
}
WEIGHT_ASSETS = {backbone: f"{backbone}_imagenet" for backbone in ("resnet18", "resnet34", "resnet50", "resnet101")}
# The names `data.local` accepts; workflow/schemas/config.schema.yaml lists the same (tested).
WORKFLOW_ASSETS = tuple(name for names in BENCHMARK_ASSETS.values() for name in names) + tuple(WEIGHT_ASSETS.values())


@functools.lru_cache(maxsize=8)
def _load(path: str | None) -> Manifest:
    return load_manifest(Path(path) if path else None)


def manifest(config: dict[str, Any]) -> Manifest:
    """The download manifest: data.manifest, or the one shipped in hmfs/download/."""
    path = config["data"].get("manifest")
    try:
        return _load(path)
    except (ValueError, FileNotFoundError) as error:
        raise ValueError(f"data.manifest: {error}") from None


def benchmarks(config: dict[str, Any]) -> list[str]:
    """The benchmarks the tables train or test on, in BENCHMARK_ASSETS order."""
    used = {spec[key] for spec in config["tables"].values() for key in ("benchmark", "test_benchmark") if key in spec}
    return [benchmark for benchmark in BENCHMARK_ASSETS if benchmark in used]


def needed_assets(config: dict[str, Any]) -> list[str]:
    """The manifest assets the config's data (data.source raw) and backbone weights (torchvision) come from."""
    names = []
    if config["data"]["source"] == "raw":
        names += [name for benchmark in benchmarks(config) for name in BENCHMARK_ASSETS[benchmark]]
    if config["backbone_weights"]["source"] == "torchvision":
        names += [WEIGHT_ASSETS[backbone] for backbone in config["backbones"]]
    return names


def uses_downloads(config: dict[str, Any]) -> bool:
    """Whether any data or weights come from the manifest (else everything is generated or pretrained)."""
    return bool(needed_assets(config))


def local_copy(config: dict[str, Any], name: str) -> str | None:
    """The user's own copy of an asset (data.local.<name>), or None."""
    return (config["data"].get("local") or {}).get(name)


def download_path(config: dict[str, Any], name: str) -> str:
    """Where download_asset puts an asset: <data.downloads_dir>/<manifest file name>."""
    return f"{config['data']['downloads_dir']}/{manifest(config).get(name).filename}"


def source_file(config: dict[str, Any], name: str) -> str | None:
    """The file unpack_asset or install_backbone_weights reads: the user's copy when it is a file,
    else the download; None when the user's copy is an unpacked folder (nothing to download)."""
    local = local_copy(config, name)
    if local is None:
        return download_path(config, name)
    return None if os.path.isdir(local) else local


def unpack_record(config: dict[str, Any], name: str) -> str:
    """Written last by `unpack --summary`: the asset is in the raw folder, counted (and its provenance)."""
    return f"{config['data']['raw_dir']}/{name}.unpacked.json"


def prepare_records(config: dict[str, Any], benchmark: str) -> list[str]:
    """The unpack records a benchmark's prepare reads (its declared inputs, copied into its record)."""
    if config["data"]["source"] != "raw":
        return []
    return [unpack_record(config, name) for name in BENCHMARK_ASSETS[benchmark]]


def _alternatives(values: list[str]) -> str:
    return "|".join(re.escape(value) for value in values)


def filename_constraint(config: dict[str, Any]) -> str:
    """The {filename} wildcard of download_asset: the manifest file name of a workflow asset."""
    known = manifest(config).names
    return _alternatives([manifest(config).get(name).filename for name in WORKFLOW_ASSETS if name in known])


def asset_constraint() -> str:
    """The {asset} wildcard of unpack_asset: an archive asset of a benchmark."""
    return _alternatives([name for names in BENCHMARK_ASSETS.values() for name in names])


def asset_of_filename(config: dict[str, Any], filename: str) -> str:
    """The asset whose manifest file name is `filename`."""
    for name in WORKFLOW_ASSETS:
        if name in manifest(config).names and manifest(config).get(name).filename == filename:
            return name
    raise ValueError(f"no asset of the workflow is downloaded as {filename!r}")


def _manifest_flags(config: dict[str, Any]) -> list[str]:
    return ["--manifest", config["data"]["manifest"]] if config["data"].get("manifest") else []


def download_flags(config: dict[str, Any], filename: str) -> list[str]:
    """`python -m hmfs fetch` flags of download_asset; --offline while data.download is false."""
    flags = ["--asset", asset_of_filename(config, filename), "--out", config["data"]["downloads_dir"]]
    flags += _manifest_flags(config)
    return flags if config["data"]["download"] else flags + ["--offline"]


def unpack_flags(config: dict[str, Any], name: str) -> list[str]:
    """`python -m hmfs unpack` flags of unpack_asset: the archive (downloaded or the user's), or the
    user's unpacked folder."""
    source = source_file(config, name)
    flags = ["--asset", name, "--out", config["data"]["raw_dir"], "--summary", unpack_record(config, name)]
    flags += ["--archive", source] if source is not None else ["--local", local_copy(config, name)]
    return flags + _manifest_flags(config)


def weights_flags(config: dict[str, Any], backbone: str, out: str) -> list[str]:
    """`python -m hmfs fetch-weights` flags of install_backbone_weights: the downloaded (or the
    user's) file, checked and copied to `out`."""
    name = WEIGHT_ASSETS[backbone]
    return ["--backbone", backbone, "--source", source_file(config, name), "--out", out] + _manifest_flags(config)


def check_data_sources(config: dict[str, Any]) -> None:
    """Checks before any job: the manifest loads and holds every asset the config needs, and each
    data.local entry names an existing file or folder of the right kind. Errors name the key."""
    if not uses_downloads(config):
        return
    missing = [f"data.{key}" for key in ("download", "downloads_dir") if key not in config["data"]]
    if missing:
        raise ValueError(f"{' and '.join(missing)} must be set: this config downloads backbone weights "
                         "(backbone_weights.source torchvision); e.g. download: false, "
                         "downloads_dir: resources/downloads")
    entries = manifest(config)
    for name in needed_assets(config):
        if name not in entries.names:
            raise ValueError(f"data.manifest ({entries.source}) has no asset {name!r}, which this config needs; "
                             f"it has {', '.join(entries.names)}")
    for name, path in (config["data"].get("local") or {}).items():
        key = f"data.local.{name}"
        if name not in entries.names:
            raise ValueError(f"{key}: the manifest ({entries.source}) has no asset {name!r}")
        asset = entries.get(name)
        if not os.path.exists(path):
            kind = "the file" if asset.unpack is None else "the archive or the folder it was unpacked into"
            raise FileNotFoundError(f"{key}: {path} does not exist; name {kind} ({asset.filename})")
        if asset.unpack is None and os.path.isdir(path):
            raise ValueError(f"{key}: {path} is a folder; name the file itself ({asset.filename})")
        if os.path.realpath(path) == os.path.realpath(download_path(config, name)):
            raise ValueError(f"{key}: {path} is where downloads go, and a download is deleted once unpacked; leave "
                             "a file there without naming it, or name a copy kept elsewhere")


def _source_text(asset: Asset) -> str:
    url = asset.urls[0]
    return drive_url(url[len("gdrive:"):]) + " (Google Drive)" if url.startswith("gdrive:") else url


def _shown_configfile(configfiles: list[str]) -> str:
    """The config file(s) a run read, relative to the working folder where possible."""
    if not configfiles:
        return "config.yaml"
    return " ".join(os.path.relpath(path) if os.path.isabs(path) else str(path) for path in map(str, configfiles))


def downloads_refused(config: dict[str, Any], filenames: list[str], configfiles: list[str] = ()) -> str | None:
    """The error that stops a run which would download `filenames` (the planned download_asset jobs)
    while data.download is false: every file with its size and source, where to put it, and how to
    allow downloads. None when nothing would be downloaded or downloads are allowed.
    configfiles: the --configfile files of the run (none: config.yaml)."""
    if not filenames or config["data"]["download"]:
        return None
    configfile = _shown_configfile(list(configfiles))
    wanted = {asset_of_filename(config, filename) for filename in filenames}
    assets = [asset for asset in manifest(config).assets if asset.name in wanted]
    total = sum(asset.size or asset.approx_size or 0 for asset in assets)
    places = [download_path(config, asset.name) for asset in assets]
    name_width, place_width = max(len(asset.name) for asset in assets), max(map(len, places))
    lines = [f"data.download is false in {configfile}, so nothing is downloaded, and this run needs {len(assets)} "
             f"file(s) that are not here (about {human_bytes(total)} in all):"]
    for asset, place in zip(assets, places):
        lines.append(f"  {asset.name:<{name_width}}  {place:<{place_width}}  {asset.size_text}")
        lines.append(f"  {'':<{name_width}}  from {_source_text(asset)}")
    example = assets[0]
    lines += [
        "Either",
        f"  - set `data.download: true` in {configfile}: the rules download these files (on the head node, which "
        "needs internet), resume broken transfers, check sizes and checksums, and delete each archive once it is "
        "unpacked;",
        "  - or put each file at the path shown (it is verified before use; every source, size and checksum is in "
        "hmfs/download/manifest.yaml);",
        f"  - or name your own copy under `data.local` in {configfile}, the file or the folder it was unpacked into, "
        f"e.g. `local: {{{example.name}: /datasets/{example.filename}}}` (checked once, never deleted).",
        "Looking for the embedded synthetic benchmark, which needs no download? Pass its config: `snakemake "
        "--configfile workflow/config.synthetic.yaml ...`; its report: `make report`, or `snakemake report.html "
        "--configfile workflow/config.synthetic.yaml`.",
    ]
    return "\n".join(lines)


def check_downloads_allowed(config: dict[str, Any], filenames: list[str], configfiles: list[str] = ()) -> None:
    """Raise `downloads_refused`'s error when there is one (the workflow's onstart check)."""
    message = downloads_refused(config, filenames, configfiles)
    if message is not None:
        raise ValueError(message)
