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
    if config["folds"] != sorted(config["folds"]):
        raise ValueError(f"folds must be in increasing order, got {config['folds']}")
