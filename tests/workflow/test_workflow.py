"""The Snakemake workflow as a workflow: dry runs of both configs, lint, schema errors, and a real run of a
reduced synthetic grid (tables, figures, report), which a second run leaves alone."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hmfs.pipeline import grid, paths

REPO = Path(__file__).resolve().parents[2]
WORKFLOW_FILES = ("Snakefile", "config.yaml", "config.released.yaml", "workflow", "hmfs", "report", "envs", "profiles")


def snakemake(cwd: Path, *args: str, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    """`snakemake ARGS` in `cwd`, with this interpreter's environment first on PATH (rules call `python`)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-4000:]}")
    return result


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a snakemake run or dry run."""
    table = output[output.index("Job stats:"):]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m.group(1) != "total"}


@pytest.fixture
def workdir(tmp_path) -> Path:
    """A copy of the workflow (so tests can touch its files) without any results."""
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, tmp_path / name)
    return tmp_path


def test_dry_run_lists_the_papers_full_grid(workdir):
    counts = job_counts(snakemake(workdir, "-n", "--configfile", "config.yaml").stdout)
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    assert counts["train_model"] == len(grid.training_runs(config)) == 52
    assert counts["evaluate_model"] == 104 and counts["evaluate_cross_domain"] == 32
    assert counts["make_table"] == 5 and counts["report_html"] == 1
    assert counts["make_claims"] == counts["plot_claims"] == 1  # the claims table and its forest plot
    # On an empty resources/: the six archives (VOC, SBD, COCO x3, FSS-1000) and both weights files are
    # downloaded, the archives unpacked; each benchmark is prepared and decoded once.
    assert counts["download_asset"] == 8 and counts["unpack_asset"] == 6 and counts["install_backbone_weights"] == 2
    assert counts["prepare_data"] == counts["verify_data"] == 3
    assert counts["plot_convergence"] == counts["plot_qualitative"] == counts["plot_runtime"] == 1
    assert counts["plot_small_targets"] == counts["plot_feature_maps"] == 1


def test_dry_run_of_the_synthetic_config(workdir):
    counts = job_counts(snakemake(workdir, "-n", "--configfile", "workflow/config.synthetic.yaml").stdout)
    config = yaml.safe_load((REPO / "workflow" / "config.synthetic.yaml").read_text())
    summary = grid.summarize(config)
    assert counts["train_model"] == summary["trainings"]
    assert counts["evaluate_model"] + counts["evaluate_cross_domain"] == summary["evaluations"]
    assert counts["generate_synthetic"] == 3 and counts["pretrain_backbone"] == len(config["backbones"])
    assert counts["make_claims"] == counts["plot_claims"] == 1


def test_dry_run_plans_a_tables_own_training_seeds(workdir):
    # Table 5 with two training seeds: its COCO fm/im/hm runs once more (seed 1), evaluated 1- and 5-shot;
    # seed 0 stays shared with Tables 2 and 4.
    config = yaml.safe_load((REPO / "workflow" / "config.synthetic.yaml").read_text())
    config["tables"]["table5"]["seeds"] = [0, 1]
    (workdir / "seeds.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    result = snakemake(workdir, "-n", "-p", "--configfile", "seeds.yaml")
    counts = job_counts(result.stdout)
    assert counts["train_model"] == 8 + 3 and counts["evaluate_model"] == 16 + 3 * 2
    assert "results/synthetic/coco/resnet18/im/fold0/seed1/best.pt" in result.stdout
    assert "--seeds 0 1" in result.stdout and counts["make_claims"] == 1


@pytest.mark.parametrize("configfile", ["config.yaml", "workflow/config.synthetic.yaml"])
def test_lint_is_clean(workdir, configfile):
    result = snakemake(workdir, "--lint", "--configfile", configfile, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


def test_configfile_replaces_config_yaml(workdir):
    # A table left out of another config must disappear from the grid, not come back from config.yaml.
    config = yaml.safe_load((REPO / "workflow" / "config.synthetic.yaml").read_text())
    del config["tables"]["table5"]
    del config["tables"]["table1"]["rows"]["HSNet*"]
    for figure in ("qualitative", "runtime"):  # IM runs exist for Table 5 only
        config["figures"][figure]["variants"] = {"FM": "fm", "HM": "hm"}
    (workdir / "fewer.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    counts = job_counts(snakemake(workdir, "-n", "--configfile", "fewer.yaml").stdout)
    assert counts["train_model"] == 8 - 1 - 1  # one fold: no COCO im (Table 5 only), no PASCAL fm_aug
    assert counts["make_table"] == 4


def test_a_config_without_figures_plans_no_plots_and_warns_of_nothing(workdir):
    config = yaml.safe_load((REPO / "workflow" / "config.synthetic.yaml").read_text())
    config["figures"] = {}
    (workdir / "nofigures.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    result = snakemake(workdir, "-n", "--configfile", "nofigures.yaml")
    assert not [name for name in job_counts(result.stdout) if name.startswith("plot_") and name != "plot_claims"]
    assert "localrules" not in result.stdout + result.stderr  # no warning about rules a config leaves out


@pytest.mark.parametrize("change, named", [
    (lambda c: c.update(backbone=["resnet50"]), "'backbone' was unexpected"),
    (lambda c: c.update(backbones=["resnet51"]), "resnet51"),
    (lambda c: c.update(folds="0"), "folds"),
    (lambda c: c["tables"]["table1"]["rows"]["HSNet"].update(masking="xm"), "xm"),
    (lambda c: c["train"]["pascal"].update(lr="fast"), "lr"),
    (lambda c: c["evaluate"].update(shots=[0]), "shots"),
])
def test_schema_rejects_bad_configs_naming_the_key(change, named):
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    validate(copy.deepcopy(config), str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    change(config)
    with pytest.raises(WorkflowError, match=re.escape(named)):
        validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))


def test_bad_config_stops_snakemake_before_any_job(workdir):
    (workdir / "bad.yaml").write_text("backbones: [resnet50, vgg16]\n")
    result = snakemake(workdir, "-n", "--configfile", "bad.yaml", check=False)
    assert result.returncode != 0
    assert "vgg16" in result.stdout + result.stderr and "backbones" in result.stdout + result.stderr


def tiny_config(workdir: Path) -> Path:
    """The synthetic config cut to fold 0, tiny images and a few episodes."""
    config = yaml.safe_load((REPO / "workflow" / "config.synthetic.yaml").read_text())
    config["output_dir"] = "out"
    config["data"].update(raw_dir="out/raw", root="out/data")
    config["data"]["synthetic"].update(image_size=64, pascal_train=4, pascal_val=6, coco_train=100, coco_val=100,
                                       fss_classes=10)
    config["backbone_weights"].update(dir="out/weights")
    config["backbone_weights"]["pretrain"].update(num_classes=4, images_per_class=4, val_images_per_class=2,
                                                  image_size=32, epochs=1, batch_size=8)
    config["folds"] = [0]
    config["train"]["img_size"] = 64
    for benchmark in ("pascal", "coco", "fss"):
        config["train"][benchmark] = {"batch_size": 4, "lr": 0.002, "epochs": 2, "train_episodes": 8, "val_episodes": 4}
    config["evaluate"].update(episodes={"pascal": 4, "coco": 4, "fss": 6}, batch_size=4, predictions=2,
                              predictions_smallest=2)
    config["figures"]["qualitative"]["episodes"] = 2
    config["figures"]["small_targets"]["episodes"] = 2
    path = workdir / "tiny.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_released_config_lists_missing_files_then_plans_evaluations_only(workdir):
    empty = snakemake(workdir, "-n", "--configfile", "config.released.yaml", check=False)
    assert empty.returncode != 0
    out = empty.stdout + empty.stderr
    assert "36 of 36 released checkpoints are missing" in out
    assert "resources/released/coco/resnet101/hm/fold3/best_model.pt  <- the HM authors'" in out
    config = yaml.safe_load((REPO / "config.released.yaml").read_text())
    for run in grid.released_runs(config):
        path = workdir / paths.checkpoint_path(config, run)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()  # a dry run only needs the files to exist
    counts = job_counts(snakemake(workdir, "-n", "--configfile", "config.released.yaml").stdout)
    assert counts == {"download_asset": 6, "unpack_asset": 6, "prepare_data": 3, "verify_data": 3,
                      "evaluate_model": 72, "evaluate_cross_domain": 32, "make_table": 4,
                      "make_claims": 1, "plot_claims": 1, "report_html": 1, "all": 1}, counts


@pytest.mark.slow
def test_released_checkpoints_evaluate_through_the_workflow(workdir):
    from tests.pipeline.test_released import save_official

    config = yaml.safe_load(tiny_config(workdir).read_text())
    config["released"] = {"dir": "out/released_files", "backbone_weights": "checkpoint"}
    config["tables"] = {name: config["tables"][name] for name in ("table2", "table4")}
    for spec in config["tables"].values():
        spec["rows"] = {name: {**row, "source": "released"} for name, row in spec["rows"].items()}
    config["figures"] = {}
    (workdir / "released.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    for seed, run in enumerate(grid.released_runs(config)):
        save_official(workdir / paths.checkpoint_path(config, run), run.backbone, run.masking, seed=seed)
    run = snakemake(workdir, "--configfile", "released.yaml", "--cores", "2")
    counts = job_counts(run.stdout + run.stderr)
    assert "train_model" not in counts and "pretrain_backbone" not in counts, counts
    assert counts["evaluate_model"] == 4 and counts["evaluate_cross_domain"] == 4 and counts["make_table"] == 2, counts
    result = json.loads((workdir / "out" / "released" / "coco" / "resnet18" / "hm" / "fold0" / "eval_on_pascal_5shot.json")
                        .read_text())
    assert result["checkpoint_origin"] == "released" and result["backbone_weights"] == "checkpoint"
    assert result["checkpoint_sha256"] == hashlib.sha256(
        (workdir / "out" / "released_files" / "coco" / "resnet18" / "hm" / "fold0" / "best_model.pt").read_bytes()).hexdigest()
    md = (workdir / "out" / "tables" / "table4.md").read_text()
    assert "HMFS (released weights)" in md and "Made from 4 of 4 evaluation files" in md
    assert "fold0: released sha256" in (workdir / "out" / "tables" / "table2.csv").read_text()
    assert (workdir / "report.html").stat().st_size > 10_000


def test_conda_env_pins_equal_requirements():
    def pins(lines):
        return dict(line.split("==", 1) for line in lines if "==" in line)

    required = pins(line.split("#")[0].strip() for line in (REPO / "requirements.txt").read_text().splitlines())
    env = yaml.safe_load((REPO / "envs" / "hmfs.yaml").read_text())
    pip = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    declared = pins(pip)
    assert declared  # the env pins something
    for name, version in declared.items():
        assert required.get(name) == version, f"envs/hmfs.yaml pins {name}=={version}, requirements.txt {required.get(name)}"
    missing = set(required) - set(declared) - {"pytest", "pytest-xdist", "execnet", "snakemake-executor-plugin-slurm"}  # test / submit-side only
    assert not missing, f"requirements.txt pins {sorted(missing)} that envs/hmfs.yaml lacks"
    python = next(item for item in env["dependencies"] if isinstance(item, str) and item.startswith("python="))
    assert python == "python=3.11"


def test_a_training_with_several_gpus_runs_one_process_per_gpu(workdir):
    config = yaml.safe_load((REPO / "workflow" / "config.synthetic.yaml").read_text())
    config["resources"]["train"]["gpu"] = {"pascal": 0, "coco": 2, "fss": 0}
    (workdir / "ranks.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    result = snakemake(workdir, "-n", "-p", "--cores", "4", "--configfile", "ranks.yaml")
    commands = [line.strip().removeprefix("Shell command: ") for line in result.stdout.splitlines()
                if " -m hmfs --threads " in line]
    coco = [c for c in commands if "--benchmark coco" in c and " train " in c]
    others = [c for c in commands if " train " in c and c not in coco]
    assert coco and all(c.startswith("torchrun --standalone --nproc-per-node=2 -m hmfs --threads 1 train") for c in coco)
    assert others and all(c.startswith("python -m hmfs --threads 1 train") for c in others)
    assert all("--patience" in c for c in coco + others)  # the synthetic config's stopping rule reaches the command


def test_a_renamed_key_names_its_new_name(workdir):
    config = yaml.safe_load((REPO / "workflow" / "config.synthetic.yaml").read_text())
    config["train"]["bf16"] = config["train"].pop("precision") == "bf16"
    (workdir / "old.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    result = snakemake(workdir, "-n", "--configfile", "old.yaml", check=False)
    assert result.returncode != 0 and "train.bf16: write train.precision: bf16" in result.stdout + result.stderr
