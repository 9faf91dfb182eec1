"""Getting the real data: archives in the real layouts, served on a loopback server, go download -> verify ->
unpack -> prepare -> verify-data, in Python for each benchmark and once through Snakemake; nothing is downloaded
unless the config allows it; local copies need no network; bad files inside a prepared tree are named."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from hmfs.pipeline import argv, assets
from hmfs.cli import build_parser, main
from hmfs.data import build_dataset
from hmfs.commands import download as command
from hmfs.download import verify
from hmfs.download.manifest import DEFAULT_MANIFEST, load_manifest
from hmfs.data.prepare import prepare_coco, prepare_fss, prepare_pascal
from hmfs.synthetic import generate_coco, generate_fss, generate_pascal
from hmfs.commands.verify_data import image_mask_pairs, verify_benchmark
from tests.download.test_download import FakeServer, NoNetwork
from tests.workflow.test_workflow import REPO, job_counts, snakemake, workdir  # noqa: F401 (workdir is a fixture)

# pycocotools 2.0.11 warns on every decode under numpy 2.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

# How each archive is packed from a generated raw tree: (folder of the raw tree its entries sit in,
# top-level entries, the name they carry in the archive). FSS-1000 is packed as the authors'
# fewshot_data/, which the manifest renames.
PACKING = {
    "voc2012_trainval": (".", ["VOCdevkit"], {}),
    "sbd": (".", ["benchmark_RELEASE"], {}),
    "coco_train2014": ("coco", ["train2014"], {}),
    "coco_val2014": ("coco", ["val2014"], {}),
    "coco_annotations2014": ("coco", ["annotations"], {}),
    "fss1000": (".", ["FSS-1000"], {"FSS-1000": "fewshot_data"}),
}
DATA_ASSETS = tuple(PACKING)


def _files(folder: Path, entries: list[str]) -> list[tuple[Path, str]]:
    """(file, name relative to `folder`) of every file under the entries, sorted."""
    return sorted((path, path.relative_to(folder).as_posix())
                  for entry in entries for path in (folder / entry).rglob("*") if path.is_file())


def pack(raw: Path, name: str, kind: str) -> bytes:
    """The archive of asset `name` (kind tar, tgz or zip) from the generated raw tree."""
    into, entries, renamed = PACKING[name]
    folder, buffer = raw / into, io.BytesIO()
    members = []
    for path, member in _files(folder, entries):
        top, _, rest = member.partition("/")
        members.append((path, f"{renamed.get(top, top)}/{rest}"))
    if kind == "zip":
        with zipfile.ZipFile(buffer, "w") as handle:
            for path, member in members:
                handle.write(path, member)
    else:
        with tarfile.open(fileobj=buffer, mode="w:gz" if kind == "tgz" else "w") as handle:
            for path, member in members:
                handle.add(path, member)
    return buffer.getvalue()


def tree_hashes(folder: Path, entries: list[str]) -> dict[str, str]:
    return {member: hashlib.sha256(path.read_bytes()).hexdigest() for path, member in _files(folder, entries)}


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    """A small generated raw tree of all three benchmarks (VOCdevkit/ + benchmark_RELEASE/, coco/, FSS-1000/)."""
    root = tmp_path_factory.mktemp("generated") / "raw"
    generate_pascal(root, image_size=64, train_per_class=1, val_per_class=1)
    generate_coco(root, image_size=64, train_images=20, val_images=20, min_images_per_class=1)
    generate_fss(root, image_size=64, num_classes=5)
    return root


@pytest.fixture(scope="module")
def served(raw, tmp_path_factory):
    """(server, manifest path, archives): the shipped manifest, where the six data assets have the
    archives' own sizes, md5s and member counts and the loopback server as their only source.
    FSS-1000 keeps the Drive file's lack of size and checksum."""
    shipped = yaml.safe_load(DEFAULT_MANIFEST.read_text())
    server, archives, entries = FakeServer(), {}, shipped["assets"]
    for name in DATA_ASSETS:
        entry = copy.deepcopy(shipped["assets"][name])
        data = pack(raw, name, entry["archive"])
        archives[name] = data
        server.files[f"/{entry['filename']}"] = data
        entry["urls"] = [server.url(f"/{entry['filename']}")]
        into = raw / PACKING[name][0]
        entry["unpack"]["expect"] = verify.count_members(into, entry["unpack"]["expect"])
        if entry["checksum"] is not None:
            entry.update(size=len(data), checksum=f"md5:{hashlib.md5(data).hexdigest()}")
        entries[name] = entry
    path = tmp_path_factory.mktemp("manifest") / "manifest.yaml"
    path.write_text(yaml.safe_dump(shipped, sort_keys=False))
    yield server, path, archives
    server.close()


def requests_for(server: FakeServer, names) -> list[str]:
    files = {f"/{load_manifest().get(name).filename}" for name in names}
    return [path for path, _ in server.requests if path in files]


# --- the whole path in Python ---------------------------------------------------------------------

@pytest.mark.parametrize("benchmark", ["pascal", "coco", "fss"])
def test_download_unpack_prepare_verify(benchmark, raw, served, tmp_path):
    server, manifest, archives = served
    downloads, unpacked, data = tmp_path / "downloads", tmp_path / "raw", tmp_path / "data"
    before = len(requests_for(server, assets.BENCHMARK_ASSETS[benchmark]))
    records = []
    for name in assets.BENCHMARK_ASSETS[benchmark]:
        asset = load_manifest(manifest).get(name)
        assert main(["fetch", "--asset", name, "--out", str(downloads), "--manifest", str(manifest)]) == 0
        assert (downloads / asset.filename).read_bytes() == archives[name]
        record = unpacked / f"{name}.unpacked.json"
        assert main(["unpack", "--asset", name, "--archive", str(downloads / asset.filename), "--out", str(unpacked),
                     "--manifest", str(manifest), "--summary", str(record)]) == 0
        into, entries, _ = PACKING[name]
        assert tree_hashes(unpacked / into, entries) == tree_hashes(raw / into, entries)  # byte for byte
        records.append(str(record))
    assert len(requests_for(server, assets.BENCHMARK_ASSETS[benchmark])) - before == len(records)  # one each

    prepared, verified = data / f"{benchmark}.prepared.json", data / f"{benchmark}.verified.json"
    assert main(["prepare", "--benchmark", benchmark, "--raw", str(unpacked), "--out", str(data), "--splits-out",
                 str(data / "splits"), "--summary", str(prepared), "--threads", "2", "--asset-records", *records]) == 0
    assert main(["verify-data", "--benchmark", benchmark, "--data-root", str(data), "--threads", "2",
                 "--summary", str(verified)]) == 0
    assert json.loads(verified.read_text())["pairs"] == len(image_mask_pairs(benchmark, data)) > 0
    provenance = {record["asset"]: record for record in json.loads(prepared.read_text())["assets"]}
    assert list(provenance) == list(assets.BENCHMARK_ASSETS[benchmark])
    for name, record in provenance.items():
        data_bytes = archives[name]
        if name == "fss1000":  # no published checksum: the one computed on the first download is kept
            assert record["checksum"] == f"sha256:{hashlib.sha256(data_bytes).hexdigest()}" and record["checksum_note"]
        else:
            assert record["checksum"] == f"md5:{hashlib.md5(data_bytes).hexdigest()}"
        assert record["kind"] == "archive" and record["found"] == record["expect"]


def test_coco_masks_are_the_same_with_worker_processes(raw, tmp_path):
    prepare_coco(raw / "coco", tmp_path / "one", tmp_path / "one_splits", threads=1)
    prepare_coco(raw / "coco", tmp_path / "two", tmp_path / "two_splits", threads=2)
    masks = [tmp_path / run / "COCO2014" / "annotations" for run in ("one", "two")]
    assert tree_hashes(masks[0], ["train2014", "val2014"]) == tree_hashes(masks[1], ["train2014", "val2014"])
    assert tree_hashes(tmp_path / "one_splits", ["coco"]) == tree_hashes(tmp_path / "two_splits", ["coco"])
    # An error in a worker stops prepare, naming the file.
    shutil.copytree(raw / "coco", tmp_path / "coco")
    json_path = tmp_path / "coco" / "annotations" / "instances_val2014.json"
    document = json.loads(json_path.read_text())
    document["images"][-1]["width"] += 3
    json_path.write_text(json.dumps(document))
    name = document["images"][-1]["file_name"].replace(".jpg", ".png")
    with pytest.raises(ValueError, match=rf"mask val2014/{name} \(from instances_val2014.json\) is .* but its image"):
        prepare_coco(tmp_path / "coco", tmp_path / "three", tmp_path / "three_splits", threads=2)


def test_unpacked_folder_is_counted_once_and_linked(raw, served, tmp_path):
    _, manifest, _ = served
    asset = load_manifest(manifest).get("coco_train2014")
    mine = tmp_path / "mine"
    shutil.copytree(raw / "coco" / "train2014", mine / "train2014")
    unpacked = tmp_path / "raw"
    assert main(["unpack", "--asset", asset.name, "--local", str(mine), "--out", str(unpacked), "--manifest",
                 str(manifest), "--summary", str(tmp_path / "record.json")]) == 0
    link = unpacked / "coco" / "train2014"
    assert link.is_symlink() and link.resolve() == (mine / "train2014").resolve()
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["kind"] == "folder" and record["found"] == asset.unpack.expected_counts
    # Again: nothing to link, nothing counted (the marker); a foreign folder in the place is refused.
    assert command.place_folder(asset, mine, unpacked) == unpacked / "coco"
    link.unlink()
    (unpacked / "coco" / "train2014").mkdir()
    with pytest.raises(ValueError, match="train2014 already exists and is not"):
        command.place_folder(asset, mine, unpacked)


# --- the workflow ---------------------------------------------------------------------------------

def real_config(workdir: Path, manifest: Path, **data) -> str:
    """config.yaml with every path below out/, the test manifest, and `data` changes; returns its name."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["output_dir"] = "out"
    config["data"].update(raw_dir="out/raw", root="out/data", downloads_dir="out/downloads", manifest=str(manifest),
                          **data)
    name = f"real_{len(list(workdir.glob('real_*.yaml')))}.yaml"
    (workdir / name).write_text(yaml.safe_dump(config, sort_keys=False))
    return name


VERIFIED = [f"out/data/{benchmark}.verified.json" for benchmark in ("pascal", "coco", "fss")]


def test_workflow_downloads_unpacks_prepares_and_verifies(workdir, served):
    server, manifest, archives = served
    before = len(requests_for(server, DATA_ASSETS))
    name = real_config(workdir, manifest, download=True)
    run = snakemake(workdir, *VERIFIED, "--configfile", name, "--cores", "2")
    counts = job_counts(run.stdout + run.stderr)
    assert counts == {"download_asset": 6, "unpack_asset": 6, "prepare_data": 3, "verify_data": 3}, counts
    assert len(requests_for(server, DATA_ASSETS)) - before == 6
    downloads = workdir / "out" / "downloads"
    assert not [p for p in downloads.iterdir() if not p.name.startswith(".")]  # archives deleted once unpacked
    record = json.loads((workdir / "out" / "data" / "coco.prepared.json").read_text())
    assert [a["asset"] for a in record["assets"]] == ["coco_train2014", "coco_val2014", "coco_annotations2014"]
    assert record["assets"][0]["checksum"] == f"md5:{hashlib.md5(archives['coco_train2014']).hexdigest()}"
    # The deleted archives are not downloaded again: everything after them is in place.
    again = snakemake(workdir, *VERIFIED, "--configfile", name, "--cores", "2")
    assert "Nothing to be done" in again.stdout + again.stderr
    assert len(requests_for(server, DATA_ASSETS)) - before == 6


def test_no_download_without_the_switch_and_local_copies_need_none(workdir, served, raw):
    server, manifest, archives = served
    before = list(server.requests)
    refused = snakemake(workdir, *VERIFIED, "--configfile", real_config(workdir, manifest), "--cores", "2",
                        check=False)
    out = refused.stdout + refused.stderr
    assert refused.returncode != 0 and "data.download is false in real_0.yaml" in out
    for name in DATA_ASSETS:
        asset = load_manifest(manifest).get(name)
        assert f"out/downloads/{asset.filename}" in out and asset.size_text in out
    assert "set `data.download: true`" in out and "data.local" in out and "config.synthetic.yaml" in out
    assert server.requests == before and not (workdir / "out" / "downloads").exists()

    # Own copies: archives (VOC, SBD, FSS-1000) and unpacked folders (COCO): nothing is downloaded.
    mine = workdir / "mine"
    mine.mkdir()
    local = {}
    for name in ("voc2012_trainval", "sbd", "fss1000"):
        local[name] = str(mine / load_manifest(manifest).get(name).filename)
        Path(local[name]).write_bytes(archives[name])
    shutil.copytree(raw / "coco", mine / "coco")
    local.update(coco_train2014=str(mine / "coco"), coco_val2014=str(mine / "coco"),
                 coco_annotations2014=str(mine / "coco"))
    name = real_config(workdir, manifest, local=local)
    plan = job_counts(snakemake(workdir, *VERIFIED, "-n", "--configfile", name).stdout)
    assert plan == {"unpack_asset": 6, "prepare_data": 3, "verify_data": 3}, plan
    run = snakemake(workdir, "out/data/fss.verified.json", "--configfile", name, "--cores", "2")
    assert job_counts(run.stdout + run.stderr) == {"unpack_asset": 1, "prepare_data": 1, "verify_data": 1}
    assert server.requests == before and Path(local["fss1000"]).is_file()  # never deleted


def test_dry_run_of_the_paper_config_with_everything_placed(workdir):
    """The done-criterion with the shipped manifest: own copies named in the config, no download job."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    mine = workdir / "mine"
    mine.mkdir()
    config["data"]["local"] = {}
    for name in assets.needed_assets(config):
        path = mine / load_manifest().get(name).filename
        path.touch()  # a dry run only needs them to exist
        config["data"]["local"][name] = str(path)
    (workdir / "placed.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    counts = job_counts(snakemake(workdir, "-n", "--configfile", "placed.yaml").stdout)
    assert "download_asset" not in counts
    assert counts["unpack_asset"] == 6 and counts["install_backbone_weights"] == 2 and counts["verify_data"] == 3


# --- bad files ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def prepared(raw, tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("prepared")
    prepare_pascal(raw / "VOCdevkit" / "VOC2012", raw / "benchmark_RELEASE" / "dataset", data, data / "splits")
    prepare_coco(raw / "coco", data, data / "splits")
    prepare_fss(raw / "FSS-1000", data, data / "splits")
    return data


def truncate(path: Path) -> None:
    """Cut a file in half, as an interrupted copy leaves it."""
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_verify_data_lists_every_bad_file(prepared, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(prepared, data, symlinks=False)  # real files, so the test can spoil them
    fss_class = sorted(p.name for p in (data / "FSS-1000").iterdir())[0]
    image, mask = data / "FSS-1000" / fss_class / "3.jpg", data / "FSS-1000" / fss_class / "7.png"
    truncate(image)
    Image.fromarray(np.zeros((7, 11), np.uint8)).save(mask)
    with pytest.raises(ValueError) as error:
        verify_benchmark("fss", data, threads=2)
    message = str(error.value)
    assert "2 problem(s)" in message
    assert f"{image}: truncated or unreadable image (OSError: image file is truncated" in message
    assert f"{mask}: mask is 11x7 (WxH) but its image {mask.with_suffix('.jpg')} is" in message
    assert verify_benchmark("pascal", data) == {"pairs": len(image_mask_pairs("pascal", data))}

    coco_mask = sorted((data / "COCO2014" / "annotations" / "val2014").iterdir())[0]
    coco_image = data / "COCO2014" / "val2014" / coco_mask.with_suffix(".jpg").name
    truncate(coco_mask)
    coco_image.write_bytes(b"not a jpeg")
    with pytest.raises(ValueError) as error:
        verify_benchmark("coco", data, threads=2)
    assert f"{coco_mask}: truncated or unreadable mask" in str(error.value)
    assert f"{coco_image}: truncated or unreadable image (UnidentifiedImageError" in str(error.value)
    # The command says the same, and leaves no marker.
    marker = tmp_path / "coco.verified.json"
    assert main(["verify-data", "--benchmark", "coco", "--data-root", str(data), "--summary", str(marker)]) == 2
    assert not marker.exists()


def test_loaders_and_prepare_name_a_truncated_file(prepared, raw, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(prepared, data, symlinks=False)
    dataset = build_dataset("fss", data, data / "splits", 0, "test", 1, 32, 0)
    query = dataset.sample_episode(0).query_name
    truncate(data / "FSS-1000" / query)
    image = data / "FSS-1000" / query
    with pytest.raises(ValueError, match=rf"{re.escape(str(image))}: truncated or unreadable image"):
        dataset[0]
    truncate((data / "FSS-1000" / query).with_suffix(".png"))
    (data / "FSS-1000" / query).write_bytes((prepared / "FSS-1000" / query).read_bytes())
    mask = (data / "FSS-1000" / query).with_suffix(".png")
    with pytest.raises(ValueError, match=rf"{re.escape(str(mask))}: truncated or unreadable mask"):
        dataset[0]

    spoiled = tmp_path / "raw"
    shutil.copytree(raw / "VOCdevkit", spoiled / "VOCdevkit")
    voc_png = sorted((spoiled / "VOCdevkit" / "VOC2012" / "SegmentationClass").iterdir())[0]
    truncate(voc_png)
    with pytest.raises(ValueError, match=rf"{re.escape(str(voc_png))}: truncated or unreadable mask"):
        prepare_pascal(spoiled / "VOCdevkit" / "VOC2012", raw / "benchmark_RELEASE" / "dataset", tmp_path / "d",
                       tmp_path / "s")
    voc_png.write_bytes((raw / voc_png.relative_to(spoiled)).read_bytes())
    jpeg = spoiled / "VOCdevkit" / "VOC2012" / "JPEGImages" / voc_png.with_suffix(".jpg").name
    jpeg.write_bytes(b"\x00" * 10)
    with pytest.raises(ValueError, match=rf"{re.escape(str(jpeg))}: truncated or unreadable image \(Unidentified"):
        prepare_pascal(spoiled / "VOCdevkit" / "VOC2012", raw / "benchmark_RELEASE" / "dataset", tmp_path / "d",
                       tmp_path / "s")


# --- config and flags -----------------------------------------------------------------------------

def test_schema_names_every_workflow_asset_of_the_manifest():
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    local = schema["properties"]["data"]["properties"]["local"]["properties"]
    assert tuple(local) == assets.WORKFLOW_ASSETS
    assert set(assets.WORKFLOW_ASSETS) <= set(load_manifest().names)


def test_rule_flags_parse_and_name_the_right_files(tmp_path):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    parser = build_parser()
    fetch = parser.parse_args(["fetch", *assets.download_flags(config, "train2014.zip")])
    assert (fetch.asset, str(fetch.out), fetch.offline) == ("coco_train2014", "resources/downloads", True)
    allowed = {**config, "data": {**config["data"], "download": True}}
    assert not parser.parse_args(["fetch", *assets.download_flags(allowed, "train2014.zip")]).offline
    unpacked = parser.parse_args(["unpack", *assets.unpack_flags(config, "sbd")])
    assert str(unpacked.archive) == "resources/downloads/benchmark.tgz"
    assert str(unpacked.summary) == "resources/raw/sbd.unpacked.json"
    weights = parser.parse_args(["fetch-weights", *assets.weights_flags(config, "resnet50", "w.pth")])
    assert str(weights.source) == "resources/downloads/resnet50-0676ba61.pth"
    prepare = parser.parse_args(["prepare", *argv.prepare_flags(config, "coco")])
    assert [str(p) for p in prepare.asset_records] == [f"resources/raw/{name}.unpacked.json"
                                                       for name in assets.BENCHMARK_ASSETS["coco"]]
    parser.parse_args(["verify-data", *argv.verify_flags(config, "fss")])
    folder = tmp_path / "coco"
    folder.mkdir()
    config["data"]["local"] = {"coco_val2014": str(folder)}
    assert assets.source_file(config, "coco_val2014") is None
    assert parser.parse_args(["unpack", *assets.unpack_flags(config, "coco_val2014")]).local == folder
    synthetic = yaml.safe_load((REPO / "workflow" / "config.synthetic.yaml").read_text())
    assert assets.needed_assets(synthetic) == [] and "--asset-records" not in argv.prepare_flags(synthetic, "coco")


def test_data_source_checks_name_the_key(tmp_path):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    assets.check_data_sources(config)
    bad = copy.deepcopy(config)
    bad["data"]["local"] = {"sbd": str(tmp_path / "nowhere.tgz")}
    with pytest.raises(FileNotFoundError, match=r"data.local.sbd: .*nowhere.tgz does not exist"):
        assets.check_data_sources(bad)
    bad["data"]["local"] = {"resnet50_imagenet": str(tmp_path)}
    with pytest.raises(ValueError, match=r"data.local.resnet50_imagenet: .* is a folder; name the file itself"):
        assets.check_data_sources(bad)
    bad["data"].update(downloads_dir=str(tmp_path), local={"sbd": str(tmp_path / "benchmark.tgz")})
    (tmp_path / "benchmark.tgz").touch()
    with pytest.raises(ValueError, match=r"data.local.sbd: .* is where downloads go"):
        assets.check_data_sources(bad)
    bad = copy.deepcopy(config)
    bad["data"]["manifest"] = str(tmp_path / "none.yaml")
    with pytest.raises(ValueError, match=r"data.manifest: manifest .*none.yaml does not exist"):
        assets.check_data_sources(bad)
    synthetic = yaml.safe_load((REPO / "workflow" / "config.synthetic.yaml").read_text())
    synthetic["backbone_weights"]["source"] = "torchvision"
    with pytest.raises(ValueError, match="data.download and data.downloads_dir must be set"):
        assets.check_data_sources(synthetic)


def test_refusal_lists_files_sizes_and_the_switch():
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    message = assets.downloads_refused(config, ["train2014.zip", "fewshot_data.zip"], ["/somewhere/config.yaml"])
    assert "data.download is false in" in message and "2 file(s)" in message
    assert "resources/downloads/train2014.zip" in message and "13,510,573,713 bytes (13.5 GB)" in message
    assert "about 679 MB (size not published)" in message and "https://drive.google.com/uc?id=" in message
    assert assets.downloads_refused(config, []) is None
    assert assets.downloads_refused({**config, "data": {**config["data"], "download": True}}, ["train2014.zip"]) is None


def test_offline_fetch_names_the_place(tmp_path):
    asset = load_manifest().get("sbd")
    where = re.escape(str(tmp_path))
    with pytest.raises(ValueError, match=rf"'sbd' \(benchmark.tgz, 1,419,539,633 bytes .*is not at {where}"):
        command.fetch_asset(asset, tmp_path, offline=True, session=NoNetwork())
    assert not os.listdir(tmp_path)
