"""The claims table: the paper's claims (hmfs/paper/claims.yaml) checked one by one on the files handed in, with notes."""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

from hmfs.names import NUM_FOLDS
from hmfs.pipeline.grid import run_folds
from hmfs.report.claim_checks import Checker, check_claims
from hmfs.report.claim_rules import load_claims
from hmfs.report.claims_format import NOT_EVALUATED, render
from hmfs.report.inputs import ResultFiles
from hmfs.report.table_runs import GridTable
from hmfs.report.uncertainty import Settings

log = logging.getLogger(__name__)


def refuse_extra(files: ResultFiles, tables: dict[str, GridTable], backbones: list[str], folds: list[int],
                 shots: list[int]) -> None:
    """ValueError naming every handed file that is no evaluation or trained run of the claims' tables."""
    folds_of = {name: run_folds(table.benchmark, folds) for name, table in tables.items()}
    owner = "the claims' tables: " + "; ".join(t.describe(backbones, folds_of[n], shots) for n, t in tables.items())
    files.refuse_extra(lambda e: any(t.holds(e, backbones, folds_of[n], shots) for n, t in tables.items()), owner,
                       lambda run: any(t.trains(run, backbones, folds_of[n]) for n, t in tables.items()))


def make_claims(claims_file: Path, published: Path, tables: dict[str, GridTable], files: ResultFiles,
                backbones: list[str], folds: list[int], shots: list[int], settings: Settings, out_prefix: Path,
                synthetic: bool = False, require_all: bool = False) -> dict[str, str]:
    """Check every claim and write the claims table's five files; returns their texts.

    Every handed file must belong to one of `tables` (ValueError naming those that do not); with
    `require_all`, a file a claim needs and was not handed is an error naming it, else the claim is
    listed as not evaluated.
    """
    refuse_extra(files, tables, backbones, folds, shots)
    if not published.is_file():
        raise FileNotFoundError(f"published results not found: {published}")
    checker = Checker(files, tables, sorted(set(folds)), shots, yaml.safe_load(published.read_text()), settings)
    results, skipped = check_claims(load_claims(claims_file), checker, backbones)
    if require_all:
        files.check_complete("the claims table")
    level = f"{100 * settings.confidence:g}%"
    notes = [f"Paired differences and small-target gains: {level} class-stratified bootstrap over the test episodes "
             f"({settings.resamples:,} resamples; fold k with seed {settings.seed} + k; both maskings resampled with the "
             "same episodes), mean over folds resample by resample"
             + ("; over training seeds a two-stage bootstrap (episodes, then seeds)." if
                any(len(t.seeds) > 1 for t in tables.values()) else "."),
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
    if len(folds) not in (1, NUM_FOLDS):
        notes.append(f"Only folds {', '.join(map(str, sorted(folds)))} were run: the paper's value is the mean of "
                     "its printed values for those folds.")
    notes += [f"Not checked: {s}." for s in skipped]
    notes += [f"Not evaluated: {r.claim}, {r.backbone}{'' if r.shot is None else f', {r.shot}-shot'}: "
              f"{r.detail['not_evaluated']}."
              for r in results if r.verdict == NOT_EVALUATED]
    title = "Claims of the HMFS paper, checked one by one"
    if synthetic:
        title += " (synthetic benchmark: verdicts about the stand-in)"
        notes.insert(0, "Synthetic benchmark: every verdict is about the synthetic stand-in (small generated images, "
                        "a small backbone, short schedules), not about the paper's benchmarks; the paper's values are "
                        "shown for reference and not compared.")
    texts = render(results, notes, title, synthetic)
    from hmfs.runtime import atomic_write_text

    for ext, text in texts.items():
        atomic_write_text(Path(f"{out_prefix}.{ext}"), text)
    counts = {v: sum(r.verdict == v for r in results) for v in ("supported", "contradicted", "inconclusive", NOT_EVALUATED)}
    log.info("claims: %d checked (%s) -> %s.{csv,md,tex,html,json}", len(results), counts, out_prefix)
    return texts
