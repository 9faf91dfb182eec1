"""Tests of the split-list conversion (restricted unpickling, convert-splits) and of the shipped lists."""

from __future__ import annotations

import argparse
import gzip
import json
import os
import pickle
import pickletools
import re
from pathlib import Path

import pytest

from hmfs.commands.convert_splits import add_parser
from hmfs.data.splits import (
    coco_split_file,
    convert_coco_pickle,
    convert_splits,
    load_coco_split,
    load_fss_split,
    load_pascal_split,
    packaged_splits_dir,
    read_list_file,
)



def _hsnet_splits() -> Path:
    """HSNet's original lists: $HMFS_HSNET_SPLITS, else shared/reference/hsnet-splits in or beside the checkout."""
    if "HMFS_HSNET_SPLITS" in os.environ:
        return Path(os.environ["HMFS_HSNET_SPLITS"])
    repo = Path(__file__).resolve().parents[2]
    candidates = [base / "shared/reference/hsnet-splits" for base in (repo, repo.parent)]
    return next((c for c in candidates if c.is_dir()), candidates[-1])


HSNET_SPLITS = _hsnet_splits()
COCO_PICKLES = [f"coco/{split}/fold{k}.pkl" for split in ("trn", "val") for k in range(4)]
TEXT_LISTS = [f"pascal/{split}/fold{k}.txt" for split in ("trn", "val") for k in range(4)] + [
    f"fss/{split}.txt" for split in ("trn", "val", "test")
]


def opcode_walk(data: bytes) -> dict[int, list[str]]:
    """Decode HSNet's COCO pickles from their opcodes alone (no unpickler): class -> names.

    Those files use one dict of BININT1 keys, each followed by a list filled with BINUNICODE
    strings or memo GETs of earlier strings; any other object-building opcode is a failure here.
    """
    memo: dict[int, object] = {}
    out: dict[int, list[str]] = {}
    current: list[str] | None = None
    last: object = None
    allowed = {"PROTO", "EMPTY_DICT", "MARK", "APPENDS", "SETITEMS", "STOP", "FRAME",
               "BINPUT", "LONG_BINPUT", "MEMOIZE", "BINGET", "LONG_BINGET", "BININT1", "EMPTY_LIST", "BINUNICODE",
               "SHORT_BINUNICODE"}
    for op, arg, _ in pickletools.genops(data):
        assert op.name in allowed, op.name
        if op.name == "BININT1":
            current = out.setdefault(arg, [])
            last = arg
        elif op.name == "EMPTY_LIST":
            last = current
        elif op.name in ("BINUNICODE", "SHORT_BINUNICODE"):
            current.append(arg)
            last = arg
        elif op.name in ("BINGET", "LONG_BINGET"):
            value = memo[arg]
            if isinstance(value, str):
                current.append(value)
            last = value
        elif op.name in ("BINPUT", "LONG_BINPUT"):
            memo[arg] = last
        elif op.name == "MEMOIZE":
            memo[len(memo)] = last
    return out


@pytest.mark.parametrize("relative", COCO_PICKLES)
def test_convert_coco_pickle_matches_the_pickle_opcodes(relative: str) -> None:
    path = HSNET_SPLITS / relative
    converted = convert_coco_pickle(path)
    walked = opcode_walk(path.read_bytes())
    assert sorted(converted) == list(range(80)) == sorted(walked)
    assert {c: len(v) for c, v in converted.items()} == {c: len(v) for c, v in walked.items()}
    assert converted == walked
    split, fold = relative.split("/")[1], int(relative[-5])
    test_classes = set(range(fold, 80, 4))
    nonempty = {c for c, names in converted.items() if names}
    assert nonempty == (test_classes if split == "val" else set(range(80)) - test_classes)
    folder = "val2014" if split == "val" else "train2014"
    assert all(name.startswith(f"{folder}/COCO_{folder}_") and name.endswith(".jpg")
               for names in converted.values() for name in names)


class _Exploit:
    """Pickles to `os.system(command)`: what an untrusted split file could do with pickle.load."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_malicious_pickle_is_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "fold0.pkl"
    evil.write_bytes(pickle.dumps({0: [_Exploit(f"touch {marker}")]}))
    with pytest.raises(ValueError, match=rf"unsafe or invalid pickle {re.escape(str(evil))}.*refusing.*system"):
        convert_coco_pickle(evil)
    assert not marker.exists()
    # Any class lookup is refused, even a harmless one.
    builtin = tmp_path / "set.pkl"
    builtin.write_bytes(pickle.dumps({0: [frozenset({"a"})]}, protocol=2))
    with pytest.raises(ValueError, match="refusing"):
        convert_coco_pickle(builtin)


@pytest.mark.parametrize("obj, message", [
    (["train2014/a.jpg"], "expected a dict"),
    ({"0": ["train2014/a.jpg"]}, "key '0' is not a COCO class index"),
    ({80: []}, "key 80"),
    ({True: []}, "key True"),
    ({0: "train2014/a.jpg"}, "class 0 is not a list of str"),
    ({0: ["a.jpg", 3]}, "class 0 is not a list of str"),
])
def test_pickle_structure_is_validated(tmp_path: Path, obj: object, message: str) -> None:
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps(obj))
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}.*{message}"):
        convert_coco_pickle(path)
    path.write_bytes(b"\x80\x04not a pickle")
    with pytest.raises(ValueError, match=re.escape(str(path))):
        convert_coco_pickle(path)


def _run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("splits") / "SPLITS"
    assert _run_cli(["convert-splits", "--hsnet-splits", str(HSNET_SPLITS), "--out", str(out)]) == 0
    return out


def test_convert_splits_writes_the_whole_tree(converted: Path) -> None:
    files = sorted(str(p.relative_to(converted)) for p in converted.rglob("*") if p.is_file())
    expected = sorted([r.replace(".pkl", ".json") for r in COCO_PICKLES] + TEXT_LISTS)
    assert files == expected
    for relative in TEXT_LISTS:
        written = (converted / relative).read_bytes()
        assert b"\r" not in written and written.endswith(b"\n") and not written.endswith(b"\n\n")
        assert written.decode().splitlines() == read_list_file(HSNET_SPLITS / relative)
    raw = json.loads((converted / "coco/val/fold2.json").read_text())
    assert list(raw) == [str(c) for c in range(80)]
    source = convert_coco_pickle(HSNET_SPLITS / "coco/val/fold2.pkl")
    assert load_coco_split(converted / "coco/val/fold2.json") == source


def test_gzip_option_and_readers_accept_both(tmp_path: Path, converted: Path) -> None:
    out = tmp_path / "SPLITS"
    assert _run_cli(["convert-splits", "--hsnet-splits", str(HSNET_SPLITS), "--out", str(out), "--gzip"]) == 0
    gz = out / "coco/trn/fold1.json.gz"
    assert not (out / "coco/trn/fold1.json").exists()
    assert coco_split_file(out, "trn", 1) == gz
    assert load_coco_split(gz) == load_coco_split(converted / "coco/trn/fold1.json")
    first = gz.read_bytes()
    convert_splits(HSNET_SPLITS, out, compress_coco=True)  # reproducible bytes (mtime 0, no name)
    assert gz.read_bytes() == first
    convert_splits(HSNET_SPLITS, out, compress_coco=False)  # the twin is replaced, not left stale
    assert (out / "coco/trn/fold1.json").is_file() and not gz.exists()


def test_test_txt_crlf_is_normalised() -> None:
    source = (HSNET_SPLITS / "fss/test.txt").read_bytes()
    assert b"\r\n" in source
    shipped = (packaged_splits_dir() / "fss/test.txt").read_bytes()
    assert b"\r" not in shipped and len(shipped.splitlines()) == 240


def test_shipped_lists_match_the_sources() -> None:
    shipped = packaged_splits_dir()
    for relative in TEXT_LISTS:
        assert (shipped / relative).read_text().splitlines() == read_list_file(HSNET_SPLITS / relative)
    for relative in COCO_PICKLES:
        path = coco_split_file(shipped, relative.split("/")[1], int(relative[-5]))
        assert path.name.endswith(".json.gz")
        assert load_coco_split(path) == convert_coco_pickle(HSNET_SPLITS / relative)
    sizes = {"trn": 520, "val": 240, "test": 240}
    for split, count in sizes.items():
        assert len(load_fss_split(shipped / f"fss/{split}.txt")) == count
    all_fss = [c for split in sizes for c in load_fss_split(shipped / f"fss/{split}.txt")]
    assert len(set(all_fss)) == 1000
    for k in range(4):
        pairs = load_pascal_split(shipped / f"pascal/val/fold{k}.txt")
        assert {c for _, c in pairs} == set(range(5 * k, 5 * k + 5))
        assert {c for _, c in load_pascal_split(shipped / f"pascal/trn/fold{k}.txt")} == set(range(5 * k, 5 * k + 5))
    assert sum(p.stat().st_size for p in shipped.rglob("*") if p.is_file()) < 4_000_000


def test_list_readers_reject_bad_content(tmp_path: Path) -> None:
    bad = tmp_path / "fold0.txt"
    bad.write_text("2007_000032__01\n2007_000033__21\n")
    with pytest.raises(ValueError, match=rf"{re.escape(str(bad))}:2: '2007_000033__21'"):
        load_pascal_split(bad)
    bad.write_text("2007_000032_01\n")
    with pytest.raises(ValueError, match=":1:"):
        load_pascal_split(bad)
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes(b"2007_000032__01\r\n2007_000033__20\r\n\r\n")
    assert load_pascal_split(crlf) == [("2007_000032", 0), ("2007_000033", 19)]
    json_path = tmp_path / "fold0.json"
    json_path.write_text(json.dumps({"x": []}))
    with pytest.raises(ValueError, match="key 'x' is not a class index"):
        load_coco_split(json_path)
    json_path.write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_coco_split(json_path)
    broken = tmp_path / "fold1.json.gz"
    broken.write_bytes(b"not gzip")
    with pytest.raises(ValueError, match="not a valid gzip"):
        load_coco_split(broken)
    assert load_coco_split(_gz(tmp_path / "fold2.json.gz", {"3": ["val2014/a.jpg"]})) == {3: ["val2014/a.jpg"]}


def _gz(path: Path, obj: object) -> Path:
    path.write_bytes(gzip.compress(json.dumps(obj).encode()))
    return path


def test_convert_splits_missing_inputs(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "absent"))):
        convert_splits(tmp_path / "absent", tmp_path / "out")
    (tmp_path / "partial/pascal/trn").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "partial/pascal/trn/fold0.txt"))):
        convert_splits(tmp_path / "partial", tmp_path / "out")
