"""`python -m hmfs claims`: the paper's claims (hmfs/paper/claims.yaml) checked one by one, each with an interval and a verdict."""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from hmfs.report import stats
from hmfs.report.claims_format import NOT_EVALUATED, render
from hmfs.pipeline.grid import Evaluation, Run, run_folds
from hmfs.names import NO_FOLD, TABLES, fold_index
from hmfs.pipeline.paths import evaluation_path, run_dir
from hmfs.report.uncertainty import (Cell, Scorer, Settings, add_bootstrap_args, fold_bootstraps, over_folds, over_seeds,
                              paired_cells)

log = logging.getLogger(__name__)

KINDS = ("paired_difference", "small_targets", "convergence", "runtime")
DIRECTIONS = ("greater", "less", "equal")
MEASURES = ("smallest_third", "smallest_minus_largest")
UNITS = {"paired_difference": "mIoU points", "small_targets": "fg IoU points", "convergence": "x", "runtime": "%"}
NULL = {"paired_difference": 0.0, "small_targets": 0.0, "convergence": 1.0, "runtime": 0.0}  # "no difference"


@dataclass(frozen=True)
class TableSpec:
    """One table of the grid as the claims see it: benchmarks, training seeds, rows (name, variant, origin)."""

    name: str
    benchmark: str
    test_benchmark: str
    seeds: tuple[int, ...]
    rows: tuple[tuple[str, str, str], ...]

    def variant(self, name: str, origin: str) -> str | None:
        return next((v for n, v, o in self.rows if n == name and o == origin), None)


@dataclass
class Result:
    """One row of the claims table: a claim for one backbone, shot and evidence (trained / released)."""

    claim: str
    statement: str
    kind: str
    table: str
    a: str
    b: str
    backbone: str
    shot: int | None
    evidence: str  # trained | released
    expect: str
    measure: str  # small_targets: smallest_third | smallest_minus_largest; else empty
    unit: str
    paper: float | None
    margin: float | None = None  # a parity claim's margin (expect: equal)
    point: float | None = None
    low: float | None = None
    high: float | None = None
    interval: str = ""
    paper_inside: bool | None = None
    verdict: str = NOT_EVALUATED
    runs: int = 0
    detail: dict[str, Any] = field(default_factory=dict)


def verdict(low: float, high: float, expect: str, null: float = 0.0, margin: float | None = None) -> str:
    """supported / contradicted / inconclusive of an interval [low, high] of b against a (`hmfs.report.claims_format.RULE`)."""
    if expect not in DIRECTIONS:
        raise ValueError(f"expect must be one of {', '.join(DIRECTIONS)}, got {expect!r}")
    above, below = low > null, high < null
    if expect == "equal":
        if margin is None:
            raise ValueError("a claim of parity (expect: equal) needs a margin")
        if above or below:
            return "contradicted"
        return "supported" if null - margin <= low and high <= null + margin else "inconclusive"
    if not (above or below):
        return "inconclusive"
    return "supported" if above == (expect == "greater") else "contradicted"


def load_claims(path: Path) -> list[dict[str, Any]]:
    """The claims file's entries, checked: ids unique, kinds, tables, directions and per-kind keys known."""
    claims = yaml.safe_load(Path(path).read_text())["claims"]
    seen = set()
    for claim in claims:
        name = claim.get("id", "?")
        missing = [k for k in ("id", "kind", "table", "a", "b", "statement", "expect", "source") if k not in claim]
        if missing:
            raise ValueError(f"{path}: claim {name} lacks {', '.join(missing)}")
        if name in seen:
            raise ValueError(f"{path}: claim id {name} is given twice")
        seen.add(name)
        if claim["kind"] not in KINDS or claim["table"] not in TABLES:
            raise ValueError(f"{path}: claim {name}: kind must be one of {KINDS} and table one of {TABLES}")
        expects = claim["expect"] if isinstance(claim["expect"], dict) else {"*": {"*": claim["expect"]}}
        directions = {d for per_shot in expects.values() for d in per_shot.values()}
        if not directions <= set(DIRECTIONS) or ("equal" in directions and "margin" not in claim):
            raise ValueError(f"{path}: claim {name}: expect must be {DIRECTIONS} (equal needs a margin)")
        if claim["kind"] in ("convergence", "runtime") and "paper_key" not in claim:
            raise ValueError(f"{path}: claim {name}: a {claim['kind']} claim needs paper_key")
        if claim["kind"] == "convergence" and not 0 < claim.get("fraction", 0) <= 1:
            raise ValueError(f"{path}: claim {name}: fraction must be in (0, 1]")
        if claim["kind"] == "small_targets" and claim.get("measure") not in MEASURES:
            raise ValueError(f"{path}: claim {name}: measure must be one of {MEASURES}")
    return claims


def expected(claim: dict[str, Any], backbone: str, shot: int | None) -> str:
    """The direction the paper states for one backbone and shot."""
    if not isinstance(claim["expect"], dict):
        return claim["expect"]
    per_shot = claim["expect"].get(backbone, {})
    return per_shot.get(shot, per_shot.get(str(shot), "greater"))


class Checker:
    """Evaluates the claims on one results folder: its tables' specs, folds, shots and the bootstrap."""

    def __init__(self, results: Path, specs: dict[str, TableSpec], folds: list[int], shots: list[int],
                 published: dict[str, Any], settings: Settings):
        self.results, self.specs, self.folds, self.shots = results, specs, folds, shots
        self.published, self.scorer = published, Scorer(settings)

    def runs(self, spec: TableSpec, name: str, origin: str, backbone: str, fold: str) -> list[Run]:
        variant = spec.variant(name, origin)
        seeds = spec.seeds if origin == "trained" else (0,)
        return [Run(spec.benchmark, backbone, variant, fold, origin, seed) for seed in seeds]

    def paths(self, spec: TableSpec, name: str, origin: str, backbone: str, fold: str, shot: int) -> list[Path]:
        return [Path(evaluation_path(str(self.results), Evaluation(run, shot, spec.test_benchmark)))
                for run in self.runs(spec, name, origin, backbone, fold)]

    def check(self, claim: dict[str, Any], backbone: str, shot: int | None, origin: str) -> Result:
        spec = self.specs[claim["table"]]
        expect = expected(claim, backbone, shot)
        result = Result(claim["id"], claim["statement"], claim["kind"], claim["table"], claim["a"], claim["b"], backbone,
                        shot, origin, expect, claim.get("measure", ""), UNITS[claim["kind"]],
                        self.paper_value(claim, backbone, shot), claim.get("margin") if expect == "equal" else None)
        folds = run_folds(spec.benchmark, self.folds)
        compute = {"paired_difference": self._paired, "small_targets": self._small_targets,
                   "convergence": self._convergence, "runtime": self._runtime}[claim["kind"]]
        try:
            compute(result, claim, spec, folds)
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
        means = []
        for name in (claim["a"], claim["b"]):
            entry = rows[name]
            if claim["table"] == "table3":
                means.append(entry["values"][[1, 5].index(shot)] if shot in (1, 5) else None)
                continue
            printed = entry.get(f"{shot}shot") or [None] * 5
            folds = [printed[k] for k in self.folds]
            means.append(printed[4] if len(self.folds) == 4 else
                         None if None in folds else sum(folds) / len(folds))  # fewer folds: the mean of those
        return None if None in means else means[1] - means[0]

    def _bootstraps(self, spec, name, origin, backbone, fold, shot):
        paths = self.paths(spec, name, origin, backbone, fold, shot)
        boots = fold_bootstraps(self.scorer, paths, fold_index(fold))
        if boots is None:
            raise _NotEvaluable("missing " + ", ".join(str(p) for p in paths if not p.is_file()))
        return boots

    def _paired(self, result: Result, claim, spec: TableSpec, folds: list[str]) -> None:
        a = [self._bootstraps(spec, claim["a"], result.evidence, result.backbone, f, result.shot) for f in folds]
        b = [self._bootstraps(spec, claim["b"], result.evidence, result.backbone, f, result.shot) for f in folds]
        cells = paired_cells(a, b, True, False, self.scorer.settings.confidence)
        self._fill(result, cells[-1], "bootstrap over test episodes, paired")
        result.runs = len(folds) * len(a[0])
        result.detail["folds"] = {fold: asdict(cell) for fold, cell in zip(folds, cells[:-1])} if folds != [NO_FOLD] else {}

    def _small_targets(self, result: Result, claim, spec: TableSpec, folds: list[str]) -> None:
        settings = self.scorer.settings
        per_bin: list[list[Any]] = [[], [], [], []]  # bins 0-2 and smallest - largest, one Scores per fold
        detail = []
        for fold in folds:
            pairs = list(zip(self.paths(spec, claim["a"], result.evidence, result.backbone, fold, result.shot),
                             self.paths(spec, claim["b"], result.evidence, result.backbone, fold, result.shot)))
            if not all(pa.is_file() and pb.is_file() for pa, pb in pairs):
                raise _NotEvaluable("missing " + ", ".join(str(p) for pair in pairs for p in pair if not p.is_file()))
            records = [(self.scorer.records(pa), self.scorer.records(pb)) for pa, pb in pairs]
            first = records[0][0]
            edges = stats.tercile_edges(first.query_fg_fraction)  # fixed from a (FM) before b is looked at
            try:
                per_seed = [stats.paired_bin_difference(ra, rb, edges, settings.resamples, settings.seed + fold_index(fold),
                                                        settings.confidence) for ra, rb in records]
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

    def _convergence(self, result: Result, claim, spec: TableSpec, folds: list[str]) -> None:
        if result.evidence != "trained":
            raise _NotEvaluable("released checkpoints keep no training history")
        ratios, detail = [], []
        for fold in folds:
            for run_a, run_b in zip(self.runs(spec, claim["a"], "trained", result.backbone, fold),
                                    self.runs(spec, claim["b"], "trained", result.backbone, fold)):
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

    def _runtime(self, result: Result, claim, spec: TableSpec, folds: list[str]) -> None:
        overheads = []
        for fold in folds:
            for pa, pb in zip(self.paths(spec, claim["a"], result.evidence, result.backbone, fold, result.shot),
                              self.paths(spec, claim["b"], result.evidence, result.backbone, fold, result.shot)):
                if not (pa.is_file() and pb.is_file()):
                    raise _NotEvaluable("missing " + ", ".join(str(p) for p in (pa, pb) if not p.is_file()))
                ms = [json.loads(p.read_text())["timings"]["ms_per_episode"] for p in (pa, pb)]
                overheads.append(100 * (ms[1] / ms[0] - 1))
        self._fill(result, Cell(float(np.median(overheads)), min(overheads), max(overheads)),
                   f"range over {len(overheads)} fold x seed evaluations; point: median")
        result.runs = len(overheads)

    def _history(self, run: Run) -> list[dict]:
        path = Path(run_dir(str(self.results), run)) / "history.jsonl"
        if not path.is_file():
            raise _NotEvaluable(f"missing {path}")
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    @staticmethod
    def _fill(result: Result, cell: Cell, interval: str) -> None:
        result.point, result.low, result.high, result.interval = cell.point, cell.low, cell.high, interval
        if cell.spread is not None:
            result.detail["seed_sd"] = cell.spread


class _NotEvaluable(Exception):
    """One claim cannot be evaluated (an input is not there yet, a size bin is empty): it is listed as not evaluated."""


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
        spec = checker.specs.get(claim["table"])
        origins = [] if spec is None else [o for o in ("trained", "released")
                                             if spec.variant(claim["a"], o) and spec.variant(claim["b"], o)]
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


def parse_table_spec(values: list[str]) -> TableSpec:
    """`--table TABLE BENCHMARK TEST_BENCHMARK SEEDS ROW...` (SEEDS "0,1"; ROW as `tables --rows`)."""
    from hmfs.report.table_format import parse_rows

    if len(values) < 5 or values[0] not in TABLES:
        raise ValueError(f"--table {' '.join(values)} is not TABLE BENCHMARK TEST_BENCHMARK SEEDS ROW... "
                         "(e.g. --table table5 coco coco 0,1 FM=fm IM=im HM=hm)")
    seeds = tuple(int(s) for s in values[3].split(","))
    return TableSpec(values[0], values[1], values[2], seeds, tuple(parse_rows(values[4:])))


def make_claims(args: argparse.Namespace) -> dict[str, str]:
    """Check every claim and write the claims table's five files; returns their texts."""
    specs = {spec.name: spec for spec in map(parse_table_spec, args.table)}
    if not args.published.is_file():
        raise FileNotFoundError(f"published results not found: {args.published}")
    settings = Settings(args.resamples, args.bootstrap_seed, args.confidence)
    checker = Checker(args.results, specs, sorted(set(args.folds)), args.shots,
                      yaml.safe_load(args.published.read_text()), settings)
    results, skipped = check_claims(load_claims(args.claims), checker, args.backbones)
    level = f"{100 * settings.confidence:g}%"
    notes = [f"Paired differences and small-target gains: {level} class-stratified bootstrap over the test episodes "
             f"({settings.resamples:,} resamples; fold k with seed {settings.seed} + k; both maskings resampled with the "
             "same episodes), mean over folds resample by resample"
             + ("; over training seeds a two-stage bootstrap (episodes, then seeds)." if
                any(len(s.seeds) > 1 for s in specs.values()) else "."),
             "Small targets: per-episode foreground IoU by the query's foreground fraction, in thirds whose edges are "
             "fixed from the FM evaluation of each fold before HM is compared; episodes with no foreground in label and "
             "prediction of either model are left out.",
             "Convergence: epochs until the validation mIoU first reaches the claim's fraction of the run's best "
             "validation mIoU (history.jsonl), FM's epochs / HM's; the interval is the range over folds and seeds. "
             "Runtime: ms per test episode from the evaluations' timings (device and load dependent); the interval is "
             "the range over folds and seeds. A range over one run gives no verdict.",
             "The paper's values are its own tables' differences (of the printed means), or the numbers its text gives."]
    if any(r.evidence == "released" for r in results):
        notes.append("'(released weights)': the authors' released checkpoints, evaluated here.")
    if len(args.folds) not in (1, 4):
        notes.append(f"Only folds {', '.join(map(str, sorted(args.folds)))} were run: the paper's value is the mean of "
                     "its printed values for those folds.")
    notes += [f"Not checked: {s}." for s in skipped]
    notes += [f"Not evaluated: {r.claim}, {r.backbone}{'' if r.shot is None else f', {r.shot}-shot'}: "
              f"{r.detail['not_evaluated']}."
              for r in results if r.verdict == NOT_EVALUATED]
    title = "Claims of the HMFS paper, checked one by one"
    if args.synthetic:
        title += " (synthetic benchmark: verdicts about the stand-in)"
        notes.insert(0, "Synthetic benchmark: every verdict is about the synthetic stand-in (small generated images, "
                        "a small backbone, short schedules), not about the paper's benchmarks; the paper's values are "
                        "shown for reference and not compared.")
    texts = render(results, notes, title, args.synthetic)
    from hmfs.runtime import atomic_write_text

    for ext, text in texts.items():
        atomic_write_text(Path(f"{args.out_prefix}.{ext}"), text)
    counts = {v: sum(r.verdict == v for r in results) for v in ("supported", "contradicted", "inconclusive", NOT_EVALUATED)}
    log.info("claims: %d checked (%s) -> %s.{csv,md,tex,html,json}", len(results), counts, args.out_prefix)
    return texts


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("claims", help="check the paper's claims one by one (intervals and verdicts)",
                                   description=__doc__)
    parser.add_argument("--results", required=True, type=Path, help="results folder holding <benchmark>/<backbone>/...")
    parser.add_argument("--claims", required=True, type=Path, help="hmfs/paper/claims.yaml")
    parser.add_argument("--published", required=True, type=Path, help="hmfs/paper/published_results.yaml")
    parser.add_argument("--backbones", required=True, nargs="+")
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--table", required=True, nargs="+", action="append",
                        metavar="TABLE BENCHMARK TEST_BENCHMARK SEEDS ROW",
                        help="one table of the grid: e.g. --table table5 coco coco 0,1 FM=fm IM=im HM=hm")
    add_bootstrap_args(parser, seeds=False)
    parser.add_argument("--synthetic", action="store_true", help="synthetic benchmark: verdicts about the stand-in")
    parser.add_argument("--out-prefix", required=True, type=Path, help="writes PREFIX.csv, .md, .tex, .html and .json")
    parser.set_defaults(func=lambda args: (make_claims(args), 0)[1])
