"""`python -m hmfs tables`: the paper's Tables 1-5 regenerated from evaluation JSON files, as CSV, Markdown, LaTeX and HTML."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import yaml

from hmfs.pipeline.grid import Evaluation, Run, run_folds
from hmfs.names import NO_FOLD, TABLES, fold_index, parse_variant
from hmfs.pipeline.paths import evaluation_path
from hmfs.report.table_format import MISSING, SOURCE_OF_ORIGIN, Row, columns_of, parse_rows, render
from hmfs.report.uncertainty import (Cell, Scorer, Settings, add_bootstrap_args, fold_bootstraps, paired_cells, row_cells,
                              table_notes)

log = logging.getLogger(__name__)

PRINTED_MEAN_TOLERANCE = 0.051  # a printed mean off the average of its printed folds by more than rounding
TITLES = {
    "table1": "Table 1: PASCAL-5i, mIoU per fold, mean mIoU and FB-IoU",
    "table2": "Table 2: COCO-20i, mIoU per fold, mean mIoU and FB-IoU",
    "table3": "Table 3: FSS-1000, mIoU",
    "table4": "Table 4: domain shift, trained on COCO-20i, tested on PASCAL-5i (mIoU per fold and mean)",
    "table5": "Table 5: masking ablation on COCO-20i, FM vs IM vs HM",
}
PAIRED_OF_ORIGIN = {"trained": "paired", "released": "released_paired"}


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


def reproduced_values(results: Path, runs_of_fold: dict[str, list[Run]], shot: int, test_benchmark: str,
                      table: str, folds: list[str], scorer: Scorer) -> tuple[list[Cell | None], list, list[str], list[str]]:
    """[fold mIoUs..., mean mIoU(, mean FB-IoU)] cells of one row and shot (None where a file is
    missing), each fold's per-seed bootstraps, the files used, and each checkpoint's provenance.
    runs_of_fold: per fold its runs, one per training seed (the cell is their mean)."""
    per_fold, used, checkpoints = [], [], []
    for fold in folds:
        paths = [Path(evaluation_path(str(results), Evaluation(run, shot, test_benchmark))) for run in runs_of_fold[fold]]
        per_fold.append(fold_bootstraps(scorer, paths, fold_index(fold)))
        if per_fold[-1] is not None:
            used += [str(path) for path in paths]
            for run, path in zip(runs_of_fold[fold], paths):
                name = fold if len(paths) == 1 else f"{fold}/seed{run.seed}"
                checkpoints.append(provenance(name, json.loads(path.read_text())))
    cells = row_cells(per_fold, folds != [NO_FOLD], table not in ("table3", "table4"), scorer.settings.confidence)
    return cells, per_fold, used, checkpoints


def published_rows(published: dict[str, Any], table: str, backbone: str, shots: list[int],
                   ncolumns: int) -> dict[str, tuple[bool, dict[int, list[float | None]], list[str]]]:
    """Method -> (ours, values per shot, notes) of the paper's table for one backbone."""
    rows = {}
    for method, entry in published.get(table, {}).get(backbone, {}).items():
        ours = isinstance(entry, dict) and entry.get("ours", False)
        values: dict[int, list[float | None]] = {}
        if table == "table3":
            pair = entry["values"] if isinstance(entry, dict) else entry
            values = {shot: [pair[[1, 5].index(shot)]] if shot in (1, 5) else [None] for shot in shots}
        else:
            for shot in shots:
                printed = entry.get(f"{shot}shot")
                values[shot] = list(printed) if printed else [None] * ncolumns
        notes = []
        for shot, row in values.items():
            folds = row[:4] if table != "table3" else []
            mean = row[4] if table != "table3" else None
            if len(folds) == 4 and all(v is not None for v in folds) and mean is not None:
                if abs(sum(folds) / 4 - mean) > PRINTED_MEAN_TOLERANCE:
                    notes.append(f"{shot}-shot printed mean {mean} differs from the average of its printed folds "
                                 f"({sum(folds) / 4:.2f}); kept as printed")
        rows[method] = (ours, values, notes)
    return rows


def paired_rows(rows: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """(baseline name, other name, origin) of the paired differences a table shows: every im or hm
    row minus the fm row with the same augmentation and origin (HM − FM, IM − FM; HMFS* − HSNet*)."""
    baseline = {(augment, origin): name for name, variant, origin in rows
                for masking, augment in [parse_variant(variant)] if masking == "fm"}
    out = []
    for name, variant, origin in rows:
        masking, augment = parse_variant(variant)
        if masking in ("im", "hm") and (augment, origin) in baseline:
            out.append((baseline[(augment, origin)], name, origin))
    masking_of = {name: parse_variant(variant)[0] for name, variant, _ in rows}
    return sorted(out, key=lambda pair: (pair[2] != "trained", masking_of[pair[1]] != "hm"))  # trained first, HM first


def build_table(table: str, results: Path, benchmark: str, test_benchmark: str, backbones: list[str],
                folds: list[str], shots: list[int], rows: list[tuple[str, str, str]],
                published: dict[str, Any] | None, seeds: list[int] | None = None,
                scorer: Scorer | None = None) -> tuple[list[Row], list[str]]:
    """All rows of one table, in the paper's order, and the evaluation files used.

    `rows`: (name, variant, origin) each; a name may come twice, released and trained, side by side.
    `seeds`: the training seeds of trained rows (each cell is their mean); released rows have one checkpoint.
    """
    seeds, scorer = seeds or [0], scorer or Scorer(Settings())
    ncolumns = len(columns_of(table, folds))
    show_folds, with_fb = folds != [NO_FOLD], table not in ("table3", "table4")
    out: list[Row] = []
    used_files: list[str] = []
    for backbone in backbones:
        reproduced: dict[str, list[Row]] = {}
        bootstraps: dict[tuple[str, str], dict[int, list]] = {}
        for method, variant, origin in rows:
            runs_of_fold = {fold: [Run(benchmark, backbone, variant, fold, origin, seed)
                                   for seed in (seeds if origin == "trained" else [0])] for fold in folds}
            row = Row(backbone, method, SOURCE_OF_ORIGIN[origin], {})
            for shot in shots:
                row.cells[shot], bootstraps.setdefault((method, origin), {})[shot], used, provenances = reproduced_values(
                    results, runs_of_fold, shot, test_benchmark, table, folds, scorer)
                row.values[shot] = [None if c is None else c.point for c in row.cells[shot]]
                used_files += used
                row.checkpoints = row.checkpoints or provenances  # every shot evaluates the same checkpoints
            reproduced.setdefault(method, []).append(row)
        pairs = []
        for a, b, origin in paired_rows(rows):
            cells = {shot: paired_cells(bootstraps[(a, origin)][shot], bootstraps[(b, origin)][shot], show_folds, with_fb,
                                        scorer.settings.confidence) for shot in shots}
            pairs.append(Row(backbone, f"{b} − {a}", PAIRED_OF_ORIGIN[origin],
                             {s: [None if c is None else c.point for c in cells[s]] for s in shots}, cells=cells))
        if published is None:
            out += [row for mine in reproduced.values() for row in mine] + pairs
            continue
        paper = published_rows(published, table, backbone, shots, ncolumns)
        for method, (ours, values, notes) in paper.items():
            if method in reproduced:
                mine_rows = reproduced.pop(method)
                out += mine_rows
                values = {s: _select_folds(v, folds, table) for s, v in values.items()}
                out.append(Row(backbone, method, "paper", values, notes))
                partial = folds != [NO_FOLD] and len(folds) != 4  # a mean over fewer folds is not the paper's mean
                for mine in mine_rows:
                    source = "difference" if mine.source == "reproduced" else "released_difference"
                    cells = {s: [None if c is None or p is None or (partial and i >= len(folds)) else c.shifted(p)
                                 for i, (c, p) in enumerate(zip(mine.cells[s], values[s]))] for s in shots}
                    out.append(Row(backbone, method, source,
                                   {s: [None if c is None else c.point for c in cells[s]] for s in shots}, cells=cells))
            elif not ours:
                values = {s: _select_folds(v, folds, table) for s, v in values.items()}
                out.append(Row(backbone, method, "literature", values, notes))
        out += [row for mine in reproduced.values() for row in mine] + pairs  # rows the paper does not print, then pairs
    return out, used_files


def _select_folds(values: list[float | None], folds: list[str], table: str) -> list[float | None]:
    """Published [f0, f1, f2, f3, mean(, FB)] in the order of the configured folds (mean and FB kept)."""
    if table == "table3" or folds == [NO_FOLD]:
        return values
    picked = [values[int(f[len("fold"):])] for f in folds if f != NO_FOLD]
    return picked + values[4:]


def make_tables(args: argparse.Namespace) -> dict[str, str]:
    """Build one table from the arguments and write its four files; returns their texts."""
    if args.table not in TABLES:
        raise ValueError(f"unknown table {args.table!r}; accepted: {', '.join(TABLES)}")
    folds = run_folds(args.benchmark, sorted(set(args.folds)))
    parsed_rows = parse_rows(args.rows)
    published = None
    if not args.synthetic:
        if args.published is None or not args.published.is_file():
            raise FileNotFoundError(f"published results not found: {args.published} (pass --published, or --synthetic)")
        published = yaml.safe_load(args.published.read_text())
    settings = Settings(args.resamples, args.bootstrap_seed, args.confidence)
    rows, used = build_table(args.table, args.results, args.benchmark, args.test_benchmark or args.benchmark,
                             args.backbones, folds, args.shots, parsed_rows, published, args.seeds, Scorer(settings))
    title = TITLES[args.table]
    notes = []
    if args.synthetic:
        title += " (synthetic benchmark)"
        notes.append("Synthetic benchmark: these numbers come from the embedded synthetic data and small "
                     "backbones; they are not comparable to the paper's, so no paper numbers are shown.")
    else:
        notes.append("'(reproduced)' rows come from this pipeline's evaluation files (bold in the HTML); '(paper)' rows and "
                     "literature rows are as the paper prints them; '(reproduced − paper)' is their difference.")
    if any(origin == "released" for _, _, origin in parsed_rows):
        notes.append("'(released weights)' rows evaluate the authors' released checkpoints with this pipeline's "
                     "evaluation (blue in the HTML); '(reproduced)' rows are trained here.")
    if len(folds) not in (1, 4):
        notes.append(f"Only folds {', '.join(f[len('fold'):] for f in folds)} were run; mIoU and FB-IoU are their means "
                     "(the paper averages all four).")
    notes += table_notes(settings, args.seeds, published is not None, bool(paired_rows(parsed_rows)))
    expected = sum(len(folds) * len(args.shots) * (len(args.seeds) if origin == "trained" else 1)
                   for _ in args.backbones for _, _, origin in parsed_rows)
    notes.append(f"Made from {len(used)} of {expected} evaluation files; {MISSING} marks a run without one.")
    texts = render(args.table, rows, folds, args.shots, title, notes)
    from hmfs.runtime import atomic_write_text

    for ext, text in texts.items():
        atomic_write_text(Path(f"{args.out_prefix}.{ext}"), text)
    log.info("%s: %d rows from %d of %d evaluation files -> %s.{csv,md,tex,html}", args.table, len(rows), len(used),
             expected, args.out_prefix)
    return texts


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("tables", help="regenerate one of the paper's tables from evaluation JSON files",
                                   description=__doc__)
    parser.add_argument("--table", required=True, choices=TABLES)
    parser.add_argument("--results", required=True, type=Path, help="results folder holding <benchmark>/<backbone>/...")
    parser.add_argument("--benchmark", required=True, choices=["pascal", "coco", "fss"], help="the training benchmark")
    parser.add_argument("--test-benchmark", choices=["pascal", "coco", "fss"], default=None,
                        help="the benchmark tested on when it differs (Table 4: pascal)")
    parser.add_argument("--backbones", required=True, nargs="+")
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 5])
    add_bootstrap_args(parser)
    parser.add_argument("--rows", required=True, nargs="+",
                        help="NAME=VARIANT[@released] per reproduced row, e.g. HSNet=fm 'HMFS*=hm_aug' HSNet=fm@released")
    parser.add_argument("--published", type=Path, default=None, help="published_results.yaml (real benchmarks)")
    parser.add_argument("--synthetic", action="store_true", help="synthetic benchmark: no paper numbers, a plain note")
    parser.add_argument("--out-prefix", required=True, type=Path, help="writes PREFIX.csv, .md, .tex and .html")
    parser.set_defaults(func=lambda args: (make_tables(args), 0)[1])
