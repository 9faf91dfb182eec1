"""The synthetic stand-in for ImageNet: classes disjoint from the benchmarks, weights HSNet can load."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hmfs.model.backbone import build_backbone
from hmfs.synthetic.pretraining import PretrainConfig, benchmark_looks, pretrain, pretraining_classes, summary_path
from hmfs.synthetic import generate_fss


def test_pretraining_classes_avoid_every_benchmark_look(tmp_path):
    generate_fss(tmp_path, image_size=48, num_classes=6)
    excluded = benchmark_looks([tmp_path / "fss_summary.json"])
    assert len(excluded) == 6
    classes = pretraining_classes(excluded, 50, seed=0)
    assert len({c.describe() for c in classes}) == 50
    assert not {c.describe() for c in classes} & excluded
    assert pretraining_classes(excluded, 50, seed=0) == classes  # seeded
    with pytest.raises(ValueError, match="lower --num-classes"):
        pretraining_classes(excluded, 10_000, seed=0)
    with pytest.raises(FileNotFoundError, match="hmfs generate"):
        benchmark_looks([tmp_path / "missing.json"])


def test_pretrain_writes_weights_the_frozen_backbone_loads(tmp_path):
    generate_fss(tmp_path / "raw", image_size=48, num_classes=5)
    out = tmp_path / "resnet18_synthetic.pt"
    summary = pretrain(PretrainConfig(backbone="resnet18", out=str(out),
                                      exclude_summaries=(str(tmp_path / "raw" / "fss_summary.json"),),
                                      num_classes=4, images_per_class=4, val_images_per_class=2, image_size=32,
                                      epochs=2, batch_size=8))
    assert len(summary["history"]) == 2 and 0.0 <= summary["val_accuracy"] <= 1.0
    assert json.loads(summary_path(out).read_text())["excluded_benchmark_looks"] == 5
    backbone = build_backbone("resnet18", out)  # the 4-class head is dropped
    state = torch.load(out, weights_only=True)
    assert torch.equal(backbone.conv1.weight, state["conv1.weight"]) and state["fc.weight"].shape == (4, 512)


def test_bad_config_is_named():
    with pytest.raises(ValueError, match="unknown backbone 'resnet5'"):
        PretrainConfig(backbone="resnet5", out="x.pt")
    with pytest.raises(ValueError, match="image_size 8"):
        PretrainConfig(backbone="resnet18", out="x.pt", image_size=8)


def test_masked_share_shows_only_the_object_on_the_mean_colour():
    from hmfs.data.transforms import IMAGENET_MEAN
    from hmfs.synthetic.pretraining import render_classification_set

    classes = pretraining_classes(set(), 2, seed=0)
    plain, _ = render_classification_set(classes, 6, 48, seed=0, stream=12)
    masked, labels = render_classification_set(classes, 6, 48, seed=0, stream=12, masked_share=1.0)
    mean = np.round(np.asarray(IMAGENET_MEAN) * 255).astype(np.uint8).reshape(3, 1, 1)
    flat = (masked == mean).all(axis=1)  # (N, H, W): pixels in the mean colour
    assert labels.tolist() == [0] * 6 + [1] * 6
    assert all(0.2 < f.mean() < 0.999 for f in flat)  # the background is masked, the object is not
    assert np.array_equal(masked[~np.broadcast_to(flat[:, None], masked.shape)],
                          plain[~np.broadcast_to(flat[:, None], plain.shape)])  # the object is unchanged
    none, _ = render_classification_set(classes, 6, 48, seed=0, stream=12, masked_share=0.0)
    assert np.array_equal(none, plain)
    with pytest.raises(ValueError, match="masked_share"):
        PretrainConfig(backbone="resnet18", out="x.pt", masked_share=1.5)
