"""The frozen-backbone feature cache: the same logits as the direct forward, each image computed once, resumable runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from hmfs.data import build_dataset
from hmfs.model import HSNet
from hmfs.model.feature_cache import FeatureCache


def hmfs_cli(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "hmfs", *args], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def coco(tmp_path_factory) -> tuple[Path, Path]:
    """A small prepared synthetic COCO-20i: (data root, splits dir)."""
    root = tmp_path_factory.mktemp("coco")
    hmfs_cli("generate", "--out", str(root / "raw"), "--benchmark", "coco", "--image-size", "64",
             "--coco-train", "160", "--coco-val", "80", "--min-images-per-class", "2")
    hmfs_cli("prepare", "--benchmark", "coco", "--raw", str(root / "raw"), "--out", str(root / "data"),
             "--splits-out", str(root / "splits"))
    return root / "data", root / "splits"


@pytest.mark.parametrize("masking", ["fm", "im", "hm"])
def test_cached_logits_equal_the_direct_forward(coco, masking):
    data, splits = coco
    torch.manual_seed(0)
    model = HSNet("resnet18", masking, random_backbone=True).eval()
    dataset = build_dataset("coco", data, splits, fold=0, split="trn", shot=1, img_size=64, seed=0, num_episodes=24)
    cache = FeatureCache(model)
    with torch.no_grad():
        for rep in range(2):
            for batch in DataLoader(dataset, batch_size=4):
                direct = model(batch["query_img"], batch["support_imgs"][:, 0], batch["support_masks"][:, 0])
                torch.testing.assert_close(cache.forward(batch), direct, atol=1e-5, rtol=1e-5)
            if rep == 0:
                computed = cache.misses
    # Every map was computed in the first pass; the second read them all (FM: one map per image;
    # IM: one per (support image, class); HM: both kinds).
    assert cache.misses == computed and cache.hits >= 24 * 2
    names = {n for i in range(24) for n in (dataset[i]["query_name"], dataset[i]["support_names"][0])}
    assert len(cache) == computed and computed <= 2 * len(names)


def test_a_full_cache_computes_without_storing(coco):
    data, splits = coco
    torch.manual_seed(0)
    model = HSNet("resnet18", "hm", random_backbone=True).eval()
    batch = next(iter(DataLoader(build_dataset("coco", data, splits, fold=0, split="trn", shot=1, img_size=64,
                                               seed=0, num_episodes=4), batch_size=4)))
    full = FeatureCache(model, max_bytes=0)
    with torch.no_grad():
        torch.testing.assert_close(full.forward(batch), FeatureCache(model).forward(batch))
        full.forward(batch)
    assert len(full) == 0 and full.bytes == 0 and full.hits == 0
    with pytest.raises(ValueError, match="3 keys for a batch of 4"):
        full.extract(batch["query_img"], ["a", "b", "c"])


@pytest.mark.slow
def test_cached_training_resumes_to_the_same_weights(coco, tmp_path):
    """Maps are computed one image at a time, so a resumed run (empty cache) repeats the uninterrupted one."""
    data, splits = coco

    def train(out: Path, epochs: int) -> subprocess.CompletedProcess:
        return hmfs_cli("train", "--benchmark", "coco", "--data-root", str(data), "--splits-dir", str(splits),
                        "--fold", "0", "--backbone", "resnet18", "--random-backbone", "--masking", "hm",
                        "--img-size", "64", "--batch-size", "4", "--epochs", str(epochs), "--train-episodes", "16",
                        "--val-episodes", "8", "--seed", "1", "--cache-features", "--out", str(out))

    straight = train(tmp_path / "straight", 2)
    assert "feature cache:" in straight.stderr and "hits" in straight.stderr
    train(tmp_path / "resumed", 1)
    resumed = train(tmp_path / "resumed", 2)
    assert "resuming" in resumed.stderr
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)["learner"]
    b = torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)["learner"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    history = [json.loads(line) for line in (tmp_path / "resumed" / "history.jsonl").read_text().splitlines()]
    assert [h["val_miou"] for h in history] == [
        json.loads(line)["val_miou"] for line in (tmp_path / "straight" / "history.jsonl").read_text().splitlines()]
