"""fetch-weights: a file is only kept when its sha256 matches the prefix its name carries and it fits the backbone."""

from __future__ import annotations

import hashlib

import pytest
import torch
import torchvision

from hmfs.weights import fetch_weights, torchvision_weights_url


def saved_resnet18(tmp_path):
    path = tmp_path / "plain.pth"
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    named = tmp_path / f"resnet18-{digest[:8]}.pth"
    path.rename(named)
    return named, digest


def test_fetch_checks_hash_and_architecture(tmp_path):
    source, digest = saved_resnet18(tmp_path)
    out = tmp_path / "weights" / "resnet18_imagenet.pth"
    fetch_weights("resnet18", out, url=source.as_uri())
    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest

    wrong = source.with_name("resnet18-00000000.pth")
    wrong.write_bytes(source.read_bytes())
    with pytest.raises(ValueError, match="invalid hash value|hash"):
        fetch_weights("resnet18", tmp_path / "bad.pth", url=wrong.as_uri())
    assert not (tmp_path / "bad.pth").exists() and not (tmp_path / ".bad.pth.part").exists()

    with pytest.raises(ValueError, match="weights do not fit resnet50"):
        fetch_weights("resnet50", tmp_path / "r50.pth", url=source.as_uri())
    assert not (tmp_path / "r50.pth").exists()


def test_unreachable_url_says_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="copy the file to"):
        fetch_weights("resnet18", tmp_path / "w.pth", url=(tmp_path / "absent-12345678.pth").as_uri())


def test_torchvision_urls_carry_their_hash():
    assert torchvision_weights_url("resnet50").endswith("resnet50-0676ba61.pth")
    with pytest.raises(ValueError, match="unknown backbone"):
        torchvision_weights_url("vgg16")
