"""Tests of hmfs.data.prepare and the prepare command on synthetic raw trees: layout, split lists, COCO's overlap rule, errors."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image
from pycocotools import mask as mask_utils

from hmfs.commands import prepare
from hmfs.data.prepare import coco_label_map, prepare_coco, prepare_fss, prepare_pascal
from hmfs.data.splits import coco_fold_classes
from hmfs.synthetic import generate_coco, generate_fss, generate_pascal

# pycocotools 2.0.11 warns on every decode under numpy 2.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

MIN_SHOTS = 6  # a 5-shot episode needs the query and 5 other images of the class


def voc_dir(raw: Path) -> Path:
    return raw / "VOCdevkit" / "VOC2012"


def sbd_dir(raw: Path) -> Path:
    return raw / "benchmark_RELEASE" / "dataset"


def run_all(raw: Path, data: Path, splits: Path) -> dict[str, dict]:
    return {
        "pascal": prepare_pascal(voc_dir(raw), sbd_dir(raw), data, splits),
        "coco": prepare_coco(raw / "coco", data, splits),
        "fss": prepare_fss(raw / "FSS-1000", data, splits),
    }


def file_hashes(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of the files written under root (symlinked raw folders not followed)."""
    hashes = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            if not path.is_symlink():
                hashes[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(raw, data, splits) of a small synthetic run of all three benchmarks."""
    root = tmp_path_factory.mktemp("prepare")
    raw, data, splits = root / "raw", root / "data", root / "splits"
    generate_pascal(raw, seed=3, image_size=96, train_per_class=6, val_per_class=6)
    generate_coco(raw, seed=3, image_size=96, train_images=100, val_images=100, min_images_per_class=6)
    generate_fss(raw, seed=3, image_size=96, num_classes=10)
    run_all(raw, data, splits)
    return raw, data, splits


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_layout_links_images_and_writes_masks(tree: tuple[Path, Path, Path]) -> None:
    raw, data, splits = tree
    links = {
        data / "VOC2012" / "JPEGImages": voc_dir(raw) / "JPEGImages",
        data / "COCO2014" / "train2014": raw / "coco" / "train2014",
        data / "COCO2014" / "val2014": raw / "coco" / "val2014",
    }
    for link, target in links.items():
        assert link.is_symlink() and not Path(link.readlink()).is_absolute() and link.resolve() == target.resolve()
    fss_classes = sorted(p.name for p in (raw / "FSS-1000").iterdir() if p.is_dir() and p.name != "splits")
    assert sorted(p.name for p in (data / "FSS-1000").iterdir()) == fss_classes
    for name in fss_classes:
        assert (data / "FSS-1000" / name).is_symlink()
        assert all((data / "FSS-1000" / name / f"10.{ext}").is_file() for ext in ("jpg", "png"))
    for fold in range(4):
        for split in ("trn", "val"):
            assert (splits / "pascal" / split / f"fold{fold}.txt").is_file()
            assert (splits / "coco" / split / f"fold{fold}.json").is_file()
    coco_images = {p.stem for split in ("train2014", "val2014") for p in (raw / "coco" / split).glob("*.jpg")}
    annotations = data / "COCO2014" / "annotations"
    coco_masks = {p.stem for split in ("train2014", "val2014") for p in (annotations / split).glob("*.png")}
    assert coco_masks == coco_images
    for png in (data / "COCO2014" / "annotations" / "val2014").glob("*.png"):
        mask = Image.open(png)
        assert mask.mode == "L"
        assert mask.size == Image.open(data / "COCO2014" / "val2014" / f"{png.stem}.jpg").size
        assert np.array(mask).max() <= 80
    assert not [p for p in data.rglob("*") if ".tmp" in p.name]


def test_the_prepared_folder_survives_moving_the_project(tree: tuple[Path, Path, Path], tmp_path: Path) -> None:
    raw, data, _ = tree
    moved = tmp_path / "elsewhere"
    shutil.copytree(raw.parent, moved, symlinks=True)  # what `mv` of the project keeps: the links as they are
    for link in (moved / "data" / "VOC2012" / "JPEGImages", moved / "data" / "COCO2014" / "val2014",
                 next((moved / "data" / "FSS-1000").iterdir())):
        assert link.resolve().is_relative_to(moved.resolve()) and any(link.iterdir()), link


def test_segmentation_class_aug_is_voc_then_sbd(tree: tuple[Path, Path, Path]) -> None:
    raw, data, _ = tree
    sets = voc_dir(raw) / "ImageSets" / "Segmentation"
    voc_seg = set(read_lines(sets / "train.txt")) | set(read_lines(sets / "val.txt"))
    written = {p.stem for p in (data / "VOC2012" / "SegmentationClassAug").glob("*.png")}
    sbd_ids = set(read_lines(sbd_dir(raw) / "train.txt")) | set(read_lines(sbd_dir(raw) / "val.txt"))
    assert written == voc_seg | sbd_ids
    for image_id in sorted(written):
        mask = Image.open(data / "VOC2012" / "SegmentationClassAug" / f"{image_id}.png")
        assert mask.mode in ("L", "P")
        label = np.array(mask)
        if image_id in voc_seg:  # VOC's own mask, 255 band included
            expected = np.array(Image.open(voc_dir(raw) / "SegmentationClass" / f"{image_id}.png"))
            assert (label == 255).any()
        else:
            expected = scipy.io.loadmat(sbd_dir(raw) / "cls" / f"{image_id}.mat", struct_as_record=False,
                                        squeeze_me=True)["GTcls"].Segmentation  # fmt: skip
        assert np.array_equal(label, expected), image_id


def parse_pascal(path: Path) -> list[tuple[str, int]]:
    pairs = []
    for line in read_lines(path):
        assert re.fullmatch(r"\d{4}_\d{6}__\d{2}", line), line
        image_id, cls = line.split("__")
        pairs.append((image_id, int(cls)))
    return pairs


def test_pascal_lists_follow_folds_and_train_aug(tree: tuple[Path, Path, Path]) -> None:
    raw, data, splits = tree
    sets = voc_dir(raw) / "ImageSets" / "Segmentation"
    voc_train, voc_val = set(read_lines(sets / "train.txt")), set(read_lines(sets / "val.txt"))
    sbd_ids = set(read_lines(sbd_dir(raw) / "train.txt")) | set(read_lines(sbd_dir(raw) / "val.txt"))
    assert sbd_ids & voc_val  # the trap: SBD lists some VOC val images
    ids = {"trn": (sbd_ids | voc_train) - voc_val, "val": voc_val}
    labels = {
        i: set(np.unique(np.array(Image.open(data / "VOC2012" / "SegmentationClassAug" / f"{i}.png"))).tolist())
        for i in ids["trn"] | ids["val"]
    }
    for split in ("trn", "val"):
        listed_images: set[str] = set()
        for fold in range(4):
            classes = set(range(5 * fold + 1, 5 * fold + 6))
            pairs = parse_pascal(splits / "pascal" / split / f"fold{fold}.txt")
            assert len(pairs) == len(set(pairs))
            # HSNet's order: trn by class then id, val by id
            assert pairs == sorted(pairs, key=(lambda p: (p[1], p[0])) if split == "trn" else None)
            expected = {(i, c) for i in ids[split] for c in classes if c in labels[i]}
            assert set(pairs) == expected  # every listed image shows the class, and every pair is listed
            for c in classes:
                assert len({i for i, k in pairs if k == c}) >= MIN_SHOTS, (split, c)
            listed_images |= {i for i, _ in pairs}
        assert listed_images == ids[split]  # every image shows some class
    trn = {i for f in range(4) for i, _ in parse_pascal(splits / "pascal" / "trn" / f"fold{f}.txt")}
    val = {i for f in range(4) for i, _ in parse_pascal(splits / "pascal" / "val" / f"fold{f}.txt")}
    assert not trn & val


def test_coco_lists_interleave_folds(tree: tuple[Path, Path, Path]) -> None:
    raw, data, splits = tree
    assert coco_fold_classes(1) == list(range(1, 80, 4)) and len(coco_fold_classes(3)) == 20
    assert sorted(c for k in range(4) for c in coco_fold_classes(k)) == list(range(80))
    mask_cache: dict[str, set[int]] = {}

    def shown(path: str) -> set[int]:
        if path not in mask_cache:
            png = data / "COCO2014" / "annotations" / Path(path).with_suffix(".png")
            mask_cache[path] = set(np.unique(np.array(Image.open(png))).tolist())
        return mask_cache[path]

    every = {split: sorted(f"{split}2014/{p.name}" for p in (raw / "coco" / f"{split}2014").glob("*.jpg"))
             for split in ("train", "val")}  # fmt: skip
    for fold in range(4):
        test = set(coco_fold_classes(fold))
        trn = json.loads((splits / "coco" / "trn" / f"fold{fold}.json").read_text())
        val = json.loads((splits / "coco" / "val" / f"fold{fold}.json").read_text())
        for mapping, prefix, active, split in ((trn, "train2014/", set(range(80)) - test, "train"),
                                               (val, "val2014/", test, "val")):  # fmt: skip
            assert list(mapping) == [str(c) for c in range(80)]
            for c in range(80):
                paths = mapping[str(c)]
                if c not in active:
                    assert paths == []
                    continue
                assert all(p.startswith(prefix) and (data / "COCO2014" / p).is_file() for p in paths)
                assert paths == sorted(set(paths)) and len(paths) >= MIN_SHOTS, (fold, split, c)
                assert set(paths) == {p for p in every[split] if c + 1 in shown(p)}  # exactly those showing c


def test_coco_masks_follow_smaller_wins(tree: tuple[Path, Path, Path]) -> None:
    raw, data, _ = tree
    document = json.loads((raw / "coco" / "annotations" / "instances_val2014.json").read_text())
    index = {cid: i for i, cid in enumerate(sorted(c["id"] for c in document["categories"]))}
    by_image: dict[int, list[dict]] = {}
    for ann in document["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    contested = 0
    for image in document["images"]:
        h, w = image["height"], image["width"]
        anns = by_image.get(image["id"], [])
        masks = []
        for ann in anns:
            seg = ann["segmentation"]
            rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w)) if isinstance(seg, list) else seg
            masks.append(mask_utils.decode(rle).astype(bool))
        # Independent statement of the rule: each pixel takes the class of the smallest covering
        # instance; on equal areas the higher annotation id (later in the file).
        expected = np.zeros((h, w), np.uint8)
        smallest = np.full((h, w), np.inf)
        for ann, mask in zip(anns, masks):
            better = mask & (mask.sum() <= smallest)
            expected[better] = index[ann["category_id"]] + 1
            smallest[better] = mask.sum()
        png = data / "COCO2014" / "annotations" / "val2014" / image["file_name"].replace(".jpg", ".png")
        got = np.array(Image.open(png))
        assert np.array_equal(got, expected), image["file_name"]
        covered = np.sum(masks, axis=0) if masks else np.zeros((h, w))
        contested += int((covered > 1).sum())
    assert contested > 100  # the data really has overlaps


def test_coco_overlap_rule_on_hand_made_annotations() -> None:
    big = [[2.0, 2.0, 18.0, 2.0, 18.0, 18.0, 2.0, 18.0]]  # 16 x 16 square, category 1 -> index 0
    crowd = np.zeros((20, 24), np.uint8, order="F")
    crowd[10:14, 10:14] = 1  # 4 x 4 crowd region of category 90 -> index 79
    rle = mask_utils.encode(crowd)
    anns = [
        {"id": 2, "category_id": 90, "segmentation": {"size": [20, 24], "counts": rle["counts"].decode()}},
        {"id": 1, "category_id": 1, "segmentation": big},
    ]
    category_index = {1: 0, 90: 79}
    for order in (anns, anns[::-1]):
        label = coco_label_map(order, category_index, 20, 24)
        assert label.dtype == np.uint8 and label.shape == (20, 24)
        assert (label[10:14, 10:14] == 80).all()  # the smaller (crowd) instance wins
        assert label[5, 5] == 1 and label[0, 0] == 0 and label[5, 22] == 0
    # Uncompressed RLE (counts as a list, as in the real COCO crowds) reads the same.
    uncompressed = {"size": [20, 24], "counts": [10 * 20 + 10, 4, 16, 4, 16, 4, 16, 4, 20 * 24 - 14 * 20 + 6]}
    label = coco_label_map([{"id": 3, "category_id": 90, "segmentation": uncompressed}], category_index, 20, 24)
    assert (label[10:14, 10:14] == 80).all() and label.sum() == 16 * 80


def test_fss_splits_come_from_the_raw_lists(tree: tuple[Path, Path, Path]) -> None:
    raw, _, splits = tree
    names = {}
    for split in ("trn", "val", "test"):
        raw_names = (raw / "FSS-1000" / "splits" / f"{split}.txt").read_text().split()
        written = (splits / "fss" / f"{split}.txt").read_bytes()
        assert b"\r" not in written
        names[split] = written.decode().splitlines()
        assert names[split] == raw_names
    assert [len(v) for v in names.values()] == [5, 2, 3]
    assert len(set(sum(names.values(), []))) == 10


def test_prepare_is_idempotent(tree: tuple[Path, Path, Path], tmp_path: Path) -> None:
    raw, data, splits = tree
    before = file_hashes(data), file_hashes(splits)
    run_all(raw, data, splits)
    assert (file_hashes(data), file_hashes(splits)) == before


def test_prepare_command(tree: tuple[Path, Path, Path], tmp_path: Path) -> None:
    raw, _, splits = tree
    parser = argparse.ArgumentParser()
    prepare.add_parser(parser.add_subparsers())
    args = parser.parse_args(["prepare", "--benchmark", "fss", "--raw", str(raw), "--out", str(tmp_path / "d"),
                              "--splits-out", str(tmp_path / "s")])  # fmt: skip
    assert args.func(args) == 0
    assert (tmp_path / "s" / "fss" / "trn.txt").read_bytes() == (splits / "fss" / "trn.txt").read_bytes()


@pytest.fixture()
def tiny_raw(tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    generate_pascal(raw, image_size=64, train_per_class=1, val_per_class=1)
    generate_coco(raw, image_size=64, train_images=20, val_images=20, min_images_per_class=1)
    generate_fss(raw, image_size=64, num_classes=5)
    return raw


def test_missing_raw_folders_are_named(tiny_raw: Path, tmp_path: Path) -> None:
    out, splits = tmp_path / "d", tmp_path / "s"
    with pytest.raises(FileNotFoundError, match=r"VOC2012 devkit .* at .*nowhere"):
        prepare_pascal(tmp_path / "nowhere", sbd_dir(tiny_raw), out, splits)
    shutil.rmtree(sbd_dir(tiny_raw) / "cls")
    with pytest.raises(FileNotFoundError, match=r"SBD's cls folder .* at .*benchmark_RELEASE/dataset/cls"):
        prepare_pascal(voc_dir(tiny_raw), sbd_dir(tiny_raw), out, splits)
    (tiny_raw / "coco" / "annotations" / "instances_val2014.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"instance annotations at .*instances_val2014\.json"):
        prepare_coco(tiny_raw / "coco", out, splits)
    (tiny_raw / "FSS-1000" / "splits" / "test.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"test class list .* at .*FSS-1000/splits/test\.txt"):
        prepare_fss(tiny_raw / "FSS-1000", out, splits)
    args = argparse.Namespace(benchmark="coco", raw=tmp_path / "empty", out=out, splits_out=splits, threads=1,
                              asset_records=[])
    with pytest.raises(FileNotFoundError, match=r"COCO 2014 folder .* at .*empty/coco"):
        prepare.run_prepare(args)


def test_size_mismatch_names_the_file(tiny_raw: Path, tmp_path: Path) -> None:
    out, splits = tmp_path / "d", tmp_path / "s"
    voc_png = sorted((voc_dir(tiny_raw) / "SegmentationClass").glob("*.png"))[0]
    Image.open(voc_png).resize((30, 20)).save(voc_png)
    with pytest.raises(ValueError, match=rf"{voc_png.name} is 20x30 .* is \d+x\d+"):
        prepare_pascal(voc_dir(tiny_raw), sbd_dir(tiny_raw), out, splits)

    first_class = (tiny_raw / "FSS-1000" / "splits" / "trn.txt").read_text().split()[0]
    fss_png = tiny_raw / "FSS-1000" / first_class / "3.png"
    Image.open(fss_png).resize((11, 7)).save(fss_png)
    with pytest.raises(ValueError, match=rf"{re.escape(str(fss_png))} is 7x11 .*3\.jpg is \d+x\d+"):
        prepare_fss(tiny_raw / "FSS-1000", out, splits)

    json_path = tiny_raw / "coco" / "annotations" / "instances_train2014.json"
    document = json.loads(json_path.read_text())
    document["images"][0]["height"] += 1
    json_path.write_text(json.dumps(document))
    name = document["images"][0]["file_name"].replace(".jpg", ".png")
    with pytest.raises(ValueError, match=rf"{name} .* is \d+x\d+ .* but its image .* is \d+x\d+"):
        prepare_coco(tiny_raw / "coco", out, splits)
