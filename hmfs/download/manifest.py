"""The download manifest (manifest.yaml): loaded, checked key by key, and returned as frozen dataclasses."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Mapping, Sequence

import yaml

DEFAULT_MANIFEST = Path(__file__).resolve().with_name("manifest.yaml")
ARCHIVE_KINDS = ("tar", "tgz", "zip", "file")
URL_SCHEMES = ("http://", "https://", "file://", "gdrive:")

# hashlib algorithm and hex length of each checksum kind; sha256-prefix is torchvision's
# name-embedded prefix of a file's sha256 (resnet50-0676ba61.pth).
CHECKSUM_KINDS = {"md5": ("md5", 32), "sha256": ("sha256", 64), "sha256-prefix": ("sha256", None)}
_CHECKSUM = re.compile(r"^(md5|sha256|sha256-prefix):([0-9a-f]+)$")
_DRIVE_ID = re.compile(r"^[A-Za-z0-9_-]{10,}$")
_ASSET_NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")

_REQUIRED = ("description", "urls", "filename", "size", "checksum", "archive")
_OPTIONAL = ("checksum_note", "approx_size", "unpack", "optional", "note")
_UNPACK_KEYS = ("into", "rename", "expect")


@dataclass(frozen=True)
class Checksum:
    """An expected digest: `kind` is md5, sha256 or sha256-prefix; `hexdigest` is lower-case hex."""

    kind: str
    hexdigest: str

    @property
    def algorithm(self) -> str:
        """The hashlib name to compute (sha256 for sha256-prefix)."""
        return CHECKSUM_KINDS[self.kind][0]

    def matches(self, computed_hexdigest: str) -> bool:
        """Whether a full hexdigest of `algorithm` satisfies this checksum."""
        if self.kind == "sha256-prefix":
            return computed_hexdigest.startswith(self.hexdigest)
        return computed_hexdigest == self.hexdigest

    def __str__(self) -> str:
        return f"{self.kind}:{self.hexdigest}"


def parse_checksum(text: str) -> Checksum:
    """`md5:<32 hex>`, `sha256:<64 hex>` or `sha256-prefix:<8..63 hex>` -> Checksum; ValueError otherwise."""
    match = _CHECKSUM.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"checksum {text!r} is not md5:<32 hex>, sha256:<64 hex> or sha256-prefix:<8..63 hex> "
                         "(lower-case hex)")
    kind, digest = match.groups()
    length = CHECKSUM_KINDS[kind][1]
    if (length is not None and len(digest) != length) or (length is None and not 8 <= len(digest) < 64):
        expected = f"{length}" if length is not None else "8 to 63"
        raise ValueError(f"checksum {text!r} has {len(digest)} hex digits; {kind} needs {expected}")
    return Checksum(kind, digest)


@dataclass(frozen=True)
class Unpack:
    """Where an archive's top-level entries go (`into`, relative to the raw folder) and what they must hold."""

    into: str
    rename: tuple[tuple[str, str], ...]  # (top-level entry in the archive, name in `into`)
    expect: tuple[tuple[str, int], ...]  # (glob pattern relative to `into`, number of files)

    @property
    def rename_map(self) -> dict[str, str]:
        return dict(self.rename)

    @property
    def expected_counts(self) -> dict[str, int]:
        return dict(self.expect)


@dataclass(frozen=True)
class Asset:
    """One downloadable file of the manifest."""

    name: str
    description: str
    urls: tuple[str, ...]
    filename: str
    size: int | None
    checksum: Checksum | None
    checksum_note: str | None
    archive: str
    unpack: Unpack | None
    optional: bool = False
    note: str | None = None
    approx_size: int | None = None  # bytes, for messages only, where `size` is not published

    @property
    def size_text(self) -> str:
        """`1,999,639,040 bytes (1.9 GB)`, `about 679 MB (size not published)` or `size not published`."""
        if self.size is not None:
            return f"{self.size:,} bytes ({human_bytes(self.size)})"
        if self.approx_size is not None:
            return f"about {human_bytes(self.approx_size)} (size not published)"
        return "size not published"

    def unpack_dir(self, raw_dir: Path) -> Path:
        """The folder under `raw_dir` that receives this archive's top-level entries."""
        if self.unpack is None:
            raise ValueError(f"asset {self.name!r} is a plain {self.archive!r} file; there is nothing to unpack")
        return Path(raw_dir) / self.unpack.into


@dataclass(frozen=True)
class Manifest:
    """The assets of one manifest file, in file order."""

    assets: tuple[Asset, ...]
    source: str

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(asset.name for asset in self.assets)

    def get(self, name: str) -> Asset:
        for asset in self.assets:
            if asset.name == name:
                return asset
        raise ValueError(f"unknown asset {name!r} in {self.source}; known: {', '.join(self.names)}")


def human_bytes(n: float) -> str:
    """Bytes in decimal units, as download pages print them: `13.5 GB`, `679 MB`."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit in ("B", "kB", "MB") else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def _fail(asset: str, key: str, problem: str, source: str) -> ValueError:
    return ValueError(f"{source}: asset {asset!r}, key {key!r}: {problem}")


def _relative_path(text: Any, *, single: bool) -> bool:
    """Whether `text` is a relative POSIX path without `..` (a single component when `single`)."""
    if not isinstance(text, str) or not text or "\\" in text:
        return False
    path = PurePosixPath(text)
    if path.is_absolute() or ".." in path.parts:
        return False
    return len(path.parts) == 1 if single else True


def check_url(url: Any) -> str:
    """Return `url` when it is http(s)://, file:// or gdrive:<id>; ValueError naming it otherwise."""
    if not isinstance(url, str) or not url.startswith(URL_SCHEMES):
        raise ValueError(f"URL {url!r} must start with one of {', '.join(URL_SCHEMES)}")
    if url.startswith("gdrive:") and not _DRIVE_ID.match(url[len("gdrive:"):]):
        raise ValueError(f"URL {url!r}: a Drive id is 10 or more of A-Z a-z 0-9 _ -")
    return url


def _parse_unpack(name: str, raw: Any, source: str) -> Unpack:
    if not isinstance(raw, dict):
        raise _fail(name, "unpack", f"must be a mapping with keys {', '.join(_UNPACK_KEYS)}, got {raw!r}", source)
    unknown = sorted(set(raw) - set(_UNPACK_KEYS))
    if unknown:
        raise _fail(name, f"unpack.{unknown[0]}", f"unknown key; accepted: {', '.join(_UNPACK_KEYS)}", source)
    into = raw.get("into")
    if not _relative_path(into, single=False):
        raise _fail(name, "unpack.into", f"{into!r} must be a relative folder without '..' ('.' for the raw "
                    "folder itself)", source)
    rename = raw.get("rename") or {}
    if not isinstance(rename, dict) or not all(_relative_path(k, single=True) and _relative_path(v, single=True)
                                               for k, v in rename.items()):
        raise _fail(name, "unpack.rename", f"{rename!r} must map top-level names to top-level names", source)
    expect = raw.get("expect")
    if not isinstance(expect, dict) or not expect:
        raise _fail(name, "unpack.expect", f"{expect!r} must map glob patterns to file counts", source)
    for pattern, count in expect.items():
        if not _relative_path(pattern, single=False):
            raise _fail(name, "unpack.expect", f"pattern {pattern!r} must be relative and without '..'", source)
        if type(count) is not int or count < 0:
            raise _fail(name, "unpack.expect", f"count of {pattern!r} must be an integer >= 0, got {count!r}", source)
    return Unpack(str(into), tuple((str(k), str(v)) for k, v in rename.items()),
                  tuple((str(k), int(v)) for k, v in expect.items()))


def _parse_asset(name: Any, raw: Any, source: str) -> Asset:
    if not isinstance(name, str) or not _ASSET_NAME.match(name):
        raise ValueError(f"{source}: asset name {name!r} must be lower-case letters, digits and _")
    if not isinstance(raw, dict):
        raise _fail(name, "(asset)", f"must be a mapping, got {type(raw).__name__}", source)
    unknown = sorted(set(raw) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise _fail(name, unknown[0], f"unknown key; accepted: {', '.join(_REQUIRED + _OPTIONAL)}", source)
    missing = [key for key in _REQUIRED if key not in raw]
    if missing:
        raise _fail(name, missing[0], "missing (write null where a value is unknown)", source)
    urls = raw["urls"]
    if not isinstance(urls, list) or not urls:
        raise _fail(name, "urls", f"must be a non-empty list, got {urls!r}", source)
    for url in urls:
        try:
            check_url(url)
        except ValueError as error:
            raise _fail(name, "urls", str(error), source) from None
    filename = raw["filename"]
    if not _relative_path(filename, single=True) or str(filename).startswith("."):
        raise _fail(name, "filename", f"{filename!r} must be a plain file name (no folders, not hidden)", source)
    size = raw["size"]
    if size is not None and (type(size) is not int or size <= 0):
        raise _fail(name, "size", f"{size!r} must be a positive number of bytes or null", source)
    approx_size = raw.get("approx_size")
    if approx_size is not None and (type(approx_size) is not int or approx_size <= 0 or size is not None):
        raise _fail(name, "approx_size", f"{approx_size!r} must be a positive number of bytes, and only where size is "
                    "null", source)
    checksum, note = raw["checksum"], raw.get("checksum_note")
    if checksum is None:
        if not isinstance(note, str) or not note.strip():
            raise _fail(name, "checksum_note", "required when checksum is null: say why no checksum is published",
                        source)
    else:
        try:
            checksum = parse_checksum(checksum)
        except ValueError as error:
            raise _fail(name, "checksum", str(error), source) from None
    archive = raw["archive"]
    if archive not in ARCHIVE_KINDS:
        raise _fail(name, "archive", f"{archive!r} is not one of {', '.join(ARCHIVE_KINDS)}", source)
    unpack = None
    if archive == "file":
        if raw.get("unpack") is not None:
            raise _fail(name, "unpack", "a plain file (archive: file) is never unpacked; remove the key", source)
    else:
        unpack = _parse_unpack(name, raw.get("unpack"), source)
    optional = raw.get("optional", False)
    if not isinstance(optional, bool):
        raise _fail(name, "optional", f"{optional!r} must be true or false", source)
    return Asset(name=name, description=str(raw["description"]), urls=tuple(urls), filename=str(filename),
                 size=size, checksum=checksum, checksum_note=note, archive=archive, unpack=unpack,
                 optional=optional, note=raw.get("note"), approx_size=approx_size)


def parse_manifest(data: Any, source: str = "<manifest>") -> Manifest:
    """Check a parsed manifest document (`{version: 1, assets: {name: {...}}}`) and build the Manifest."""
    if not isinstance(data, dict) or set(data) != {"version", "assets"}:
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"{source}: the top level must have exactly the keys 'version' and 'assets', got {keys}")
    if data["version"] != 1:
        raise ValueError(f"{source}: version {data['version']!r} is not supported; this hmfs reads version 1")
    if not isinstance(data["assets"], dict) or not data["assets"]:
        raise ValueError(f"{source}: 'assets' must be a non-empty mapping of asset name to its entry")
    return Manifest(tuple(_parse_asset(name, raw, source) for name, raw in data["assets"].items()), source)


def load_manifest(path: Path | None = None) -> Manifest:
    """Read and check a manifest file (default: the one shipped beside this module)."""
    path = Path(path) if path is not None else DEFAULT_MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"manifest {path} does not exist; pass an existing file or omit --manifest") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML ({error})") from None
    return parse_manifest(data, str(path))


def override_urls(manifest: Manifest, urls: Mapping[str, Sequence[str]]) -> Manifest:
    """A copy of `manifest` where each named asset's sources are replaced by `urls[name]`, in order."""
    for name, new_urls in urls.items():
        manifest.get(name)  # raises, naming the known assets, for an unknown one
        if isinstance(new_urls, str) or not new_urls:
            raise ValueError(f"URL override of asset {name!r} must be a non-empty list of URLs, got {new_urls!r}")
        for url in new_urls:
            check_url(url)
    assets = tuple(dataclasses.replace(asset, urls=tuple(urls[asset.name])) if asset.name in urls else asset
                   for asset in manifest.assets)
    return dataclasses.replace(manifest, assets=assets)
