"""fetch-weights: a file is only installed when it matches the manifest (the sha256 prefix in its name) and fits the backbone."""

from __future__ import annotations

import hashlib

import pytest
import torch
import torchvision
import yaml

from hmfs.download.manifest import load_manifest
from hmfs.model.backbone import BACKBONES
from hmfs.commands.fetch_weights import fetch_weights, torchvision_weights_url


def saved_resnet18(tmp_path):
    """A resnet18 state dict named like torchvision's files, and a manifest whose resnet18 entry is it."""
    path = tmp_path / "plain.pth"
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    named = tmp_path / f"resnet18-{digest[:8]}.pth"
    path.rename(named)
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(yaml.safe_dump({"version": 1, "assets": {"resnet18_imagenet": {
        "description": "test", "urls": [named.as_uri()], "filename": named.name, "size": None,
        "checksum": f"sha256-prefix:{digest[:8]}", "archive": "file"}}}))
    return named, digest, manifest


def test_download_checks_hash_and_architecture(tmp_path):
    source, digest, manifest = saved_resnet18(tmp_path)
    out = tmp_path / "weights" / "resnet18_imagenet.pth"
    fetch_weights("resnet18", out, manifest=manifest)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest
    assert (out.parent / source.name).is_file()  # the verified download, kept beside it

    wrong = source.with_name("resnet18-00000000.pth")
    wrong.write_bytes(source.read_bytes()[:-1] + b"!")
    with pytest.raises(ValueError, match="(?s)could not download .*checksum mismatch"):
        fetch_weights("resnet18", tmp_path / "bad" / "w.pth", url=wrong.as_uri(), manifest=manifest)
    assert not (tmp_path / "bad" / "w.pth").exists()


def test_local_copy_is_verified_and_must_fit(tmp_path):
    source, digest, manifest = saved_resnet18(tmp_path)
    out = tmp_path / "w" / "resnet18_imagenet.pth"
    fetch_weights("resnet18", out, source=source, manifest=manifest)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest
    bad = tmp_path / "copy.pth"
    bad.write_bytes(source.read_bytes()[:-1] + b"!")
    with pytest.raises(ValueError, match="checksum mismatch"):
        fetch_weights("resnet18", tmp_path / "x.pth", source=bad, manifest=manifest)
    entry = yaml.safe_load(manifest.read_text())
    entry["assets"]["resnet50_imagenet"] = entry["assets"]["resnet18_imagenet"]
    manifest.write_text(yaml.safe_dump(entry))
    with pytest.raises(ValueError, match="weights do not fit resnet50"):
        fetch_weights("resnet50", tmp_path / "r50.pth", source=source, manifest=manifest)
    assert not (tmp_path / "r50.pth").exists() and not (tmp_path / ".r50.pth.part").exists()


def test_unreachable_source_says_where_to_put_the_file(tmp_path):
    _, _, manifest = saved_resnet18(tmp_path)
    absent = (tmp_path / "absent-12345678.pth").as_uri()
    with pytest.raises(ValueError, match=r"(?s)Download it by hand .* and put it at .*weights/resnet18-"):
        fetch_weights("resnet18", tmp_path / "weights" / "w.pth", url=absent, manifest=manifest)


def test_manifest_has_torchvisions_files():
    manifest = load_manifest()
    for backbone in BACKBONES:
        asset = manifest.get(f"{backbone}_imagenet")
        url = torchvision_weights_url(backbone)
        assert asset.urls == (url,) and asset.filename == url.rsplit("/", 1)[1]
        assert asset.checksum.kind == "sha256-prefix" and asset.filename.endswith(f"-{asset.checksum.hexdigest}.pth")
    assert torchvision_weights_url("resnet50").endswith("resnet50-0676ba61.pth")
    with pytest.raises(ValueError, match="unknown backbone"):
        torchvision_weights_url("vgg16")
