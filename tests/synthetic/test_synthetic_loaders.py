"""The episodic loaders on generated-then-prepared synthetic trees of all three benchmarks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hmfs.cli import main as hmfs_main
from hmfs.data import build_dataset


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> tuple[Path, Path]:
    """(data root, splits dir) of small synthetic PASCAL, COCO and FSS trees, made through the CLI."""
    root = tmp_path_factory.mktemp("synthetic")
    raw, data, splits = root / "raw", root / "data", root / "splits"
    assert hmfs_main(["generate", "--out", str(raw), "--image-size", "96", "--pascal-train", "8", "--pascal-val", "6",
                      "--coco-train", "160", "--coco-val", "120", "--fss-classes", "20"]) == 0
    for benchmark in ("pascal", "coco", "fss"):
        assert hmfs_main(["prepare", "--benchmark", benchmark, "--raw", str(raw), "--out", str(data),
                          "--splits-out", str(splits)]) == 0
    return data, splits


CASES = [("pascal", f, s) for f in range(4) for s in ("trn", "val")] + \
        [("coco", f, s) for f in range(4) for s in ("trn", "val")] + [("fss", 0, s) for s in ("trn", "val", "test")]


@pytest.mark.parametrize("benchmark,fold,split", CASES)
def test_every_fold_and_split_gives_valid_5shot_episodes(prepared, benchmark, fold, split):
    data, splits = prepared
    dataset = build_dataset(benchmark, data, splits, fold, split, shot=5, img_size=64, seed=0, num_episodes=6)
    for index in range(len(dataset)):
        batch = dataset[index]
        assert batch["query_img"].shape == (3, 64, 64) and batch["support_imgs"].shape == (5, 3, 64, 64)
        assert batch["query_name"] not in batch["support_names"]
        assert len(set(batch["support_names"])) == 5
        assert int(batch["class_id"]) in dataset.class_ids
        # The class is really there: every support mask has foreground (query masks may lose a tiny
        # object to the nearest-neighbour resize, supports likewise, so test the sum over supports).
        assert batch["support_masks"].sum() > 0
        assert set(torch.unique(batch["query_mask"]).tolist()) <= {0.0, 1.0}
    if benchmark in ("pascal", "coco") and split == "val":
        per_fold = 5 if benchmark == "pascal" else 20
        if benchmark == "pascal":
            assert dataset.class_ids == list(range(5 * fold, 5 * fold + per_fold))
        else:
            assert dataset.class_ids == list(range(fold, 80, 4))
    if split == "trn" and benchmark != "fss":
        assert len(dataset.class_ids) == (15 if benchmark == "pascal" else 60)


def test_pascal_boundary_band_is_ignored(prepared):
    data, splits = prepared
    dataset = build_dataset("pascal", data, splits, 0, "val", shot=1, img_size=96, seed=0, num_episodes=10)
    ignored = sum(float(dataset[i]["query_ignore_idx"].sum()) for i in range(10))
    assert ignored > 0  # VOC's 255 band survives preparation and reaches the metric as "ignore"


def test_fss_evaluation_defaults_to_every_test_image(prepared, tmp_path):
    from hmfs.commands.evaluate import evaluate
    from hmfs.model import HSNet

    data, splits = prepared
    torch.manual_seed(0)
    torch.save({"learner": HSNet("resnet18", "fm", random_backbone=True).hpn_learner.state_dict()}, tmp_path / "c.pt")
    result, _ = evaluate(benchmark="fss", data_root=data, splits_dir=splits, fold=0, backbone="resnet18", masking="fm",
                         checkpoint=tmp_path / "c.pt", random_backbone=True, img_size=64, batch_size=8)
    test_classes = (splits / "fss" / "test.txt").read_text().split()
    assert result["split"] == "test" and result["episodes"] == 10 * len(test_classes)
    assert sorted(int(c) for c in result["class_episodes"]) == list(range(len(test_classes)))
    assert set(result["class_episodes"].values()) == {10}  # every test image is a query once


def test_palette_fss_masks_are_read_by_colour(tmp_path):
    from PIL import Image

    from hmfs.data.transforms import load_mask

    mask = Image.new("P", (4, 4), 0)
    mask.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)  # index 1 is white
    mask.putpixel((1, 1), 1)
    mask.save(tmp_path / "m.png")
    grey = load_mask(tmp_path / "m.png", to_grey=True)
    assert grey[1, 1] == 255 and grey.sum() == 255  # HSNet's .convert('L') then >= 128
    assert load_mask(tmp_path / "m.png")[1, 1] == 1  # VOC-style: the palette index itself
