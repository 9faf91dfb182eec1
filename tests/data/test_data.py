"""Tests of the episodic datasets (hmfs.data) on tiny prepared PASCAL / COCO / FSS trees built in tmp_path."""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from hmfs.data import BENCHMARKS, EpisodeDataset, build_dataset, packaged_splits_dir
from hmfs.data.coco import coco_fold_classes
from hmfs.data.pascal import pascal_fold_classes
from hmfs.data.transforms import (
    AUGMENT_OPS, IMAGENET_MEAN, IMAGENET_STD, check_augment_ops, load_image, load_mask, normalise_image, photometric_augment, resize_image,
)

W, H = 40, 30  # file size of every fixture image (aspect deliberately not square)
S = 24  # img_size used in the tests
PER_CLASS = 4  # images per class and list in the PASCAL / COCO fixtures


@dataclass
class Tree:
    """A prepared DATA + SPLITS pair and, for checks, the class of every image name."""

    data: Path
    splits: Path
    labels: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (H, W) uint8 label map
    name_class: dict[str, int] = field(default_factory=dict)  # name -> class of the list it is in


def _label_map(class_id: int, n: int, other: int | None, ignore_band: bool) -> np.ndarray:
    """(H, W) uint8: a rectangle of class_id + 1 (with a 255 band when ignore_band), maybe another class."""
    labels = np.zeros((H, W), np.uint8)
    top, left = 4 + n % 3, 5 + 2 * (n % 4)
    if ignore_band:
        labels[top - 2:top + 14, left - 2:left + 16] = 255
    labels[top:top + 12, left:left + 14] = class_id + 1
    if other is not None:
        labels[22:28, 28:38] = other + 1
    return labels


def _write_pair(image_path: Path, mask_path: Path, labels: np.ndarray, seed: int, mask_mode: str = "L") -> None:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 80, (H, W, 3), dtype=np.uint8)
    pixels[labels > 0] += np.uint8(120)  # objects brighter than the background
    image_path.parent.mkdir(parents=True, exist_ok=True)
    mask_path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(image_path, quality=95)
    mask = Image.fromarray(labels)
    if mask_mode == "RGB":
        mask = mask.convert("RGB")
    mask.save(mask_path)


def make_pascal(root: Path) -> Tree:
    """VOC2012 tree: for each class c (0..19) PER_CLASS trn images `trn_cc_n` and PER_CLASS val images."""
    tree = Tree(root / "DATA", root / "SPLITS")
    for split in ("trn", "val"):
        for fold in range(4):
            lines = []
            for c in pascal_fold_classes(fold):
                for n in range(PER_CLASS):
                    name = f"{split}_{c:02d}_{n}"
                    labels = _label_map(c, n, other=(c + 7) % 20 if n % 2 else None, ignore_band=True)
                    _write_pair(tree.data / "VOC2012/JPEGImages" / f"{name}.jpg",
                                tree.data / "VOC2012/SegmentationClassAug" / f"{name}.png", labels, seed=c * 10 + n)
                    tree.labels[name], tree.name_class[name] = labels, c
                    lines.append(f"{name}__{c + 1:02d}")
            path = tree.splits / "pascal" / split / f"fold{fold}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(lines) + "\n")
    return tree


def make_coco(root: Path) -> Tree:
    """COCO2014 tree: PER_CLASS train2014 and val2014 images per class; fold 3's val list gzipped."""
    tree = Tree(root / "DATA", root / "SPLITS")
    names: dict[str, dict[int, list[str]]] = {"train2014": {}, "val2014": {}}
    for folder in names:
        for c in range(80):
            for n in range(PER_CLASS):
                name = f"{folder}/COCO_{folder}_{c:04d}{n:08d}.jpg"
                labels = _label_map(c, n, other=(c + 1) % 80 if n == 0 else None, ignore_band=False)
                _write_pair(tree.data / "COCO2014" / name,
                            (tree.data / "COCO2014/annotations" / name).with_suffix(".png"), labels, seed=c * 10 + n)
                tree.labels[name], tree.name_class[name] = labels, c
                names[folder].setdefault(c, []).append(name)
    for fold in range(4):
        test = set(coco_fold_classes(fold))
        for split, folder in (("trn", "train2014"), ("val", "val2014")):
            lists = {str(c): (names[folder][c] if (c in test) == (split == "val") else []) for c in range(80)}
            path = tree.splits / "coco" / split / f"fold{fold}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            if split == "val" and fold == 3:
                path.with_name("fold3.json.gz").write_bytes(gzip.compress(json.dumps(lists).encode()))
            else:
                path.write_text(json.dumps(lists))
    return tree


FSS_CLASSES = {"trn": ["ant", "bee", "cat"], "val": ["dog", "eel"], "test": ["fox", "gnu"]}


def make_fss(root: Path) -> Tree:
    """FSS-1000 tree: 10 images per class, RGB masks (0/255 object plus a grey-100 blob below threshold)."""
    tree = Tree(root / "DATA", root / "SPLITS")
    for split, classes in FSS_CLASSES.items():
        for cls in classes:
            for n in range(1, 11):
                labels = np.where(_label_map(0, n, None, ignore_band=False) > 0, 255, 0).astype(np.uint8)
                labels[24:28, 2:6] = 100  # < 128: background after HSNet's threshold
                _write_pair(tree.data / "FSS-1000" / cls / f"{n}.jpg", tree.data / "FSS-1000" / cls / f"{n}.png",
                            labels, seed=n, mask_mode="RGB")
                tree.labels[f"{cls}/{n}.jpg"] = labels
        path = tree.splits / "fss" / f"{split}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        # Unsorted, and CRLF for test.txt, as HSNet's file.
        path.write_bytes(("\r\n" if split == "test" else "\n").join(reversed(classes)).encode() + b"\n")
    return tree


@pytest.fixture(scope="module")
def pascal(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    return make_pascal(tmp_path_factory.mktemp("pascal"))


@pytest.fixture(scope="module")
def coco(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    return make_coco(tmp_path_factory.mktemp("coco"))


@pytest.fixture(scope="module")
def fss(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    return make_fss(tmp_path_factory.mktemp("fss"))


@pytest.fixture(scope="module")
def trees(pascal: Tree, coco: Tree, fss: Tree) -> dict[str, Tree]:
    return {"pascal": pascal, "coco": coco, "fss": fss}


def build(tree: Tree, benchmark: str, **kwargs) -> EpisodeDataset:
    args = dict(fold=0, split="val", shot=1, img_size=S, seed=0)
    args.update(kwargs)
    return build_dataset(benchmark, tree.data, tree.splits, **args)


def episode_key(batch: dict) -> tuple:
    return batch["query_name"], tuple(batch["support_names"]), int(batch["class_id"])


def class_of(tree: Tree, benchmark: str, dataset: EpisodeDataset, name: str) -> int:
    if benchmark == "fss":
        return dataset.categories.index(name.split("/")[0])
    return tree.name_class[name]


# ---------------------------------------------------------------------------------------------
# batch contract
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("benchmark", BENCHMARKS)
@pytest.mark.parametrize("shot", [1, 3])
def test_batch_keys_shapes_dtypes(trees: dict[str, Tree], benchmark: str, shot: int) -> None:
    dataset = build(trees[benchmark], benchmark, shot=shot, split="test" if benchmark == "fss" else "val")
    batch = dataset[5]
    assert set(batch) == {
        "query_img", "query_mask", "query_ignore_idx", "query_name", "support_imgs", "support_masks",
        "support_ignore_idxs", "support_names", "class_id", "episode",
    }
    assert batch["query_img"].shape == (3, S, S) and batch["query_img"].dtype == torch.float32
    for key in ("query_mask", "query_ignore_idx"):
        assert batch[key].shape == (S, S) and batch[key].dtype == torch.float32
    assert batch["support_imgs"].shape == (shot, 3, S, S) and batch["support_imgs"].dtype == torch.float32
    for key in ("support_masks", "support_ignore_idxs"):
        assert batch[key].shape == (shot, S, S) and batch[key].dtype == torch.float32
    assert isinstance(batch["query_name"], str)
    assert isinstance(batch["support_names"], list) and len(batch["support_names"]) == shot
    assert batch["class_id"].dtype == torch.int64 and batch["class_id"].ndim == 0
    assert batch["episode"] == 5
    # ImageNet-normalised: [0, 1] maps to [-2.12, 2.64]; the fixture's bright objects exceed 0.
    assert batch["query_img"].min() >= -2.2 and batch["query_img"].max() <= 2.7 and batch["query_img"].max() > 0.5
    assert dataset.benchmark == benchmark
    assert dataset.nclass == {"pascal": 20, "coco": 80, "fss": 2}[benchmark]


@pytest.mark.parametrize("benchmark", BENCHMARKS)
def test_masks_binary_and_of_the_episode_class(trees: dict[str, Tree], benchmark: str) -> None:
    tree = trees[benchmark]
    dataset = build(tree, benchmark, shot=2, use_original_imgsize=True)
    for index in range(12):
        batch = dataset[index]
        class_id = int(batch["class_id"])
        assert class_id in dataset.class_ids
        names = [batch["query_name"], *batch["support_names"]]
        assert batch["query_name"] not in batch["support_names"]
        assert len(set(batch["support_names"])) == 2
        assert all(class_of(tree, benchmark, dataset, name) == class_id for name in names)
        labels = tree.labels[batch["query_name"]]
        if benchmark == "fss":
            expected_fg, expected_ignore = labels >= 128, np.zeros_like(labels, bool)
        else:
            expected_fg = labels == class_id + 1
            expected_ignore = labels == 255 if benchmark == "pascal" else np.zeros_like(labels, bool)
        # Original size: exactly the label map of the file, other classes and grey blobs are background.
        assert batch["query_mask"].shape == (H, W) and batch["org_query_imsize"].tolist() == [H, W]
        assert torch.equal(batch["query_mask"], torch.from_numpy(expected_fg).float())
        assert torch.equal(batch["query_ignore_idx"], torch.from_numpy(expected_ignore).float())
        for key in ("support_masks", "support_ignore_idxs"):
            assert set(batch[key].unique().tolist()) <= {0.0, 1.0}
        assert (batch["support_masks"].flatten(1).sum(1) > 0).all()
        assert (batch["support_masks"] * batch["support_ignore_idxs"]).sum() == 0


def test_pascal_ignore_band(pascal: Tree) -> None:
    batch = build(pascal, "pascal")[0]
    band = batch["query_ignore_idx"]
    assert band.sum() > 0 and (band * batch["query_mask"]).sum() == 0
    assert set(band.unique().tolist()) == {0.0, 1.0}
    # The band surrounds the object: dilating the mask by a few pixels touches it.
    grown = torch.nn.functional.max_pool2d(batch["query_mask"][None, None], 5, 1, 2)[0, 0]
    assert (grown * band).sum() > 0
    assert (batch["support_ignore_idxs"].sum() > 0)


def test_coco_and_fss_have_no_ignore_band(coco: Tree, fss: Tree) -> None:
    for tree, benchmark in ((coco, "coco"), (fss, "fss")):
        batch = build(tree, benchmark)[0]
        assert batch["query_ignore_idx"].sum() == 0 and batch["support_ignore_idxs"].sum() == 0


def test_resized_masks_are_nearest_samples(pascal: Tree) -> None:
    """S x S masks are torch 'nearest' samples of the file's label map (HSNet's F.interpolate)."""
    batch = build(pascal, "pascal")[3]
    labels = torch.from_numpy(pascal.labels[batch["query_name"]])[None, None].float()
    sampled = torch.nn.functional.interpolate(labels, size=(S, S), mode="nearest")[0, 0]
    assert torch.equal(batch["query_mask"], (sampled == int(batch["class_id"]) + 1).float())
    assert torch.equal(batch["query_ignore_idx"], (sampled == 255).float())


# ---------------------------------------------------------------------------------------------
# determinism
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("benchmark", BENCHMARKS)
def test_episode_identical_across_instances(trees: dict[str, Tree], benchmark: str) -> None:
    first = build(trees[benchmark], benchmark, shot=2, seed=7)
    second = build(trees[benchmark], benchmark, shot=2, seed=7)
    for index in (0, 3, 11):
        a, b = first[index], second[index]
        assert episode_key(a) == episode_key(b)
        for key in ("query_img", "query_mask", "support_imgs", "support_masks"):
            assert torch.equal(a[key], b[key])
    # Out of order and repeated access give the same episode.
    assert episode_key(first[3]) == episode_key(second[3]) == episode_key(first[3])


def _loader_keys(dataset: EpisodeDataset, batch_size: int, workers: int) -> dict[int, tuple]:
    out = {}
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, shuffle=False)
    for batch in loader:
        for b, index in enumerate(batch["episode"].tolist()):
            names = tuple(batch["support_names"][s][b] for s in range(dataset.shot))
            out[index] = (batch["query_name"][b], names, int(batch["class_id"][b]),
                          batch["query_img"][b].sum().item(), batch["support_masks"][b].sum().item())
    return out


def test_episodes_independent_of_batch_size_and_workers(coco: Tree) -> None:
    dataset = build(coco, "coco", split="trn", shot=2, seed=3, num_episodes=9)
    dataset.set_epoch(2)
    reference = _loader_keys(dataset, batch_size=1, workers=0)
    assert sorted(reference) == list(range(9))
    assert _loader_keys(dataset, batch_size=3, workers=0) == reference
    assert _loader_keys(dataset, batch_size=3, workers=2) == reference
    assert _loader_keys(dataset, batch_size=1, workers=2) == reference
    direct = dataset[4]
    assert reference[4][:3] == (direct["query_name"], tuple(direct["support_names"]), int(direct["class_id"]))


@pytest.mark.parametrize("benchmark", BENCHMARKS)
def test_different_seed_different_episodes(trees: dict[str, Tree], benchmark: str) -> None:
    a = build(trees[benchmark], benchmark, shot=2, seed=0)
    b = build(trees[benchmark], benchmark, shot=2, seed=1)
    keys_a = [a.sample_episode(i) for i in range(20)]
    keys_b = [b.sample_episode(i) for i in range(20)]
    assert keys_a != keys_b
    if benchmark != "coco":  # the query follows the index, only the supports are random
        assert [k.query_name for k in keys_a] == [k.query_name for k in keys_b]


def test_set_epoch_changes_training_episodes_only(pascal: Tree) -> None:
    train = build(pascal, "pascal", split="trn", shot=2)
    epoch0 = [train.sample_episode(i) for i in range(len(train))]
    train.set_epoch(1)
    epoch1 = [train.sample_episode(i) for i in range(len(train))]
    assert epoch0 != epoch1
    assert [e.query_name for e in epoch0] == [e.query_name for e in epoch1]
    train.set_epoch(0)
    assert [train.sample_episode(i) for i in range(len(train))] == epoch0
    # Episode i of epoch e is the generator default_rng([seed, epoch, i]).
    assert train.episode_rng(5).random() == np.random.default_rng([0, 0, 5]).random()

    evaluation = build(pascal, "pascal", split="val", shot=2)
    before = [evaluation.sample_episode(i) for i in range(30)]
    evaluation.set_epoch(4)
    assert evaluation.epoch == 0 and [evaluation.sample_episode(i) for i in range(30)] == before
    with pytest.raises(ValueError, match="epoch"):
        train.set_epoch(-1)


# ---------------------------------------------------------------------------------------------
# episode protocol
# ---------------------------------------------------------------------------------------------

def test_fold_class_sets(pascal: Tree, coco: Tree) -> None:
    for fold in range(4):
        val = build(pascal, "pascal", fold=fold)
        trn = build(pascal, "pascal", fold=fold, split="trn")
        assert val.class_ids == [5 * fold + i for i in range(5)]  # VOC labels 5k+1..5k+5
        assert trn.class_ids == [c for c in range(20) if c not in val.class_ids]
        assert build(pascal, "pascal", fold=fold, split="test").class_ids == val.class_ids
        coco_val = build(coco, "coco", fold=fold)
        assert coco_val.class_ids == list(range(fold, 80, 4))
        assert build(coco, "coco", fold=fold, split="trn").class_ids == [c for c in range(80) if c % 4 != fold]
    assert pascal_fold_classes(3) == [15, 16, 17, 18, 19]
    assert coco_fold_classes(1)[:3] == [1, 5, 9] and len(coco_fold_classes(1)) == 20


@pytest.mark.parametrize("benchmark", ["pascal", "coco"])
def test_training_never_yields_a_test_fold_class(trees: dict[str, Tree], benchmark: str) -> None:
    for fold in range(4):
        dataset = build(trees[benchmark], benchmark, fold=fold, split="trn", shot=2)
        test_classes = set((pascal_fold_classes if benchmark == "pascal" else coco_fold_classes)(fold))
        seen = set()
        for index in range(len(dataset)):
            episode = dataset.sample_episode(index)
            seen.add(episode.class_id)
            assert episode.class_id not in test_classes
            for name in (episode.query_name, *episode.support_names):
                assert trees[benchmark].name_class[name] == episode.class_id
        assert seen == set(dataset.class_ids) if benchmark == "pascal" else seen <= set(dataset.class_ids)


def test_lengths(pascal: Tree, coco: Tree, fss: Tree) -> None:
    # PASCAL: trn = one episode per (image, class) pair of the other three folds; val = 1000, cycling.
    assert len(build(pascal, "pascal", split="trn")) == 15 * PER_CLASS
    val = build(pascal, "pascal")
    assert len(val) == 1000
    queries = [val.sample_episode(i).query_name for i in range(45)]
    assert queries[:5 * PER_CLASS] == queries[5 * PER_CLASS:10 * PER_CLASS]  # query = pairs[i % 20]
    assert len(build(pascal, "pascal", num_episodes=30)) == 30
    # Fewer episodes than queries: spread over the list, every class still visited.
    short = build(pascal, "pascal", num_episodes=5)
    assert sorted(short.sample_episode(i).class_id for i in range(5)) == [0, 1, 2, 3, 4]
    # COCO: trn = distinct images listed for the 60 training classes; val = 1000.
    assert len(build(coco, "coco", split="trn")) == 60 * PER_CLASS
    assert len(build(coco, "coco")) == 1000
    # FSS: every image of every class once.
    assert len(build(fss, "fss", split="trn")) == 30
    assert len(build(fss, "fss", split="val")) == 20
    test = build(fss, "fss", split="test")
    assert len(test) == 20
    assert [test.sample_episode(i).query_name for i in range(20)] == [
        f"{c}/{n}.jpg" for c in ("fox", "gnu") for n in range(1, 11)
    ]
    assert len(build(fss, "fss", split="test", num_episodes=7)) == 7
    with pytest.raises(IndexError):
        test[20]


def test_fss_splits_are_sorted_class_lists(fss: Tree) -> None:
    for split, classes in FSS_CLASSES.items():
        dataset = build(fss, "fss", split=split)
        assert dataset.categories == sorted(classes)  # test.txt had CRLF and reversed order
        assert dataset.class_ids == list(range(len(classes))) and dataset.nclass == len(classes)
    batch = build(fss, "fss", split="val")[13]
    assert batch["query_name"] == "eel/4.jpg" and int(batch["class_id"]) == 1


def test_class_ids_subset(pascal: Tree, coco: Tree, fss: Tree) -> None:
    subset = build(pascal, "pascal", class_ids=[3, 1])
    assert subset.class_ids == [1, 3]
    assert {subset.sample_episode(i).class_id for i in range(40)} == {1, 3}
    # Classes of other PASCAL folds (COCO -> PASCAL test): read from their own val lists.
    cross = build(pascal, "pascal", fold=0, class_ids=[0, 8, 14])
    episodes = [cross.sample_episode(i) for i in range(60)]
    assert {e.class_id for e in episodes} == {0, 8, 14}
    assert all(pascal.name_class[e.query_name] == e.class_id for e in episodes)
    coco_subset = build(coco, "coco", fold=2, class_ids=[2, 6, 3])
    assert {coco_subset.sample_episode(i).class_id for i in range(60)} == {2, 3, 6}
    fss_subset = build(fss, "fss", split="val", class_ids=[1])
    assert len(fss_subset) == 10 and {fss_subset.sample_episode(i).class_id for i in range(10)} == {1}
    for bad in ([20], [], [1, 1], [True], ["1"]):
        with pytest.raises(ValueError, match="class_ids"):
            build(pascal, "pascal", class_ids=bad)
    with pytest.raises(ValueError, match=r"0\.\.1"):
        build(fss, "fss", split="val", class_ids=[2])
    with pytest.raises(ValueError, match="trn"):
        build(pascal, "pascal", split="trn", class_ids=[1])


def test_packaged_lists_index_lazily(tmp_path: Path) -> None:
    """The shipped HSNet lists build datasets without touching image files (lengths as HSNet's)."""
    (tmp_path / "VOC2012/JPEGImages").mkdir(parents=True)
    (tmp_path / "VOC2012/SegmentationClassAug").mkdir(parents=True)
    (tmp_path / "COCO2014/annotations").mkdir(parents=True)
    splits = packaged_splits_dir()
    pascal_trn = build_dataset("pascal", tmp_path, splits, 0, "trn", 1, 400, 0)
    assert len(pascal_trn) == 3425 + 5883 + 2086  # lines of trn/fold1..3
    coco_trn = build_dataset("coco", tmp_path, splits, 0, "trn", 1, 400, 0)
    assert len(coco_trn) == 62040  # distinct images of HSNet's trn/fold0 list
    episode = build_dataset("coco", tmp_path, splits, 1, "val", 5, 400, 0).sample_episode(999)
    assert episode.class_id % 4 == 1 and episode.query_name.startswith("val2014/")
    with pytest.raises(FileNotFoundError, match="JPEGImages"):
        pascal_trn[0]


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------

def test_bad_arguments_name_value_and_accepted(pascal: Tree, fss: Tree) -> None:
    with pytest.raises(ValueError, match=r"'voc'.*pascal, coco, fss"):
        build(pascal, "voc")
    with pytest.raises(ValueError, match=r"'train'.*trn, val, test"):
        build(pascal, "pascal", split="train")
    with pytest.raises(ValueError, match=r"fold 4 .*0\.\.3"):
        build(pascal, "pascal", fold=4)
    with pytest.raises(ValueError, match=r"fold 1 .*0 \(FSS-1000 has no folds\)"):
        build(fss, "fss", fold=1)
    with pytest.raises(ValueError, match="shot"):
        build(pascal, "pascal", shot=0)
    with pytest.raises(ValueError, match="img_size"):
        build(pascal, "pascal", img_size=0)
    with pytest.raises(ValueError, match="augment"):
        build(pascal, "pascal", split="val", augment=True)


def test_missing_root_and_split_files(tmp_path: Path, pascal: Tree, coco: Tree, fss: Tree) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=rf"{re.escape(str(missing))}.*VOC2012"):
        build_dataset("pascal", missing, pascal.splits, 0, "val", 1, S, 0)
    with pytest.raises(FileNotFoundError, match=rf"{re.escape(str(tmp_path / 'COCO2014'))}.*COCO2014/annotations"):
        build_dataset("coco", tmp_path, coco.splits, 0, "val", 1, S, 0)
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "FSS-1000"))):
        build_dataset("fss", tmp_path, fss.splits, 0, "val", 1, S, 0)
    split_file = re.escape(str(tmp_path / "pascal/val/fold0.txt"))
    with pytest.raises(FileNotFoundError, match=rf"{split_file}.*convert-splits"):
        build_dataset("pascal", pascal.data, tmp_path, 0, "val", 1, S, 0)
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "coco/trn/fold2.json"))):
        build_dataset("coco", coco.data, tmp_path, 2, "trn", 1, S, 0)
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "fss/test.txt"))):
        build_dataset("fss", fss.data, tmp_path, 0, "test", 1, S, 0)


def _copy_tree(tree: Tree, root: Path) -> Tree:
    import shutil

    shutil.copytree(tree.data, root / "DATA")
    return Tree(root / "DATA", tree.splits, tree.labels, tree.name_class)


def test_missing_image_mask_and_size_mismatch(tmp_path: Path, pascal: Tree) -> None:
    tree = _copy_tree(pascal, tmp_path)
    dataset = build(tree, "pascal")
    query = dataset.sample_episode(0).query_name
    image = tree.data / "VOC2012/JPEGImages" / f"{query}.jpg"
    mask = tree.data / "VOC2012/SegmentationClassAug" / f"{query}.png"
    image.rename(image.with_suffix(".bak"))
    with pytest.raises(FileNotFoundError, match=rf"{re.escape(str(image))}.*VOC2012/JPEGImages/<id>.jpg"):
        dataset[0]
    image.with_suffix(".bak").rename(image)
    mask.unlink()
    with pytest.raises(FileNotFoundError, match=rf"{re.escape(str(mask))}.*SegmentationClassAug"):
        dataset[0]
    Image.fromarray(np.zeros((H + 2, W, 3), np.uint8)[..., 0]).save(mask)
    with pytest.raises(ValueError, match=rf"{re.escape(str(mask))} is 40x32.*{re.escape(str(image))} is 40x30"):
        dataset[0]
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(mask)  # RGB label map: refused for PASCAL
    with pytest.raises(ValueError, match=rf"{re.escape(str(mask))}.*single-channel"):
        dataset[0]


def test_class_with_too_few_images(pascal: Tree, fss: Tree) -> None:
    with pytest.raises(ValueError, match=rf"class 0 \(aeroplane\) has {PER_CLASS} image.*at least {PER_CLASS + 1}"):
        build(pascal, "pascal", shot=PER_CLASS)
    with pytest.raises(ValueError, match=r"class 0 \(ant\) has 10 image.*at least 11"):
        build(fss, "fss", split="trn", shot=10)
    assert len(build(fss, "fss", split="trn", shot=9)) == 30


# ---------------------------------------------------------------------------------------------
# augmentation
# ---------------------------------------------------------------------------------------------

def test_augmentation_changes_pixels_not_masks_and_is_deterministic(pascal: Tree) -> None:
    plain = build(pascal, "pascal", split="trn", shot=2, seed=5)
    augmented = build(pascal, "pascal", split="trn", shot=2, seed=5, augment=True)
    again = build(pascal, "pascal", split="trn", shot=2, seed=5, augment=True)
    changed = 0
    for index in range(12):
        a, b, c = plain[index], augmented[index], again[index]
        assert episode_key(a) == episode_key(b)  # same files: augmentation draws come after sampling
        for key in ("query_mask", "query_ignore_idx", "support_masks", "support_ignore_idxs"):
            assert torch.equal(a[key], b[key])
        for key in ("query_img", "support_imgs"):
            assert torch.equal(b[key], c[key])
            assert b[key].dtype == torch.float32
        changed += int(not torch.equal(a["query_img"], b["query_img"]))
        changed += int(not torch.equal(a["support_imgs"], b["support_imgs"]))
    assert changed >= 5  # each image is left untouched with probability 0.8 ** 7 ~ 0.21
    augmented.set_epoch(1)
    again.set_epoch(1)
    assert torch.equal(augmented[0]["query_img"], again[0]["query_img"])
    torch.manual_seed(123)  # global RNG state plays no part
    np.random.seed(123)
    assert torch.equal(augmented[1]["support_imgs"], again[1]["support_imgs"])


def test_photometric_ops_each_change_pixels() -> None:
    img = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (3, 16, 16), dtype=np.uint8))
    out = photometric_augment(img, np.random.default_rng(1), p=1.0)
    assert out.dtype == torch.uint8 and out.shape == img.shape and not torch.equal(out, img)
    assert torch.equal(out, photometric_augment(img, np.random.default_rng(1), p=1.0))
    assert torch.equal(photometric_augment(img, np.random.default_rng(1), p=0.0), img)


def test_augment_ops_subset_keeps_the_recipe_decisions() -> None:
    """A subset of the ops applies exactly those, on the coin flips the whole recipe would draw."""
    img = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (3, 16, 16), dtype=np.uint8))
    assert torch.equal(photometric_augment(img, np.random.default_rng(1), p=1.0, ops=()), img)
    # grayscale alone at p=1: three equal channels; without it (colour-keeping ops only) they differ.
    grey = photometric_augment(img, np.random.default_rng(1), p=1.0, ops=("grayscale",))
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])
    kept = photometric_augment(img, np.random.default_rng(1), p=1.0, ops=("posterize", "sharpen", "brightness_contrast"))
    assert not torch.equal(kept, img) and not torch.equal(kept[0], kept[1])
    # With every op listed, the same as the default (the recipe).
    assert torch.equal(photometric_augment(img, np.random.default_rng(1), p=1.0, ops=AUGMENT_OPS),
                       photometric_augment(img, np.random.default_rng(1), p=1.0))
    with pytest.raises(ValueError, match="'hue'.*accepted: grayscale"):
        check_augment_ops(["sharpen", "hue"])


def test_dataset_applies_only_the_chosen_ops(pascal: Tree) -> None:
    full = build(pascal, "pascal", split="trn", shot=1, seed=5, augment=True)
    none = build(pascal, "pascal", split="trn", shot=1, seed=5, augment=True, augment_ops=())
    plain = build(pascal, "pascal", split="trn", shot=1, seed=5)
    assert none.augment_ops == () and full.augment_ops == AUGMENT_OPS
    for index in range(6):
        assert torch.equal(none[index]["query_img"], plain[index]["query_img"])
    with pytest.raises(ValueError, match="unknown augmentation op"):
        build(pascal, "pascal", split="trn", shot=1, seed=5, augment=True, augment_ops=("blur",))


# ---------------------------------------------------------------------------------------------
# transforms
# ---------------------------------------------------------------------------------------------

def test_image_pipeline_equals_hsnet_transform() -> None:
    """Resize((S, S)) + ToTensor + Normalize on a PIL image, as HSNet's FSSDataset.transform."""
    from torchvision import transforms

    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8))
    hsnet = transforms.Compose([transforms.Resize(size=(S, S)), transforms.ToTensor(),
                                transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    assert torch.allclose(normalise_image(resize_image(img, S)), hsnet(img), atol=1e-6)


def test_loaders_keep_indices_and_convert_grey(tmp_path: Path) -> None:
    palette = Image.fromarray(np.array([[0, 3], [255, 20]], np.uint8)).convert("P")
    palette.putpalette([v for i in range(256) for v in (i, 255 - i, 7)])
    palette.save(tmp_path / "voc.png")
    assert load_mask(tmp_path / "voc.png").tolist() == [[0, 3], [255, 20]]  # indices, not colours
    Image.fromarray(np.full((5, 6), 90, np.uint8)).save(tmp_path / "grey.jpg")
    rgb = load_image(tmp_path / "grey.jpg")
    assert rgb.mode == "RGB" and rgb.size == (6, 5)


def test_original_size_query_through_a_loader(pascal: Tree) -> None:
    dataset = build(pascal, "pascal", use_original_imgsize=True, num_episodes=2)
    batch = next(iter(DataLoader(dataset, batch_size=1)))
    assert batch["query_mask"].shape == (1, H, W) and batch["query_ignore_idx"].shape == (1, H, W)
    assert batch["support_masks"].shape == (1, 1, S, S) and batch["query_img"].shape == (1, 3, S, S)
    assert batch["org_query_imsize"].tolist() == [[H, W]]
