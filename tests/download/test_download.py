"""Download library: manifest checks, resumable verified transfers from a loopback server, safe unpacking."""

from __future__ import annotations

import argparse
import hashlib
import inspect
import io
import logging
import os
import re
import shutil
import stat
import tarfile
import threading
import zipfile
from collections import namedtuple
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from hmfs.download import DiskSpaceError, DownloadError, UnsafeArchiveError, VerificationError
from hmfs.commands import download as command
from hmfs.download import gdrive, verify
from hmfs.download.http import Progress, download, make_session
from hmfs.download.manifest import DEFAULT_MANIFEST, load_manifest, override_urls, parse_manifest
from hmfs.download.unpack import unpack

VOC_EXPECT = {"VOCdevkit/VOC2012/JPEGImages/*.jpg": 6, "VOCdevkit/VOC2012/SegmentationClass/*.png": 3}
COCO_EXPECT = {"train2014/*.jpg": 5}


# --- fabricated archives ---------------------------------------------------------------------------

def _payload(name: str, size: int = 2000) -> bytes:
    """Deterministic, incompressible-looking bytes for a member."""
    seed = hashlib.sha256(name.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def voc_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as handle:
        names = [f"VOCdevkit/VOC2012/JPEGImages/2007_{i:06d}.jpg" for i in range(6)]
        names += [f"VOCdevkit/VOC2012/SegmentationClass/2007_{i:06d}.png" for i in range(3)]
        for name in names:
            data = _payload(name)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            handle.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def coco_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as handle:
        for i in range(5):
            handle.writestr(f"train2014/COCO_train2014_{i:012d}.jpg", _payload(str(i)))
    return buffer.getvalue()


def asset_for(data: bytes, urls: list[str], *, archive: str = "tar", expect: dict | None = None,
              checksum: bool = True, name: str = "voc2012_trainval", filename: str = "VOCtrainval.tar",
              into: str = ".", rename: dict | None = None):
    entry = {"description": "test asset", "urls": urls, "filename": filename, "size": len(data),
             "checksum": f"md5:{hashlib.md5(data).hexdigest()}" if checksum else None, "archive": archive}
    if not checksum:
        entry["checksum_note"] = "none published"
    if archive != "file":
        entry["unpack"] = {"into": into, "expect": expect or VOC_EXPECT, **({"rename": rename} if rename else {})}
    return parse_manifest({"version": 1, "assets": {name: entry}}).get(name)


# --- loopback server ---------------------------------------------------------------------------------

class FakeServer:
    """A Range-capable HTTP server on 127.0.0.1 with switches to cut, corrupt, fail or ignore Range."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.cut_after: dict[str, int] = {}  # path -> bytes sent before the connection drops (once)
        self.corrupt: set[str] = set()
        self.fail: set[str] = set()  # answered with HTTP 500
        self.ignore_range: set[str] = set()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                fake.requests.append((self.path, self.headers.get("Range")))
                if self.path in fake.fail:
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = fake.files.get(self.path)
                if data is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path in fake.corrupt:
                    data = bytes(b ^ 0x5A for b in data)
                start, match = 0, re.match(r"^bytes=(\d+)-$", self.headers.get("Range") or "")
                if match and self.path not in fake.ignore_range:
                    start = int(match.group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                cut = fake.cut_after.pop(self.path, None)
                if cut is not None:
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server():
    fake = FakeServer()
    yield fake
    fake.close()


@pytest.fixture
def session():
    with make_session(retries=1, backoff_s=0) as one:
        yield one


class NoNetwork:
    """A session that fails the test when anything asks it for a URL."""

    def get(self, *args, **kwargs):
        raise AssertionError(f"unexpected network request {args}")


def hash_spy(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = verify.hash_file

    def spy(path, algorithm, *args, **kwargs):
        calls.append(str(path))
        return real(path, algorithm, *args, **kwargs)

    monkeypatch.setattr(verify, "hash_file", spy)
    return calls


# --- manifest ----------------------------------------------------------------------------------------

def test_shipped_manifest_lists_every_asset():
    manifest = load_manifest()
    assert set(manifest.names) >= {"voc2012_trainval", "sbd", "coco_train2014", "coco_val2014",
                                   "coco_annotations2014", "fss1000", "resnet50_imagenet", "resnet101_imagenet",
                                   "hsnet_segmentationclassaug", "hsnet_coco_masks_train2014",
                                   "hsnet_coco_masks_val2014"}
    voc = manifest.get("voc2012_trainval")
    assert voc.size == 1_999_639_040 and str(voc.checksum) == "md5:6cd6e144f989b92b3379bac3b3de84fd"
    assert voc.unpack.expected_counts == {"VOCdevkit/VOC2012/JPEGImages/*.jpg": 17125,
                                          "VOCdevkit/VOC2012/SegmentationClass/*.png": 2913}
    assert manifest.get("coco_train2014").unpack.expected_counts == {"train2014/*.jpg": 82783}
    assert manifest.get("sbd").unpack.expected_counts["benchmark_RELEASE/dataset/cls/*.mat"] == 11355
    fss = manifest.get("fss1000")
    assert fss.urls[:2] == ("gdrive:16TgqOeI_0P41Eh3jWQlxlRXG9KIqtMgI", "gdrive:1i9WlwCEqK4XOdBRh0nShtxxEdWe-1q_r")
    assert fss.checksum is None and fss.checksum_note
    resnet = manifest.get("resnet50_imagenet")
    assert resnet.archive == "file" and resnet.checksum.matches("0676ba61" + "0" * 56)
    moved = override_urls(manifest, {"sbd": ["file:///tmp/benchmark.tgz"]})
    assert moved.get("sbd").urls == ("file:///tmp/benchmark.tgz",) and manifest.get("sbd").urls[0].startswith("http")


def _manifest_error(tmp_path, entry_changes: dict, remove: tuple = ()) -> str:
    entry = yaml.safe_load(DEFAULT_MANIFEST.read_text())["assets"]["sbd"]
    entry.update(entry_changes)
    for key in remove:
        del entry[key]
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "assets": {"sbd": entry}}))
    with pytest.raises(ValueError) as error:
        load_manifest(path)
    return str(error.value)


@pytest.mark.parametrize("changes, remove, key", [
    ({"mirrors": ["http://x"]}, (), "mirrors"),
    ({"checksum": "md5:1234"}, (), "checksum"),
    ({"checksum": "crc32:deadbeef"}, (), "checksum"),
    ({"checksum": None}, (), "checksum_note"),
    ({"urls": ["ftp://example.org/benchmark.tgz"]}, (), "urls"),
    ({"archive": "rar"}, (), "archive"),
    ({"size": -3}, (), "size"),
    ({"filename": "../benchmark.tgz"}, (), "filename"),
    ({"unpack": {"into": ".", "expect": {"../cls/*.mat": 3}}}, (), "unpack.expect"),
    ({"unpack": {"into": "/abs", "expect": {"a/*": 1}}}, (), "unpack.into"),
    ({"unpack": {"into": ".", "expect": {"a/*": 1}, "strip": 1}}, (), "unpack.strip"),
    ({}, ("size",), "size"),
])
def test_manifest_errors_name_asset_and_key(tmp_path, changes, remove, key):
    message = _manifest_error(tmp_path, changes, remove)
    assert "'sbd'" in message and f"'{key}'" in message


# --- downloads ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_download_verify_unpack(server, session, tmp_path, kind):
    data, expect = (voc_tar(), VOC_EXPECT) if kind == "tar" else (coco_zip(), COCO_EXPECT)
    server.files["/archive"] = data
    asset = asset_for(data, [server.url("/archive")], archive=kind, expect=expect,
                      into="." if kind == "tar" else "coco")
    dest = download(asset, tmp_path / "downloads" / asset.filename, session=session, chunk_bytes=1024)
    assert dest.read_bytes() == data
    assert sorted(p.name for p in dest.parent.iterdir()) == [f".{asset.filename}.verified.json", asset.filename]
    raw = tmp_path / "raw"
    out = unpack(dest, kind, asset.unpack_dir(raw), asset.unpack.expected_counts)
    assert verify.count_members(out, expect) == expect
    first = "VOCdevkit" if kind == "tar" else "train2014"
    assert (out / first).is_dir() and not [p for p in out.parent.iterdir() if ".unpack-" in p.name]
    # A second call finds the marker and extracts nothing.
    assert unpack(dest, kind, asset.unpack_dir(raw), expect) == out
    assert len(server.requests) == 1


def test_cut_transfer_resumes_with_range(server, session, tmp_path, caplog):
    data = voc_tar()
    server.files["/voc.tar"] = data
    server.cut_after["/voc.tar"] = len(data) // 2
    asset = asset_for(data, [server.url("/voc.tar")])
    with caplog.at_level(logging.INFO):
        dest = download(asset, tmp_path / asset.filename, session=session, chunk_bytes=1024)
    assert dest.read_bytes() == data
    assert [rng for _, rng in server.requests] == [None, f"bytes={len(data) // 2}-"]
    assert "resuming" in caplog.text and "%" in caplog.text and "ETA" in caplog.text


def test_part_from_earlier_run_is_resumed_or_restarted(server, session, tmp_path):
    data = voc_tar()
    server.files["/voc.tar"] = data
    asset = asset_for(data, [server.url("/voc.tar")])
    dest = tmp_path / asset.filename
    part = tmp_path / f".{asset.filename}.part"
    part.write_bytes(data[:3000])
    (tmp_path / f".{asset.filename}.part.json").write_text(f'{{"url": "{server.url("/voc.tar")}"}}')
    download(asset, dest, session=session)
    assert dest.read_bytes() == data and server.requests[-1][1] == "bytes=3000-"
    # A server that ignores Range answers 200 with the whole file: the download starts over.
    dest.unlink()
    server.ignore_range.add("/voc.tar")
    part.write_bytes(data[:3000])
    (tmp_path / f".{asset.filename}.part.json").write_text(f'{{"url": "{server.url("/voc.tar")}"}}')
    download(asset, dest, session=session)
    assert dest.read_bytes() == data and server.requests[-1][1] == "bytes=3000-"
    assert not part.exists()


def test_corrupt_mirror_is_deleted_and_next_one_used(server, session, tmp_path, caplog):
    data = voc_tar()
    server.files["/bad/voc.tar"] = server.files["/good/voc.tar"] = data
    server.corrupt.add("/bad/voc.tar")
    asset = asset_for(data, [server.url("/bad/voc.tar"), server.url("/good/voc.tar")])
    with caplog.at_level(logging.WARNING):
        dest = download(asset, tmp_path / asset.filename, session=session)
    assert dest.read_bytes() == data
    assert "checksum mismatch" in caplog.text and [path for path, _ in server.requests] == ["/bad/voc.tar",
                                                                                            "/good/voc.tar"]


def test_every_mirror_down_gives_one_error_and_leaves_nothing(server, session, tmp_path):
    data = voc_tar()
    server.fail.add("/down.tar")
    closed = FakeServer()
    closed.close()  # a port nobody listens on any more
    urls = [server.url("/down.tar"), server.url("/missing.tar"), closed.url("/voc.tar")]
    asset = asset_for(data, urls)
    out = tmp_path / "downloads"
    with pytest.raises(DownloadError) as error:
        download(asset, out / asset.filename, session=session)
    message = str(error.value)
    assert all(url in message for url in urls) and "HTTP 404" in message
    assert f"put it at {(out / asset.filename).absolute()}" in message
    assert list(out.iterdir()) == []


def test_too_little_disk_space_names_bytes(server, session, tmp_path, monkeypatch):
    data = voc_tar()
    server.files["/voc.tar"] = data
    asset = asset_for(data, [server.url("/voc.tar")])
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**6, 10**6 - 100, 100))
    with pytest.raises(DiskSpaceError) as error:
        download(asset, tmp_path / asset.filename, session=session)
    assert f"needs {len(data):,} bytes" in str(error.value) and "which has 100" in str(error.value)
    assert server.requests == [] and not (tmp_path / asset.filename).exists()


def test_file_url_source(tmp_path):
    data = coco_zip()
    source = tmp_path / "elsewhere" / "train2014.zip"
    source.parent.mkdir()
    source.write_bytes(data)
    asset = asset_for(data, [source.as_uri()], archive="zip", expect=COCO_EXPECT)
    dest = download(asset, tmp_path / "downloads" / "train2014.zip", session=NoNetwork())
    assert dest.read_bytes() == data


# --- Google Drive ------------------------------------------------------------------------------------

def test_drive_quota_page_names_asset_url_and_place(tmp_path, monkeypatch):
    data = coco_zip()
    asset = asset_for(data, ["gdrive:FAKEdriveID_123"], archive="zip", expect=COCO_EXPECT, checksum=False,
                      name="fss1000", filename="fewshot_data.zip")

    def quota_page(file_id, out, *, progress=None):
        Path(out).write_bytes(b"<!DOCTYPE html><html><title>Google Drive - Quota exceeded</title></html>")

    monkeypatch.setattr(gdrive, "drive_transfer", quota_page)
    dest = tmp_path / "fewshot_data.zip"
    with pytest.raises(DownloadError) as error:
        download(asset, dest, session=NoNetwork())
    message = str(error.value)
    assert "'fss1000'" in message and "https://drive.google.com/uc?id=FAKEdriveID_123" in message
    assert str(dest.absolute()) in message and "HTML page" in message
    assert not dest.exists() and not any(p.name.endswith(".part") for p in tmp_path.iterdir())

    def refused(file_id, out, *, progress=None):
        raise gdrive.DriveRefusedError("Too many users have viewed or downloaded this file recently.")

    monkeypatch.setattr(gdrive, "drive_transfer", refused)
    with pytest.raises(DownloadError, match="Too many users") as error:
        download(asset, dest, session=NoNetwork())
    assert str(dest.absolute()) in str(error.value)

    # The copy the user downloaded by hand is verified and used; Drive is not asked again.
    dest.write_bytes(data)
    assert download(asset, dest, session=NoNetwork()) == dest


def test_drive_file_is_used_when_drive_answers(tmp_path, monkeypatch):
    data = coco_zip()
    asset = asset_for(data, ["gdrive:FAKEdriveID_123"], archive="zip", expect=COCO_EXPECT, checksum=False)
    monkeypatch.setattr(gdrive, "drive_transfer", lambda file_id, out, *, progress=None: Path(out).write_bytes(data))
    dest = download(asset, tmp_path / asset.filename, session=NoNetwork())
    assert dest.read_bytes() == data
    marker = verify.read_marker(verify.archive_marker(dest))
    assert marker["computed_checksum"] == f"sha256:{hashlib.sha256(data).hexdigest()}"


def test_gdown_refusal_becomes_drive_refused(tmp_path, monkeypatch):
    gdown = pytest.importorskip("gdown")
    from gdown.exceptions import FileURLRetrievalError

    real = inspect.signature(gdown.download)

    def fake_download(**kwargs):
        real.bind(**kwargs)  # the options hmfs passes exist in the installed gdown
        raise FileURLRetrievalError("Failed to retrieve file url:\n\n\tToo many users have viewed it.\n")

    monkeypatch.setattr(gdown, "download", fake_download)
    with pytest.raises(gdrive.DriveRefusedError, match="Too many users have viewed it"):
        gdrive.drive_transfer("FAKEdriveID_123", tmp_path / "out.zip")


# --- unpacking ---------------------------------------------------------------------------------------

def _tar_with(member: tarfile.TarInfo, data: bytes = b"x") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as handle:
        ok = tarfile.TarInfo("VOCdevkit/ok.txt")
        ok.size = 2
        handle.addfile(ok, io.BytesIO(b"ok"))
        if member.isfile():
            member.size = len(data)
            handle.addfile(member, io.BytesIO(data))
        else:
            handle.addfile(member)
    return buffer.getvalue()


def _symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


def _fifo(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.FIFOTYPE
    return info


def _zip_with(name: str, *, symlink: bool = False) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as handle:
        handle.writestr("train2014/ok.jpg", b"ok")
        info = zipfile.ZipInfo(name)
        if symlink:
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
        handle.writestr(info, b"/etc/passwd" if symlink else b"x")
    return buffer.getvalue()


@pytest.mark.parametrize("kind, data, member", [
    ("tar", _tar_with(tarfile.TarInfo("../x")), "../x"),
    ("tar", _tar_with(tarfile.TarInfo("VOCdevkit/../../x")), "VOCdevkit/../../x"),
    ("tar", _tar_with(tarfile.TarInfo("/tmp/evil")), "/tmp/evil"),
    ("tar", _tar_with(_symlink("VOCdevkit/link", "/etc/passwd")), "VOCdevkit/link"),
    ("tar", _tar_with(_fifo("VOCdevkit/pipe")), "VOCdevkit/pipe"),
    ("zip", _zip_with("../x"), "../x"),
    ("zip", _zip_with("/abs/x"), "/abs/x"),
    ("zip", _zip_with("train2014/link", symlink=True), "train2014/link"),
])
def test_unsafe_members_are_refused_by_name(tmp_path, kind, data, member):
    archive = tmp_path / f"evil.{kind}"
    archive.write_bytes(data)
    dest = tmp_path / "raw"
    with pytest.raises(UnsafeArchiveError) as error:
        unpack(archive, kind, dest, {"x": 1})
    assert repr(member) in str(error.value)
    assert not dest.exists() and sorted(p.name for p in tmp_path.iterdir()) == [archive.name]
    assert not (tmp_path.parent / "x").exists()


def test_wrong_counts_leave_nothing_and_list_patterns(tmp_path):
    archive = tmp_path / "voc.tar"
    archive.write_bytes(voc_tar())
    raw = tmp_path / "raw"
    wrong = {**VOC_EXPECT, "VOCdevkit/VOC2012/JPEGImages/*.jpg": 17125}
    with pytest.raises(VerificationError) as error:
        unpack(archive, "tar", raw, wrong)
    assert "VOCdevkit/VOC2012/JPEGImages/*.jpg: expected 17,125, found 6" in str(error.value)
    assert not raw.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["voc.tar"]


def test_unpack_renames_top_folder_into_shared_raw_folder(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as handle:
        for cls in ("abacus", "zucchini"):
            for n in (1, 2):
                handle.writestr(f"fewshot_data/{cls}/{n}.jpg", b"j")
                handle.writestr(f"fewshot_data/{cls}/{n}.png", b"p")
    archive = tmp_path / "fewshot_data.zip"
    archive.write_bytes(buffer.getvalue())
    raw = tmp_path / "raw"
    (raw / "VOCdevkit").mkdir(parents=True)  # another asset already unpacked there
    expect = {"FSS-1000/*/*.jpg": 4, "FSS-1000/*/*.png": 4}
    unpack(archive, "zip", raw, expect, rename={"fewshot_data": "FSS-1000"})
    assert (raw / "FSS-1000" / "abacus" / "1.png").is_file() and (raw / "VOCdevkit").is_dir()
    assert not [p for p in tmp_path.iterdir() if ".unpack-" in p.name]


# --- local copies ------------------------------------------------------------------------------------

def test_placed_archive_is_verified_once_without_network(tmp_path, monkeypatch):
    data = voc_tar()
    asset = asset_for(data, ["http://127.0.0.1:9/never"])
    dest = tmp_path / asset.filename
    dest.write_bytes(data)
    calls = hash_spy(monkeypatch)
    assert download(asset, dest, session=NoNetwork()) == dest
    assert download(asset, dest, session=NoNetwork()) == dest
    assert len(calls) == 1  # the second run read the marker
    os.utime(dest, ns=(dest.stat().st_atime_ns, dest.stat().st_mtime_ns + 10**9))
    assert download(asset, dest, session=NoNetwork()) == dest
    assert len(calls) == 2  # a changed mtime invalidates the marker
    dest.write_bytes(data[:-1] + b"!")
    with pytest.raises(VerificationError, match="Delete"):
        download(asset, dest, session=NoNetwork())


def test_local_archive_and_folder_through_fetch(tmp_path, monkeypatch):
    data = voc_tar()
    asset = asset_for(data, ["http://127.0.0.1:9/never"])
    mine = tmp_path / "mine" / "VOCtrainval.tar"
    mine.parent.mkdir()
    mine.write_bytes(data)
    calls = hash_spy(monkeypatch)
    linked = command.fetch_asset(asset, tmp_path / "downloads", local=mine, session=NoNetwork())
    assert linked.is_symlink() and linked.resolve() == mine.resolve()
    raw = command.unpack_asset(asset, linked, tmp_path / "raw")
    assert len(calls) == 1  # the link carries the verification of the file it points to
    assert command.fetch_asset(asset, tmp_path / "downloads", local=raw, session=NoNetwork()) == raw
    counted = verify.folder_marker(asset, raw)
    assert verify.read_marker(counted)["found"] == VOC_EXPECT
    (raw / "VOCdevkit" / "VOC2012" / "JPEGImages" / "2007_000000.jpg").unlink()
    assert verify.verify_folder(asset, raw) == VOC_EXPECT  # keyed by the patterns: not counted again
    counted.unlink()
    with pytest.raises(VerificationError, match="expected 6, found 5"):
        verify.verify_folder(asset, raw)


def test_command_line_fetch_and_unpack(tmp_path, capsys):
    data = voc_tar()
    source = tmp_path / "source.tar"
    source.write_bytes(data)
    asset = asset_for(data, ["http://127.0.0.1:9/never"])
    entry = {"description": "test", "urls": list(asset.urls), "filename": asset.filename, "size": len(data),
             "checksum": str(asset.checksum), "archive": "tar", "unpack": {"into": ".", "expect": VOC_EXPECT}}
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(yaml.safe_dump({"version": 1, "assets": {"voc2012_trainval": entry}}))
    parser = argparse.ArgumentParser()
    command.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["fetch", "--asset", "voc2012_trainval", "--out", str(tmp_path / "dl"), "--manifest",
                              str(manifest), "--url-override", source.as_uri()])
    assert args.func(args) == 0
    archive = Path(capsys.readouterr().out.strip())
    assert archive.read_bytes() == data
    args = parser.parse_args(["unpack", "--asset", "voc2012_trainval", "--archive", str(archive), "--out",
                              str(tmp_path / "raw"), "--manifest", str(manifest)])
    assert args.func(args) == 0
    assert (tmp_path / "raw" / "VOCdevkit" / "VOC2012" / "JPEGImages").is_dir()
    with pytest.raises(ValueError, match="unknown asset 'nope'"):
        args = parser.parse_args(["fetch", "--asset", "nope", "--out", str(tmp_path), "--manifest", str(manifest)])
        args.func(args)


def test_progress_logs_every_five_percent_or_ten_seconds(caplog):
    now = [0.0]
    progress = Progress("x", logging.getLogger("test"), clock=lambda: now[0])
    progress.start(0, 1000)
    with caplog.at_level(logging.INFO, logger="test"):
        for done in range(10, 1001, 10):
            now[0] += 0.01
            progress.update(done)
        assert len(caplog.records) == 20
        progress.start(0, None)
        now[0] += 11
        progress.update(5)
        assert "5 B" in caplog.records[-1].getMessage()


def test_hash_streams_with_the_transfer_unless_resumed(server, session, tmp_path, monkeypatch):
    data = voc_tar()
    server.files["/voc.tar"] = data
    asset = asset_for(data, [server.url("/voc.tar")])
    calls = hash_spy(monkeypatch)
    download(asset, tmp_path / "a" / asset.filename, session=session, chunk_bytes=1024)
    assert calls == []  # hashed while it streamed
    server.cut_after["/voc.tar"] = 5000
    download(asset, tmp_path / "b" / asset.filename, session=session, chunk_bytes=1024)
    assert len(calls) == 1  # resumed: the whole file is hashed once complete


def test_unpack_refuses_to_overwrite_before_extracting(tmp_path, monkeypatch):
    archive = tmp_path / "voc.tar"
    archive.write_bytes(voc_tar())
    raw = tmp_path / "raw"
    (raw / "VOCdevkit").mkdir(parents=True)
    with pytest.raises(ValueError, match="VOCdevkit already exist"):
        unpack(archive, "tar", raw, VOC_EXPECT, checksum="md5:0")
    assert sorted(p.name for p in raw.iterdir()) == ["VOCdevkit"] and len(list(tmp_path.iterdir())) == 2
