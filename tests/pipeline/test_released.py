"""The authors' released checkpoints: official-format loading, backbone checks, provenance, grid, tables, check-released."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision
import yaml

from hmfs.pipeline import argv, checks, grid, paths
from hmfs.commands.check_released import check_released
from hmfs.cli import main
from hmfs.commands.evaluate import evaluate
from hmfs.model import HSNet
from hmfs.model.checkpoint import (backbone_state_dict, check_checkpoint_backbone, infer_backbone, read_checkpoint)
from hmfs.pipeline.released import HM_FOLDER, HSNET_FOLDERS

REPO = Path(__file__).resolve().parents[2]


def save_official(path: Path, backbone: str, masking: str = "fm", seed: int = 0, legacy: bool = False) -> HSNet:
    """What HSNet / HM save: the state dict of the DataParallel-wrapped model (module.backbone.*, module.hpn_learner.*)."""
    torch.manual_seed(seed)
    model = HSNet(backbone, masking, random_backbone=True)
    wrapped = torch.nn.DataParallel(model)  # the wrapper is only used to produce its real key layout
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(wrapped.state_dict(), path, _use_new_zipfile_serialization=not legacy)
    return model


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50", "resnet101"])
def test_backbone_is_recognised_from_its_keys(name):
    state = {f"module.backbone.{k}": v for k, v in getattr(torchvision.models, name)(weights=None).state_dict().items()}
    assert infer_backbone(backbone_state_dict(state)) == name
    other = "resnet101" if name != "resnet101" else "resnet50"
    with pytest.raises(ValueError, match=f"holds a {name} backbone.*configured as {other}"):
        check_checkpoint_backbone(state, other, "x/best_model.pt")


def test_official_files_load_with_weights_only_in_both_torch_formats(tmp_path):
    for legacy in (False, True):  # torch >= 1.6 zip format, and the older format old releases may use
        path = tmp_path / f"{legacy}" / "best_model.pt"
        source = save_official(path, "resnet18", legacy=legacy)
        state = read_checkpoint(path)
        assert all(k.startswith("module.") for k in state)
        assert torch.equal(backbone_state_dict(state)["layer1.0.conv1.weight"], source.backbone.layer1[0].conv1.weight)


def test_a_file_that_needs_code_to_unpickle_is_refused(tmp_path):
    path = tmp_path / "best_model.pt"
    torch.save({"state": object.__new__(torch.nn.ReLU)}, path)  # a module object: not plain weights
    with pytest.raises(ValueError, match=r"checkpoint .*best_model.pt cannot be read \(.* bytes; it holds Python objects other than tensors, which are never unpickled here\)"):
        read_checkpoint(path)


@pytest.fixture(scope="module")
def pascal(tmp_path_factory) -> tuple[Path, Path]:
    """A small prepared synthetic PASCAL-5i: (data root, splits dir)."""
    root = tmp_path_factory.mktemp("pascal")
    for command in (["generate", "--out", str(root / "raw"), "--benchmark", "pascal", "--image-size", "64",
                     "--pascal-train", "4", "--pascal-val", "4"],
                    ["prepare", "--benchmark", "pascal", "--raw", str(root / "raw"), "--out", str(root / "data"),
                     "--splits-out", str(root / "splits")]):
        subprocess.run([sys.executable, "-m", "hmfs", *command], check=True, capture_output=True, timeout=300)
    return root / "data", root / "splits"


def test_released_file_evaluates_with_its_own_backbone_and_records_provenance(pascal, tmp_path):
    data, splits = pascal
    released = tmp_path / "released" / "pascal" / "resnet18" / "fm" / "fold0" / "best_model.pt"
    model = save_official(released, "resnet18")
    common = dict(benchmark="pascal", data_root=data, splits_dir=splits, fold=0, backbone="resnet18", masking="fm",
                  checkpoint=released, img_size=64, episodes=6, batch_size=3)
    result, _ = evaluate(**common, backbone_from_checkpoint=True, checkpoint_origin="released")
    # The same backbone given as a separate weights file gives the same numbers.
    weights = tmp_path / "resnet18_weights.pth"
    torch.save(model.backbone.state_dict(), weights)
    same, _ = evaluate(**common, backbone_weights=weights)
    assert result["miou"] == same["miou"] and result["fb_iou"] == same["fb_iou"]
    assert result["checkpoint_origin"] == "released" and same["checkpoint_origin"] == "trained"
    assert result["backbone_weights"] == "checkpoint" and len(result["checkpoint_sha256"]) == 64
    assert "checkpoint_epoch" not in result  # HSNet's files store no epoch: nothing is made up

    # A ResNet-34 file under a ResNet-18 row fails naming both.
    wrong = tmp_path / "released" / "pascal" / "resnet18" / "fm" / "fold1" / "best_model.pt"
    save_official(wrong, "resnet34")
    with pytest.raises(ValueError, match="holds a resnet34 backbone.*configured as resnet18"):
        evaluate(**{**common, "checkpoint": wrong}, backbone_from_checkpoint=True, checkpoint_origin="released")
    # Our own checkpoints carry no backbone: asking for it is a clear error.
    ours = tmp_path / "ours.pt"
    torch.save({"learner": model.hpn_learner.state_dict(), "backbone": "resnet18", "masking": "fm", "epoch": 7,
                "val_miou": 12.5}, ours)
    with pytest.raises(ValueError, match="carries no backbone.* weights"):
        evaluate(**{**common, "checkpoint": ours}, backbone_from_checkpoint=True)
    trained, _ = evaluate(**{**common, "checkpoint": ours}, backbone_weights=weights)
    assert trained["checkpoint_epoch"] == 7 and trained["checkpoint_val_miou"] == 12.5


def test_check_released_reports_each_file_and_the_missing_ones(tmp_path):
    root = tmp_path / "released"
    good = save_official(root / "fss" / "resnet18" / "fm" / "all" / "best_model.pt", "resnet18")
    save_official(root / "fss" / "resnet18" / "hm" / "all" / "best_model.pt", "resnet34")  # wrong backbone
    save_official(root / "fss" / "resnet18" / "fm" / "fold2" / "best_model.pt", "resnet18")  # FSS has no folds
    imagenet = tmp_path / "weights"
    imagenet.mkdir()
    torch.save(good.backbone.state_dict(), imagenet / "resnet18_imagenet.pth")
    config = yaml.safe_load((REPO / "config.released.yaml").read_text())
    config["backbones"] = ["resnet18"]
    config["tables"] = {"table3": config["tables"]["table3"]}
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    result = check_released(root, config_path, imagenet)
    by_run = {r.get("run", r["path"]): r for r in result["files"]}
    assert by_run["released/fss/resnet18/fm/all"]["problems"] == []
    assert by_run["released/fss/resnet18/fm/all"]["backbone_vs_imagenet"]["equal"] is True
    assert "holds a resnet34 backbone" in by_run["released/fss/resnet18/hm/all"]["problems"][0]
    assert any("folder names must follow" in p for r in result["files"] for p in r["problems"])
    assert result["missing"] == [] and result["ok"] is False
    assert main(["check-released", "--dir", str(root), "--config", str(config_path)]) == 2

    config["backbones"] = ["resnet18", "resnet50"]
    config_path.write_text(yaml.safe_dump(config))
    missing = check_released(root, config_path)["missing"]
    assert len(missing) == 2 and all(HSNET_FOLDERS["fss"] in m or HM_FOLDER in m for m in missing)


@pytest.fixture
def released_config() -> dict:
    return yaml.safe_load((REPO / "config.released.yaml").read_text())


def test_released_config_trains_nothing_and_evaluates_tables_1_to_4(released_config):
    assert grid.summarize(released_config) == {"trainings": 0, "released_checkpoints": 36, "evaluations": 104,
                                               "cross_domain_evaluations": 32}
    assert set(released_config["tables"]) == {"table1", "table2", "table3", "table4"}
    evaluation = next(e for e in grid.evaluations(released_config) if e.test_benchmark == "pascal"
                      and e.run.benchmark == "coco")
    flags = argv.evaluation_flags(released_config, evaluation)
    assert "--backbone-from-checkpoint" in flags and "--backbone-weights" not in flags
    assert flags[flags.index("--checkpoint") + 1] == paths.checkpoint_path(released_config, evaluation.run)
    assert flags[flags.index("--checkpoint-origin") + 1] == "released" and "--class-names" in flags
    assert paths.evaluation_path("out", evaluation).startswith("out/released/coco/")
    imagenet = {**released_config, "released": {**released_config["released"], "backbone_weights": "imagenet"}}
    assert "--backbone-weights" in argv.evaluation_flags(imagenet, evaluation)


def test_missing_released_checkpoints_are_listed_together_with_their_links(released_config, tmp_path):
    released_config["released"]["dir"] = str(tmp_path)
    with pytest.raises(FileNotFoundError) as error:
        checks.check_released_files(released_config)
    text = str(error.value)
    assert text.startswith("36 of 36 released checkpoints are missing")
    assert f"{tmp_path}/pascal/resnet50/hm_aug/fold3/best_model.pt  <- the HM authors'" in text
    assert HSNET_FOLDERS["coco"] in text and "check-released" in text


def test_source_both_puts_released_and_trained_runs_side_by_side(released_config):
    released_config["tables"] = {"table2": {"benchmark": "coco", "rows": {"HSNet": {"masking": "fm", "source": "both"}}}}
    assert grid.table_rows(released_config, "table2") == [("HSNet", "fm", "released"), ("HSNet", "fm", "trained")]
    assert len(grid.training_runs(released_config)) == 8 and len(grid.released_runs(released_config)) == 8
    assert argv.table_flags(released_config, "table2", "p.yaml")[-6:-4] == ["HSNet=fm@released", "HSNet=fm"]
    del released_config["released"]
    with pytest.raises(ValueError, match="tables.table2.rows.HSNet read released checkpoints.*no `released:`"):
        checks.check_grid(released_config)


def test_table_marks_released_rows_and_their_provenance(tmp_path):
    from tests.report.test_tables import per_episode

    results = tmp_path / "results"
    for origin, value in (("released", 86.0), ("trained", 84.0)):
        for shot in (1, 5):
            path = Path(paths.evaluation_path(str(results), grid.Evaluation(grid.Run("fss", "resnet50", "hm", "all", origin),
                                                                            shot, "fss")))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({**per_episode(value + shot, 90.0), "checkpoint_origin": origin,
                                        "checkpoint_sha256": ("ab" if origin == "released" else "cd") * 32}))
    evaluations = sorted(str(p) for p in results.rglob("eval_*.json"))
    assert main(["tables", "--table", "table3", "--evaluations", *evaluations, "--benchmark", "fss", "--backbones",
                 "resnet50", "--rows", "HMFS=hm@released", "HMFS=hm", "--published",
                 str(REPO / "hmfs" / "paper" / "published_results.yaml"), "--out-prefix", str(tmp_path / "t3")]) == 0
    lines = (tmp_path / "t3.csv").read_text().splitlines()
    rows = {tuple(line.split(",")[1:3]): line.split(",")[3:] for line in lines[1:]}
    assert rows[("HMFS", "released")][:2] == ["87.0000", "91.0000"] and rows[("HMFS", "reproduced")][:2] == ["85.0000", "89.0000"]
    assert float(rows[("HMFS", "released_difference")][0]) == pytest.approx(87.0 - 87.1)
    assert rows[("HMFS", "released")][-1] == "all: released sha256 abababababab"
    assert rows[("HMFS", "released")][2:4] == ["87.0000", "87.0000"]  # its 1-shot interval (identical episodes)
    md = (tmp_path / "t3.md").read_text()
    assert "HMFS (released weights)" in md and "HMFS (released weights − paper)" in md and "HMFS (reproduced)" in md
    assert "checkpoints: all: released sha256 abababababab" in md
    assert 'class="released"' in (tmp_path / "t3.html").read_text()
