"""Each kind of claim checked on the files handed in: paired mIoU differences, small-target gains, convergence, runtime."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from hmfs.names import NO_FOLD, ORIGINS, fold_index
from hmfs.pipeline.grid import Evaluation, Run, run_folds
from hmfs.report import size_bins, stats
from hmfs.report.claim_rules import NULL, UNITS, expected, verdict
from hmfs.report.claims_format import Result
from hmfs.report.inputs import ResultFiles, history_name, relative_name
from hmfs.report.table_runs import GridTable
from hmfs.report.table_specs import table_spec
from hmfs.report.uncertainty import Cell, Scorer, Settings, over_folds, over_seeds, paired_cells


class Checker:
    """Evaluates the claims on the files handed in: the grid's tables, its folds and shots, and the bootstrap."""

    def __init__(self, files: ResultFiles, tables: dict[str, GridTable], folds: list[int], shots: list[int],
                 published: dict[str, Any], settings: Settings):
        self.files, self.tables, self.folds, self.shots = files, tables, folds, shots
        self.published, self.scorer = published, Scorer(settings)

    def runs(self, table: GridTable, name: str, origin: str, backbone: str, fold: str) -> list[Run]:
        return table.runs(backbone, table.variant(name, origin), origin, fold)

    def paths(self, table: GridTable, name: str, origin: str, backbone: str, fold: str, shot: int) -> list[Path]:
        """The evaluation files of row `name`'s runs in one fold; not evaluable when one was not handed in."""
        evaluations = [Evaluation(run, shot, table.test_benchmark) for run in self.runs(table, name, origin, backbone, fold)]
        found = self.files.find(evaluations)
        if found is None:
            raise _NotEvaluable("missing " + ", ".join(relative_name(e) for e in evaluations
                                                         if e not in self.files.evaluations))
        return found

    def check(self, claim: dict[str, Any], backbone: str, shot: int | None, origin: str) -> Result:
        table = self.tables[claim["table"]]
        expect = expected(claim, backbone, shot)
        result = Result(claim["id"], claim["statement"], claim["kind"], claim["table"], claim["a"], claim["b"], backbone,
                        shot, origin, expect, claim.get("measure", ""), UNITS[claim["kind"]],
                        self.paper_value(claim, backbone, shot), claim.get("margin") if expect == "equal" else None)
        folds = run_folds(table.benchmark, self.folds)
        compute = {"paired_difference": self._paired, "small_targets": self._small_targets,
                   "convergence": self._convergence, "runtime": self._runtime}[claim["kind"]]
        try:
            compute(result, claim, table, folds)
        except _NotEvaluable as reason:
            result.detail["not_evaluated"] = str(reason)
            return result
        result.paper_inside = None if result.paper is None else bool(result.low <= result.paper <= result.high)
        if claim["kind"] in ("convergence", "runtime") and result.runs < 2:
            result.verdict = "inconclusive"  # a range over one run is no interval
        else:
            result.verdict = verdict(result.low, result.high, expect, NULL[claim["kind"]], result.margin)
        return result

    def paper_value(self, claim: dict[str, Any], backbone: str, shot: int | None) -> float | None:
        """The paper's value: its table's b minus a (mean over the configured folds), or its `claims:` entry."""
        if claim["kind"] in ("convergence", "runtime"):
            value = self.published.get("claims", {}).get(claim["paper_key"])
            return None if value is None else float(value) * (100 if claim["kind"] == "runtime" else 1)
        if claim["kind"] != "paired_difference":
            return None
        rows = self.published.get(claim["table"], {}).get(backbone, {})
        if claim["a"] not in rows or claim["b"] not in rows:
            return None
        spec = table_spec(claim["table"])
        means = [spec.paper_mean(spec.printed(rows[name], shot), self.folds) for name in (claim["a"], claim["b"])]
        return None if None in means else means[1] - means[0]

    def _bootstraps(self, table, name, origin, backbone, fold, shot):
        return [self.scorer.bootstrap(p, fold_index(fold)) for p in self.paths(table, name, origin, backbone, fold, shot)]

    def _pairs(self, result: Result, claim, table: GridTable, fold: str) -> list[tuple[Path, Path]]:
        """(a, b) evaluation files of one fold, seed by seed; not evaluable when one of either was not handed in."""
        missing, found = [], []
        for name in (claim["a"], claim["b"]):
            try:
                found.append(self.paths(table, name, result.evidence, result.backbone, fold, result.shot))
            except _NotEvaluable as reason:
                missing.append(str(reason)[len("missing "):])
        if missing:
            raise _NotEvaluable("missing " + ", ".join(missing))
        return list(zip(*found))

    def _paired(self, result: Result, claim, table: GridTable, folds: list[str]) -> None:
        a = [self._bootstraps(table, claim["a"], result.evidence, result.backbone, f, result.shot) for f in folds]
        b = [self._bootstraps(table, claim["b"], result.evidence, result.backbone, f, result.shot) for f in folds]
        cells = paired_cells(a, b, True, False, self.scorer.settings.confidence)
        self._fill(result, cells[-1], "bootstrap over test episodes, paired")
        result.runs = len(folds) * len(a[0])
        result.detail["folds"] = {fold: asdict(cell) for fold, cell in zip(folds, cells[:-1])} if folds != [NO_FOLD] else {}

    def _small_targets(self, result: Result, claim, table: GridTable, folds: list[str]) -> None:
        settings = self.scorer.settings
        per_bin: list[list[Any]] = [[], [], [], []]  # bins 0-2 and smallest - largest, one Scores per fold
        detail = []
        for fold in folds:
            pairs = self._pairs(result, claim, table, fold)
            records = [(self.scorer.records(pa), self.scorer.records(pb)) for pa, pb in pairs]
            first = records[0][0]
            edges = size_bins.tercile_edges(first.query_fg_fraction)  # fixed from a (FM) before b is looked at
            try:
                per_seed = [size_bins.paired_bin_difference(ra, rb, edges, settings.resamples,
                                                            settings.seed + fold_index(fold), settings.confidence)
                            for ra, rb in records]
            except ValueError as error:  # a bin without episodes: too few test episodes
                if "holds no episode" not in str(error):
                    raise
                raise _NotEvaluable(str(error)) from error
            for k in range(3):
                per_bin[k].append(over_seeds([_as_bootstrap(bins[k].difference, first, settings) for bins in per_seed]))
            contrast = [stats.Estimate(bins[0].difference.point - bins[2].difference.point, 0, 0, 0,
                                       bins[0].difference.resamples - bins[2].difference.resamples) for bins in per_seed]
            per_bin[3].append(over_seeds([_as_bootstrap(e, first, settings) for e in contrast]))
            detail.append({"fold": fold, "edges": [float(e) for e in edges],
                           "episodes": [b.episodes for b in per_seed[0]],
                           "iou_a": [b.iou_a for b in per_seed[0]], "iou_b": [b.iou_b for b in per_seed[0]]})
        cells = [over_folds(scores)["miou"].cell(settings.confidence) for scores in per_bin]
        self._fill(result, cells[0 if result.measure == "smallest_third" else 3], "bootstrap over test episodes, paired")
        result.runs = len(folds) * len(pairs)
        result.detail.update(bins=[asdict(c) for c in cells[:3]], folds=detail)

    def _convergence(self, result: Result, claim, table: GridTable, folds: list[str]) -> None:
        if result.evidence != "trained":
            raise _NotEvaluable("released checkpoints keep no training history")
        ratios, detail = [], []
        for fold in folds:
            for run_a, run_b in zip(self.runs(table, claim["a"], "trained", result.backbone, fold),
                                    self.runs(table, claim["b"], "trained", result.backbone, fold)):
                epochs = [epochs_to_fraction(self._history(run), claim["fraction"]) for run in (run_a, run_b)]
                detail.append({"run": run_b.key, "epochs_a": epochs[0], "epochs_b": epochs[1]})
                if None not in epochs:
                    ratios.append(epochs[0] / epochs[1])
        if not ratios:
            raise _NotEvaluable("no run left the start (best validation mIoU 0)")
        point = float(np.exp(np.mean(np.log(ratios))))
        self._fill(result, Cell(point, min(ratios), max(ratios)), f"range over {len(ratios)} fold x seed runs; "
                   "point: geometric mean")
        result.runs, result.detail["runs"] = len(ratios), detail

    def _runtime(self, result: Result, claim, table: GridTable, folds: list[str]) -> None:
        overheads = []
        for fold in folds:
            for pa, pb in self._pairs(result, claim, table, fold):
                ms = [json.loads(p.read_text())["timings"]["ms_per_episode"] for p in (pa, pb)]
                overheads.append(100 * (ms[1] / ms[0] - 1))
        self._fill(result, Cell(float(np.median(overheads)), min(overheads), max(overheads)),
                   f"range over {len(overheads)} fold x seed evaluations; point: median")
        result.runs = len(overheads)

    def _history(self, run: Run) -> list[dict]:
        path = self.files.history(run)
        if path is None:
            raise _NotEvaluable(f"missing {history_name(run)}")
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    @staticmethod
    def _fill(result: Result, cell: Cell, interval: str) -> None:
        result.point, result.low, result.high, result.interval = cell.point, cell.low, cell.high, interval
        if cell.spread is not None:
            result.detail["seed_sd"] = cell.spread


class _NotEvaluable(Exception):
    """One claim cannot be evaluated (a file was not handed in, a size bin is empty): it is listed as not evaluated."""


def _as_bootstrap(estimate: stats.Estimate, records: stats.EpisodeRecords, settings: Settings) -> stats.Bootstrap:
    """A per-seed estimate in the form `stats.combine_seeds` takes (its resamples share the episode draws)."""
    return stats.Bootstrap(estimate, estimate, settings.seed, settings.confidence, records.label, records.episode,
                           records.class_id)


def epochs_to_fraction(history: list[dict], fraction: float) -> int | None:
    """The first epoch (1-based) whose validation mIoU reaches `fraction` of the run's best; None if the
    best is 0 (the run never left "everything is background")."""
    curve = [float(h["val_miou"]) for h in history]
    if not curve or max(curve) <= 0:
        return None
    target = fraction * max(curve)
    return next(i + 1 for i, value in enumerate(curve) if value >= target)


def check_claims(claims: list[dict[str, Any]], checker: Checker, backbones: list[str]) -> tuple[list[Result], list[str]]:
    """Every claim for every backbone, shot and evidence the grid has; and the claims it cannot check."""
    results, skipped = [], []
    for claim in claims:
        table = checker.tables.get(claim["table"])
        origins = [] if table is None else [o for o in ORIGINS if table.variant(claim["a"], o) and table.variant(claim["b"], o)]
        if claim["kind"] == "convergence":
            origins = [o for o in origins if o == "trained"]
        if not origins:
            skipped.append(f"{claim['id']}: this config has no {claim['table']} with rows {claim['a']} and {claim['b']}"
                           + (" trained here" if claim["kind"] == "convergence" else ""))
            continue
        shots = [None] if claim["kind"] == "convergence" else checker.shots
        results += [checker.check(claim, backbone, shot, origin)
                    for origin in origins for backbone in backbones for shot in shots]
    return results, skipped
