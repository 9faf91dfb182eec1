"""Checks of a config that the schema cannot express, run before any job; each error names the key and the fix."""

from __future__ import annotations

from typing import Any

from hmfs.pipeline.grid import figure_runs, released_runs, training_runs
from hmfs.pipeline.released import missing_released

def check_released_files(config: dict[str, Any]) -> None:
    """Every released checkpoint the tables need is in place; else one error listing all missing files."""
    runs = released_runs(config)
    if not runs:
        return
    missing = missing_released(config["released"]["dir"], runs)
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of {len(runs)} released checkpoints are missing (layout: <released.dir>/<benchmark>/"
            "<backbone>/<variant>/<fold>/best_model.pt; docs/released-weights.md):\n"
            + "\n".join(missing)
            + "\nDownload them from the folders named, put each file at its path, and check the folder with "
            f"`python -m hmfs check-released --dir {config['released']['dir']}`; or set those rows' source to trained.")


# Keys a config of an older hmfs may still carry, and what replaced them.
RENAMED_KEYS = {("train", "bf16"): "train.precision: bf16 (or fp32 / fp16)",
                ("evaluate", "bf16"): "evaluate.precision: bf16 (or fp32 / fp16)"}


def check_renamed_keys(config: dict[str, Any]) -> None:
    """A key that was renamed: name the new key (run before the schema, whose message would only say "unexpected")."""
    old = [f"{section}.{key}: write {new}" for (section, key), new in RENAMED_KEYS.items()
           if isinstance(config.get(section), dict) and key in config[section]]
    if old:
        raise ValueError("the config uses keys that were renamed: " + "; ".join(old))


def check_training_settings(config: dict[str, Any]) -> None:
    """Each benchmark's stopping rule and its global batch against its GPUs."""
    gpu = config["resources"]["train"]["gpu"]
    for benchmark in ("pascal", "coco", "fss"):
        schedule = config["train"][benchmark]
        ranks = max(1, int(gpu[benchmark] if isinstance(gpu, dict) else gpu))
        if schedule.get("min_epochs", 0) > schedule["epochs"] and schedule.get("patience") is not None:
            raise ValueError(f"train.{benchmark}.min_epochs ({schedule['min_epochs']}) exceeds train.{benchmark}.epochs "
                             f"({schedule['epochs']}): the patience rule could never stop a run; lower min_epochs")
        if schedule["batch_size"] < ranks:
            raise ValueError(f"train.{benchmark}.batch_size ({schedule['batch_size']}) is smaller than the {ranks} GPUs "
                             f"of resources.train.gpu: each GPU needs at least one episode of the global batch; "
                             f"lower the GPUs or raise the batch")


def check_grid(config: dict[str, Any]) -> None:
    """Checks the schema cannot express; each error names the key and the fix."""
    for table, spec in config["tables"].items():
        if "test_benchmark" in spec and (spec["benchmark"], spec["test_benchmark"]) != ("coco", "pascal"):
            raise ValueError(f"tables.{table}: test_benchmark {spec['test_benchmark']!r} after training on "
                             f"{spec['benchmark']!r} is not defined; only coco -> pascal (Table 4) is")
    for figure, spec in config["figures"].items():
        if spec["benchmark"] == "fss" and spec.get("fold", 0) != 0:
            raise ValueError(f"figures.{figure}.fold must be 0 for fss (FSS-1000 has no folds)")
        trained = set(training_runs(config))
        missing = [run.key for run in figure_runs(config, figure) if run not in trained]
        if missing:
            raise ValueError(f"figures.{figure} draws from runs no table trains ({', '.join(missing[:3])}); "
                             f"add them to a table's rows (with training seed 0, which the figures read) or "
                             f"change figures.{figure}.variants")
    if config["data"]["source"] == "synthetic" and "synthetic" not in config["data"]:
        raise ValueError("data.synthetic is required when data.source is 'synthetic'")
    if config["backbone_weights"]["source"] == "pretrain" and "pretrain" not in config["backbone_weights"]:
        raise ValueError("backbone_weights.pretrain is required when backbone_weights.source is 'pretrain'")
    if config["backbone_weights"]["source"] == "pretrain" and config["data"]["source"] != "synthetic":
        raise ValueError("backbone_weights.source 'pretrain' needs data.source 'synthetic' (its classes are chosen "
                         "against the generated benchmarks); for real data use 'torchvision'")
    qualitative = config["figures"].get("qualitative")
    if qualitative and qualitative["episodes"] > config["evaluate"]["predictions"]:
        raise ValueError(f"figures.qualitative.episodes ({qualitative['episodes']}) exceeds "
                         f"evaluate.predictions ({config['evaluate']['predictions']}), the episodes each evaluation keeps")
    small = config["figures"].get("small_targets")
    kept_smallest = config["evaluate"].get("predictions_smallest", 0)
    if small and small["episodes"] > kept_smallest:
        raise ValueError(f"figures.small_targets.episodes ({small['episodes']}) exceeds evaluate.predictions_smallest "
                         f"({kept_smallest}), the smallest-target episodes each evaluation keeps")
    maps = config["figures"].get("feature_maps")
    if maps:
        length = config["evaluate"]["episodes"][maps["benchmark"]]  # None: the split's natural length
        if length is not None and maps["episode"] >= length:
            raise ValueError(f"figures.feature_maps.episode ({maps['episode']}) is not a test episode: "
                             f"evaluate.episodes.{maps['benchmark']} is {length}")
    if released_runs(config) and "released" not in config:
        rows = [f"tables.{t}.rows.{name}" for t, spec in config["tables"].items()
                for name, row in spec["rows"].items() if row.get("source", "trained") != "trained"]
        raise ValueError(f"{', '.join(rows[:3])} read released checkpoints, but the config has no `released:` section "
                         "(released: {dir: resources/released, backbone_weights: checkpoint})")
    check_training_settings(config)
    if config["folds"] != sorted(config["folds"]):
        raise ValueError(f"folds must be in increasing order, got {config['folds']}")
