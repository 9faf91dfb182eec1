"""The result files a rule hands its command: a table's evaluations, the claims' evaluations and histories, a figure's runs.

These lists are the only place the workflow decides which files a table, the claims or a figure read:
the rule lists them as inputs and passes them on its command line (`--evaluations {input.evaluations}`),
and the command reads exactly those (hmfs.report.inputs), never the grid again.
"""

from __future__ import annotations

from typing import Any

from hmfs.pipeline.grid import EPISODE_FIGURES, Evaluation, evaluations, figure_runs, table_evaluations, table_rows, table_runs
from hmfs.pipeline.paths import TRAINING_FILES, evaluation_path, predictions_path, run_dir, weights_path


def table_inputs(config: dict[str, Any], table: str) -> list[str]:
    """The evaluation files of one table: every run's (each training seed's) 1- and 5-shot evaluation."""
    return [evaluation_path(config["output_dir"], e) for e in table_evaluations(config, table)]


def claims_evaluations(config: dict[str, Any]) -> list[str]:
    """The evaluation files the claims table reads: every table's, each once."""
    return sorted({evaluation_path(config["output_dir"], e) for e in evaluations(config)})


def claims_histories(config: dict[str, Any], claims: list[dict[str, Any]]) -> list[str]:
    """The training histories of the trained runs whose convergence a claim compares (`claims`: the
    entries of hmfs/paper/claims.yaml)."""
    out, files = config["output_dir"], set()
    for claim in claims:
        if claim["kind"] == "convergence" and claim["table"] in config["tables"]:
            variants = {variant for name, variant, origin in table_rows(config, claim["table"])
                        if name in (claim["a"], claim["b"]) and origin == "trained"}
            files |= {f"{run_dir(out, run)}/{TRAINING_FILES['history']}" for run in table_runs(config, claim["table"])
                      if run.origin == "trained" and run.variant in variants}
    return sorted(files)


def figure_inputs(config: dict[str, Any], figure: str) -> list[str]:
    out, runs = config["output_dir"], figure_runs(config, figure)
    if figure == "convergence":
        return [f"{run_dir(out, run)}/{TRAINING_FILES['history']}" for run in runs]
    if figure in EPISODE_FIGURES:
        return [predictions_path(out, Evaluation(run, 1, run.benchmark)) for run in runs]
    if figure == "feature_maps":
        return [weights_path(config, config["backbones"][0])]
    return [evaluation_path(out, Evaluation(run, shot, run.benchmark))
            for run in runs for shot in config["evaluate"]["shots"]]
