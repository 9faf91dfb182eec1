"""Tests of hmfs.synthetic: determinism, the raw formats of VOC/SBD, COCO and FSS-1000, and the class guarantees."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image
from pycocotools.coco import COCO

from hmfs import synthetic
from hmfs.synthetic import scenes
from hmfs.synthetic import (
    COCO_CATEGORIES,
    COLOURS,
    VOC_CLASSES,
    ObjectSpec,
    assign_classes,
    draw_appearances,
    generate_coco,
    generate_fss,
    generate_pascal,
    render_scene,
)

# pycocotools 2.0.11 warns on every decode under numpy 2.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

REAL_COCO_IDS = sorted(set(range(1, 91)) - {12, 26, 29, 30, 45, 66, 68, 69, 71, 83})


def tree_hashes(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under root."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def generate_tiny(out: Path, seed: int) -> None:
    generate_pascal(out, seed=seed, image_size=64, train_per_class=1, val_per_class=1)
    generate_coco(out, seed=seed, image_size=64, train_images=20, val_images=20, min_images_per_class=1)
    generate_fss(out, seed=seed, image_size=64, num_classes=5)


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("raw")
    generate_pascal(out, seed=0, image_size=96, train_per_class=6, val_per_class=6)
    generate_coco(out, seed=0, image_size=96, train_images=100, val_images=100, min_images_per_class=6)
    generate_fss(out, seed=0, image_size=96, num_classes=10)
    return out


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    generate_tiny(tmp_path / "a", seed=0)
    generate_tiny(tmp_path / "b", seed=0)
    generate_tiny(tmp_path / "c", seed=1)
    a, b, c = (tree_hashes(tmp_path / name) for name in "abc")
    assert len(a) > 250
    assert a == b
    common = set(a) & set(c)
    assert sum(a[path] != c[path] for path in common) > 0.9 * len(common)
    # Re-running over a complete tree rewrites the same bytes and leaves no temporary files.
    generate_tiny(tmp_path / "a", seed=0)
    assert tree_hashes(tmp_path / "a") == a
    assert not [p for p in (tmp_path / "a").rglob("*") if p.name.endswith(".tmp")]


def test_voc_masks_are_palette_pngs_with_a_boundary_band(raw: Path) -> None:
    voc = raw / "VOCdevkit" / "VOC2012"
    ids = (voc / "ImageSets" / "Segmentation" / "trainval.txt").read_text().split()
    assert ids and all(re.fullmatch(r"20(0[7-9]|1[01])_\d{6}", i) for i in ids)
    palette = synthetic.voc_palette()
    assert palette[3:6] == [128, 0, 0] and palette[-3:] == [224, 224, 192]  # aeroplane, void
    for image_id in ids:
        png = Image.open(voc / "SegmentationClass" / f"{image_id}.png")
        assert png.mode == "P"
        assert png.getpalette()[: 3 * 21] == palette[: 3 * 21]
        label = np.array(png)
        assert set(np.unique(label)) <= set(range(21)) | {255}
        assert (label == 255).any() and (label > 0).any() and (label < 255).any()
        assert Image.open(voc / "JPEGImages" / f"{image_id}.jpg").size == png.size
        # Band: two different non-void labels never touch (8-neighbourhood) without 255 between them.
        padded = np.pad(label, 1, constant_values=255)
        h, w = label.shape
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                other = padded[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
                touching = (label != 255) & (other != 255) & (label != other)
                assert not touching.any(), image_id


def test_sbd_mats_hold_gtcls_and_overlap_voc(raw: Path) -> None:
    voc = raw / "VOCdevkit" / "VOC2012"
    sbd = raw / "benchmark_RELEASE" / "dataset"
    sets = voc / "ImageSets" / "Segmentation"
    voc_train, voc_val = (set((sets / f"{s}.txt").read_text().split()) for s in ("train", "val"))
    sbd_ids = set((sbd / "train.txt").read_text().split()) | set((sbd / "val.txt").read_text().split())
    assert voc_train & sbd_ids and voc_val & sbd_ids and sbd_ids - voc_train - voc_val and voc_train - sbd_ids
    assert not voc_train & voc_val
    for image_id in sorted(sbd_ids):
        mat_bytes = (sbd / "cls" / f"{image_id}.mat").read_bytes()
        assert mat_bytes.startswith(b"MATLAB 5.0 MAT-file")
        gt = scipy.io.loadmat(io.BytesIO(mat_bytes), struct_as_record=False, squeeze_me=True)["GTcls"]
        seg = gt.Segmentation
        assert seg.dtype == np.uint8 and seg.max() <= 20
        assert Image.open(sbd / "img" / f"{image_id}.jpg").size == (seg.shape[1], seg.shape[0])
        jpeg = (sbd / "img" / f"{image_id}.jpg").read_bytes()
        assert jpeg == (voc / "JPEGImages" / f"{image_id}.jpg").read_bytes()
        present = np.unique(seg)
        assert np.atleast_1d(gt.CategoriesPresent).tolist() == present[present > 0].tolist()
        assert len(gt.Boundaries) == 20
        if image_id in voc_train | voc_val:  # same objects as VOC's mask outside its band
            voc_label = np.array(Image.open(voc / "SegmentationClass" / f"{image_id}.png"))
            keep = voc_label != 255
            assert np.array_equal(seg[keep], voc_label[keep])


def test_every_class_in_enough_images_per_split(raw: Path) -> None:
    pascal = json.loads((raw / "pascal_summary.json").read_text())
    assert list(pascal["classes"]) == list(VOC_CLASSES)
    assert len(set(pascal["classes"].values())) == 20  # distinct looks
    for split in ("train_aug", "val"):
        assert min(pascal["images_per_class"][split].values()) >= 6
    coco = json.loads((raw / "coco_summary.json").read_text())
    assert coco["train"]["images_per_class_min"] >= 6 and coco["val"]["images_per_class_min"] >= 6
    assert len(set(coco["classes"].values())) == 80


def test_image_sizes_vary_around_image_size(raw: Path) -> None:
    sizes = {Image.open(p).size for p in (raw / "coco" / "train2014").glob("*.jpg")}
    assert len(sizes) > 20 and any(w != h for w, h in sizes)
    assert all(72 <= s <= 120 for size in sizes for s in size)


def colour_match_fraction(pixels: np.ndarray, rgb: tuple[int, int, int]) -> float:
    """Fraction of pixels (N, 3) near the class colour or its pattern colour, over the brightness jitter."""
    candidates = []
    for jitter in np.linspace(0.85, 1.1, 11):
        colour = np.array(rgb, np.float32) * jitter
        candidates += [colour, scenes._second_colour(colour)]
    distance = np.linalg.norm(pixels[:, None, :].astype(np.float32) - np.array(candidates)[None], axis=2)
    return float((distance.min(axis=1) < 45).mean())


def test_coco_json_loads_with_real_categories_and_masks_match_objects(raw: Path) -> None:
    summary = json.loads((raw / "coco_summary.json").read_text())
    colour_of = {name: COLOURS[look.split()[0]] for name, look in summary["classes"].items()}
    for split in ("train", "val"):
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
            coco = COCO(str(raw / "coco" / "annotations" / f"instances_{split}2014.json"))
        assert sorted(coco.getCatIds()) == REAL_COCO_IDS
        names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
        assert names == {cid: name for cid, name, _ in COCO_CATEGORIES}
        assert names[1] == "person" and names[90] == "toothbrush"
        fractions: dict[str, list[float]] = {"polygon": [], "rle": [], "shifted": []}
        for image in coco.loadImgs(coco.getImgIds()):
            assert re.fullmatch(rf"COCO_{split}2014_\d{{12}}\.jpg", image["file_name"])
            pixels = np.asarray(Image.open(raw / "coco" / f"{split}2014" / image["file_name"]))
            assert pixels.shape[:2] == (image["height"], image["width"])
            anns = sorted(coco.loadAnns(coco.getAnnIds(imgIds=image["id"])), key=lambda a: -a["area"])
            masks = [coco.annToMask(a).astype(bool) for a in anns]
            for index, (ann, mask) in enumerate(zip(anns, masks)):
                assert ann["iscrowd"] == (not isinstance(ann["segmentation"], list))
                if ann["iscrowd"]:
                    assert isinstance(ann["segmentation"]["counts"], str)
                assert mask.sum() == pytest.approx(ann["area"])
                # The object's own pixels: not covered by a smaller instance, away from its edge.
                visible = mask.copy()
                for smaller in masks[index + 1 :]:
                    visible &= ~smaller
                edge = np.zeros_like(mask)
                for shift, axis in ((1, 0), (-1, 0), (1, 1), (-1, 1)):
                    edge |= np.roll(~mask, shift, axis)
                inner = visible & ~edge
                if inner.sum() >= 15:
                    colour = colour_of[names[ann["category_id"]]]
                    kind = "rle" if ann["iscrowd"] else "polygon"
                    fractions[kind].append(colour_match_fraction(pixels[inner], colour))
                    shifted = np.roll(inner, (image["height"] // 2, image["width"] // 2), (0, 1))
                    fractions["shifted"].append(colour_match_fraction(pixels[shifted], colour))
        # JPEG blurs small textured objects, so judge the bulk; the same masks moved elsewhere
        # (the control) mostly land on background.
        assert len(fractions["polygon"]) >= 50 and len(fractions["rle"]) >= 3
        for kind in ("polygon", "rle"):
            assert np.median(fractions[kind]) > 0.8 and np.mean(np.array(fractions[kind]) > 0.6) > 0.75, kind
        assert np.median(fractions["shifted"]) < 0.3


def test_fss_tree_and_splits(raw: Path) -> None:
    root = raw / "FSS-1000"
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != "splits")
    assert len(names) == 10
    for name in names:
        assert sorted(p.name for p in (root / name).iterdir()) == sorted(
            f"{n}.{ext}" for n in range(1, 11) for ext in ("jpg", "png")
        )
        for n in range(1, 11):
            mask = Image.open(root / name / f"{n}.png")
            assert mask.mode == "L" and mask.size == Image.open(root / name / f"{n}.jpg").size
            values = np.array(mask)
            assert set(np.unique(values)) == {0, 255} and (values == 255).sum() >= synthetic.MIN_VISIBLE_PIXELS
    test_bytes = (root / "splits" / "test.txt").read_bytes()
    assert test_bytes.endswith(b"\r\n") and test_bytes.count(b"\r\n") == test_bytes.count(b"\n")
    assert b"\r" not in (root / "splits" / "trn.txt").read_bytes()
    splits = {s: (root / "splits" / f"{s}.txt").read_text().split() for s in ("trn", "val", "test")}
    assert [len(v) for v in splits.values()] == [5, 2, 3]  # 520:240:240 of 10, rounded
    assert sorted(sum(splits.values(), [])) == names
    default = json.loads((raw / "fss_summary.json").read_text())
    assert default["splits"] == {"trn": 5, "val": 2, "test": 3}


def test_fss_default_ratio(tmp_path: Path) -> None:
    summary = generate_fss(tmp_path, image_size=48, num_classes=50)
    assert summary["splits"] == {"trn": 26, "val": 12, "test": 12}
    with pytest.raises(ValueError, match="--fss-classes 3"):
        generate_fss(tmp_path, num_classes=3)


def test_smaller_object_is_drawn_on_top() -> None:
    looks = draw_appearances(np.random.default_rng(0), 2)
    specs = [ObjectSpec(looks[0], 0), ObjectSpec(looks[1], 1), ObjectSpec(looks[0], 0)]
    overlaps = 0
    for seed in range(40):
        image, instances, owner = render_scene(np.random.default_rng(seed), 64, 80, specs)
        assert image.shape == (64, 80, 3) and image.dtype == np.uint8 and owner.shape == (64, 80)
        areas = [int(inst.mask.sum()) for inst in instances]
        assert areas == sorted(areas, reverse=True)
        for i in range(len(instances)):
            for j in range(i + 1, len(instances)):
                both = instances[i].mask & instances[j].mask
                overlaps += int(both.any())
                later = np.zeros_like(both)
                for k in range(j + 1, len(instances)):
                    later |= instances[k].mask
                assert (owner[both & ~later] == j).all()
    assert overlaps > 5


def test_assign_classes_guarantees_counts() -> None:
    assigned = assign_classes(np.random.default_rng(0), 100, 80, 6)
    assert all(len(set(c)) == len(c) and 1 <= len(c) <= synthetic.MAX_CLASSES_PER_IMAGE for c in assigned)
    counts = np.bincount(np.concatenate(assigned), minlength=80)
    assert counts.min() >= 6
    with pytest.raises(ValueError, match="cannot give each of 80 classes 6 images"):
        assign_classes(np.random.default_rng(0), 50, 80, 6)


def test_photo_backgrounds_are_real_photo_crops_and_deterministic(tmp_path: Path) -> None:
    from hmfs.synthetic.backgrounds import load_photos, photo_background

    photos = load_photos()
    assert len(photos) == 18 and all(p.ndim == 3 and p.shape[2] == 3 and p.dtype == np.uint8 for p in photos)
    a = photo_background(np.random.default_rng(3), photos, 40, 56)
    b = photo_background(np.random.default_rng(3), photos, 40, 56)
    assert a.shape == (40, 56, 3) and np.array_equal(a, b) and a.std() > 5  # textured, not flat
    first = generate_fss(tmp_path / "photos", image_size=48, num_classes=5, background="photos")
    again = generate_fss(tmp_path / "again", image_size=48, num_classes=5, background="photos")
    clutter = generate_fss(tmp_path / "clutter", image_size=48, num_classes=5)
    assert first["background"] == "photos" and clutter["background"] == "clutter"
    name = sorted((tmp_path / "photos" / "FSS-1000").glob("*/1.jpg"))[0].relative_to(tmp_path / "photos")
    assert (tmp_path / "photos" / name).read_bytes() == (tmp_path / "again" / name).read_bytes()
    assert (tmp_path / "photos" / name).read_bytes() != (tmp_path / "clutter" / name).read_bytes()
    with pytest.raises(ValueError, match="unknown background 'fog'"):
        generate_fss(tmp_path / "bad", image_size=48, num_classes=5, background="fog")
