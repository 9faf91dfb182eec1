"""Tables 1-5 of the paper from the evaluation files handed in: reproduced rows, the paper's rows, differences, paired rows."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import yaml

from hmfs.names import MASKINGS, NO_FOLD, NUM_FOLDS, fold_index, parse_variant
from hmfs.pipeline.grid import Evaluation, run_folds
from hmfs.report.inputs import ResultFiles
from hmfs.report.table_format import MISSING, SOURCE_OF_ORIGIN, Row, render
from hmfs.report.table_runs import GridTable, RowSpec
from hmfs.report.table_specs import TableSpec
from hmfs.report.uncertainty import Cell, Scorer, Settings, fold_bootstraps, paired_cells, row_cells, table_notes

log = logging.getLogger(__name__)

PRINTED_MEAN_TOLERANCE = 0.051  # a printed mean off the average of its printed folds by more than rounding
PAIRED_OF_ORIGIN = {"trained": "paired", "released": "released_paired"}
# Feature masking (HSNet's) is the baseline: every other masking's row is also shown paired with it,
# the later maskings of hmfs.names.MASKINGS first (hybrid masking, the paper's, leads).
BASELINE, COMPARED = MASKINGS[0], MASKINGS[1:]


def provenance(fold: str, result: dict[str, Any]) -> str:
    """One checkpoint's provenance: fold, origin, sha256 prefix, and the epoch / val mIoU it stores."""
    text = f"{fold}: {result.get('checkpoint_origin', 'trained')}"
    if result.get("checkpoint_sha256"):
        text += f" sha256 {result['checkpoint_sha256'][:12]}"
    if "checkpoint_epoch" in result:
        text += f", epoch {result['checkpoint_epoch']}"
    if "checkpoint_val_miou" in result:
        text += f", val mIoU {float(result['checkpoint_val_miou']):.1f}"
    return text


def reproduced_values(files: ResultFiles, spec: TableSpec, table: GridTable, backbone: str, variant: str, origin: str,
                      shot: int, folds: list[str], scorer: Scorer) -> tuple[list[Cell | None], list, list[str], list[str]]:
    """[fold mIoUs..., mean mIoU(, mean FB-IoU)] cells of one row and shot (None where a file was not
    handed in), each fold's per-seed bootstraps, the files used, and each checkpoint's provenance.
    A fold's cell is the mean over its runs, one per training seed."""
    per_fold, used, checkpoints = [], [], []
    for fold in folds:
        runs = table.runs(backbone, variant, origin, fold)
        paths = files.find([Evaluation(run, shot, table.test_benchmark) for run in runs])
        per_fold.append(fold_bootstraps(scorer, paths, fold_index(fold)))
        if per_fold[-1] is not None:
            used += [str(path) for path in paths]
            for run, path in zip(runs, paths):
                name = fold if len(paths) == 1 else f"{fold}/seed{run.seed}"
                checkpoints.append(provenance(name, json.loads(path.read_text())))
    cells = row_cells(per_fold, spec.shows_folds(folds), spec.fb_iou, scorer.settings.confidence)
    return cells, per_fold, used, checkpoints


def published_rows(published: dict[str, Any], spec: TableSpec, backbone: str, shots: list[int],
                   ncolumns: int) -> dict[str, tuple[bool, dict[int, list[float | None]], list[str]]]:
    """Method -> (ours, values per shot, notes) of the paper's table for one backbone."""
    rows = {}
    for method, entry in published.get(spec.name, {}).get(backbone, {}).items():
        ours = isinstance(entry, dict) and entry.get("ours", False)
        values: dict[int, list[float | None]] = {}
        for shot in shots:
            printed = spec.printed(entry, shot)
            values[shot] = printed if printed is not None else [None] * ncolumns
        notes = []
        for shot, row in values.items():
            folds, mean = spec.printed_folds(row)
            if len(folds) == NUM_FOLDS and all(v is not None for v in folds) and mean is not None:
                if abs(sum(folds) / NUM_FOLDS - mean) > PRINTED_MEAN_TOLERANCE:
                    notes.append(f"{shot}-shot printed mean {mean} differs from the average of its printed folds "
                                 f"({sum(folds) / NUM_FOLDS:.2f}); kept as printed")
        rows[method] = (ours, values, notes)
    return rows


def paired_rows(rows: list[RowSpec] | tuple[RowSpec, ...]) -> list[tuple[str, str, str]]:
    """(baseline name, other name, origin) of the paired differences a table shows: every row of a
    masking in COMPARED minus the BASELINE row with the same augmentation and origin (HM − FM, IM − FM;
    HMFS* − HSNet*); trained before released, then the maskings of COMPARED from the last."""
    baseline = {(augment, origin): name for name, variant, origin in rows
                for masking, augment in [parse_variant(variant)] if masking == BASELINE}
    out = []
    for name, variant, origin in rows:
        masking, augment = parse_variant(variant)
        if masking in COMPARED and (augment, origin) in baseline:
            out.append((baseline[(augment, origin)], name, origin))
    rank = {name: COMPARED[::-1].index(parse_variant(variant)[0]) for name, variant, _ in rows
            if parse_variant(variant)[0] in COMPARED}
    return sorted(out, key=lambda pair: (pair[2] != "trained", rank[pair[1]]))


def build_table(spec: TableSpec, table: GridTable, files: ResultFiles, backbones: list[str], folds: list[str],
                shots: list[int], published: dict[str, Any] | None,
                scorer: Scorer | None = None) -> tuple[list[Row], list[str]]:
    """All rows of one table, in the paper's order, and the evaluation files used.

    `table.rows`: (name, variant, origin) each; a name may come twice, released and trained, side by side.
    Trained rows average the table's training seeds; released rows have one checkpoint.
    """
    scorer = scorer or Scorer(Settings())
    ncolumns = len(spec.columns(folds))
    show_folds = spec.shows_folds(folds)
    out: list[Row] = []
    used_files: list[str] = []
    for backbone in backbones:
        reproduced: dict[str, list[Row]] = {}
        bootstraps: dict[tuple[str, str], dict[int, list]] = {}
        for method, variant, origin in table.rows:
            row = Row(backbone, method, SOURCE_OF_ORIGIN[origin], {})
            for shot in shots:
                row.cells[shot], bootstraps.setdefault((method, origin), {})[shot], used, provenances = reproduced_values(
                    files, spec, table, backbone, variant, origin, shot, folds, scorer)
                row.values[shot] = [None if c is None else c.point for c in row.cells[shot]]
                used_files += used
                row.checkpoints = row.checkpoints or provenances  # every shot evaluates the same checkpoints
            reproduced.setdefault(method, []).append(row)
        pairs = []
        for a, b, origin in paired_rows(table.rows):
            cells = {shot: paired_cells(bootstraps[(a, origin)][shot], bootstraps[(b, origin)][shot], show_folds,
                                        spec.fb_iou, scorer.settings.confidence) for shot in shots}
            pairs.append(Row(backbone, f"{b} − {a}", PAIRED_OF_ORIGIN[origin],
                             {s: [None if c is None else c.point for c in cells[s]] for s in shots}, cells=cells))
        if published is None:
            out += [row for mine in reproduced.values() for row in mine] + pairs
            continue
        for method, (ours, values, notes) in published_rows(published, spec, backbone, shots, ncolumns).items():
            if method in reproduced:
                mine_rows = reproduced.pop(method)
                out += mine_rows
                values = {s: spec.select_folds(v, folds) for s, v in values.items()}
                out.append(Row(backbone, method, "paper", values, notes))
                partial = folds != [NO_FOLD] and len(folds) != NUM_FOLDS  # a mean over fewer folds is not the paper's mean
                for mine in mine_rows:
                    source = "difference" if mine.source == "reproduced" else "released_difference"
                    cells = {s: [None if c is None or p is None or (partial and i >= len(folds)) else c.shifted(p)
                                 for i, (c, p) in enumerate(zip(mine.cells[s], values[s]))] for s in shots}
                    out.append(Row(backbone, method, source,
                                   {s: [None if c is None else c.point for c in cells[s]] for s in shots}, cells=cells))
            elif not ours:
                values = {s: spec.select_folds(v, folds) for s, v in values.items()}
                out.append(Row(backbone, method, "literature", values, notes))
        out += [row for mine in reproduced.values() for row in mine] + pairs  # rows the paper does not print, then pairs
    return out, used_files


def make_table(spec: TableSpec, table: GridTable, files: ResultFiles, backbones: list[str], folds: list[int],
               shots: list[int], settings: Settings, out_prefix: Path, published: Path | None = None,
               synthetic: bool = False, require_all: bool = False) -> dict[str, str]:
    """Build one table from the files handed in and write its four files; returns their texts.

    Every handed file must be one of the table's cells (ValueError naming those that are not); with
    `require_all`, a cell whose file was not handed in is an error naming it, else it shows MISSING.
    """
    folds = run_folds(table.benchmark, sorted(set(folds)))
    files.refuse_extra(lambda e: table.holds(e, backbones, folds, shots), table.describe(backbones, folds, shots))
    paper = None
    if not synthetic:
        if published is None or not published.is_file():
            raise FileNotFoundError(f"published results not found: {published} (pass --published, or --synthetic)")
        paper = yaml.safe_load(published.read_text())
    rows, used = build_table(spec, table, files, backbones, folds, shots, paper, Scorer(settings))
    if require_all:
        files.check_complete(spec.name)
    title = spec.title
    notes = []
    if synthetic:
        title += " (synthetic benchmark)"
        notes.append("Synthetic benchmark: these numbers come from the embedded synthetic data and small "
                     "backbones; they are not comparable to the paper's, so no paper numbers are shown.")
    else:
        notes.append("'(reproduced)' rows come from this pipeline's evaluation files (bold in the HTML); '(paper)' rows and "
                     "literature rows are as the paper prints them; '(reproduced − paper)' is their difference.")
    if any(origin == "released" for _, _, origin in table.rows):
        notes.append("'(released weights)' rows evaluate the authors' released checkpoints with this pipeline's "
                     "evaluation (blue in the HTML); '(reproduced)' rows are trained here.")
    if len(folds) not in (1, NUM_FOLDS):
        notes.append(f"Only folds {', '.join(f[len('fold'):] for f in folds)} were run; mIoU and FB-IoU are their means "
                     "(the paper averages all four).")
    notes += table_notes(settings, list(table.seeds), paper is not None, bool(paired_rows(table.rows)))
    expected = sum(len(table.runs(backbone, variant, origin, fold)) * len(shots)
                   for backbone in backbones for _, variant, origin in table.rows for fold in folds)
    notes.append(f"Made from {len(used)} of {expected} evaluation files; {MISSING} marks a run without one.")
    texts = render(spec, rows, folds, shots, title, notes)
    from hmfs.runtime import atomic_write_text

    for ext, text in texts.items():
        atomic_write_text(Path(f"{out_prefix}.{ext}"), text)
    log.info("%s: %d rows from %d of %d evaluation files -> %s.{csv,md,tex,html}", spec.name, len(rows), len(used),
             expected, out_prefix)
    return texts
