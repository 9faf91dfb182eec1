"""The files a rule reads when they are more than one path: the claims' results, a figure's runs."""

from __future__ import annotations

from typing import Any

from hmfs.pipeline.grid import EPISODE_FIGURES, Evaluation, evaluations, figure_runs, table_rows, table_runs
from hmfs.pipeline.paths import evaluation_path, predictions_path, run_dir, weights_path

def claims_inputs(config: dict[str, Any], claims: list[dict[str, Any]]) -> list[str]:
    """The files the claims table reads: every table's evaluations, and the training histories of the
    trained runs whose convergence a claim compares (`claims`: the entries of hmfs/paper/claims.yaml)."""
    out = config["output_dir"]
    files = {evaluation_path(out, e) for e in evaluations(config)}
    for claim in claims:
        if claim["kind"] == "convergence" and claim["table"] in config["tables"]:
            variants = {variant for name, variant, origin in table_rows(config, claim["table"])
                        if name in (claim["a"], claim["b"]) and origin == "trained"}
            files |= {f"{run_dir(out, run)}/history.jsonl" for run in table_runs(config, claim["table"])
                      if run.origin == "trained" and run.variant in variants}
    return sorted(files)


def figure_inputs(config: dict[str, Any], figure: str) -> list[str]:
    out, runs = config["output_dir"], figure_runs(config, figure)
    if figure == "convergence":
        return [f"{run_dir(out, run)}/history.jsonl" for run in runs]
    if figure in EPISODE_FIGURES:
        return [predictions_path(out, Evaluation(run, 1, run.benchmark)) for run in runs]
    if figure == "feature_maps":
        return [weights_path(config, config["backbones"][0])]
    return [evaluation_path(out, Evaluation(run, shot, run.benchmark))
            for run in runs for shot in config["evaluate"]["shots"]]
