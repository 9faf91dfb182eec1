"""Every file the workflow reads or writes, below the config's folders: one function per kind of file."""

from __future__ import annotations

from typing import Any

from hmfs.pipeline.grid import Evaluation, Run
from hmfs.pipeline.released import released_checkpoint_path

# What a training writes into its run folder (hmfs.training.loop), by the training rule's output names.
TRAINING_FILES = {"best": "best.pt", "last": "last.pt", "history": "history.jsonl", "summary": "train_summary.json"}


def checkpoint_path(config: dict[str, Any], run: Run) -> str:
    """The checkpoint a run's evaluations read: best.pt of a training, or the released file."""
    if run.origin == "released":
        return released_checkpoint_path(config["released"]["dir"], run)
    return f"{run_dir(config['output_dir'], run)}/{TRAINING_FILES['best']}"


def run_dir(out: str, run: Run) -> str:
    return f"{out}/{run.key}"


def evaluation_path(out: str, evaluation: Evaluation) -> str:
    return f"{run_dir(out, evaluation.run)}/{evaluation.name}.json"


def predictions_path(out: str, evaluation: Evaluation) -> str:
    return f"{run_dir(out, evaluation.run)}/{evaluation.name}_predictions.npz"


def state_dir(out: str, run: Run) -> str:
    """The resumable training state: outside the declared outputs, which Snakemake deletes when a job fails."""
    return f"{out}/.state/{run.key}"


def table_paths(out: str, table: str) -> dict[str, str]:
    return {ext: f"{out}/tables/{table}.{ext}" for ext in ("csv", "md", "tex", "html")}


def weights_path(config: dict[str, Any], backbone: str) -> str:
    """The frozen backbone's weights file: torchvision's ImageNet file, or one pretrained by the workflow."""
    weights = config["backbone_weights"]
    suffix = "imagenet.pth" if weights["source"] == "torchvision" else "synthetic.pt"
    return f"{weights['dir']}/{backbone}_{suffix}"


def prepared_marker(config: dict[str, Any], benchmark: str) -> str:
    """Written last by `prepare --summary`: a benchmark's data is in HSNet's layout."""
    return f"{config['data']['root']}/{benchmark}.prepared.json"


def verified_marker(config: dict[str, Any], benchmark: str) -> str:
    """Written by `verify-data --summary` when every image and mask decodes and fits: the data is
    ready (what trainings, evaluations and figures wait for)."""
    return f"{config['data']['root']}/{benchmark}.verified.json"


def splits_dir(config: dict[str, Any]) -> str | None:
    """The split lists: the ones prepare wrote, or None for HSNet's (shipped with hmfs)."""
    return f"{config['data']['root']}/splits" if config["data"]["splits"] == "prepared" else None


def synthetic_summary(config: dict[str, Any], benchmark: str) -> str:
    """Written last by `generate`: the raw synthetic benchmark is complete."""
    return f"{config['data']['raw_dir']}/{benchmark}_summary.json"


def claims_paths(out: str) -> dict[str, str]:
    """The claims table (next to Tables 1-5); its .json holds every number, for the forest plot."""
    return {ext: f"{out}/tables/claims.{ext}" for ext in ("csv", "md", "tex", "html", "json")}


def forest_path(out: str) -> str:
    """The report's summary figure: every claim's reproduced difference with its interval."""
    return f"{out}/figures/claims_forest.png"


FIGURE_FILES = {"convergence": "fig7_convergence.png", "qualitative": "fig5_qualitative.png",
                "small_targets": "fig4_small_targets.png", "feature_maps": "fig6_feature_maps.png",
                "runtime": "runtime.png"}


def figure_paths(config: dict[str, Any]) -> dict[str, str]:
    """The PNG of every figure the config asks for (each figure is optional)."""
    out = config["output_dir"]
    return {figure: f"{out}/figures/{name}" for figure, name in FIGURE_FILES.items() if figure in config["figures"]}
