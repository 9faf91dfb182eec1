"""`python -m hmfs tables`: the paper's Tables 1-5 regenerated from evaluation JSON files, as CSV, Markdown, LaTeX and HTML."""

from __future__ import annotations

import argparse
import html
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hmfs.grid import NO_FOLD, TABLES, Evaluation, Run, evaluation_path, run_folds

log = logging.getLogger(__name__)

MISSING = "–"  # shown for a run that has no evaluation file yet; never a zero
PRINTED_MEAN_TOLERANCE = 0.051  # a printed mean off the average of its printed folds by more than rounding
TITLES = {
    "table1": "Table 1: PASCAL-5i, mIoU per fold, mean mIoU and FB-IoU",
    "table2": "Table 2: COCO-20i, mIoU per fold, mean mIoU and FB-IoU",
    "table3": "Table 3: FSS-1000, mIoU",
    "table4": "Table 4: domain shift, trained on COCO-20i, tested on PASCAL-5i (mIoU per fold and mean)",
    "table5": "Table 5: masking ablation on COCO-20i, FM vs IM vs HM",
}


@dataclass
class Row:
    """One table row: values per shot, each [fold values..., mean mIoU, FB-IoU] (None = missing)."""

    backbone: str
    method: str
    source: str  # reproduced | released | paper | difference | released_difference | literature
    values: dict[int, list[float | None]]
    notes: list[str] = field(default_factory=list)
    checkpoints: list[str] = field(default_factory=list)  # provenance of reproduced / released rows


SOURCE_OF_ORIGIN = {"trained": "reproduced", "released": "released"}
LABELS = {"reproduced": "{} (reproduced)", "released": "{} (released weights)", "paper": "{} (paper)",
          "difference": "{} (reproduced − paper)", "released_difference": "{} (released weights − paper)",
          "literature": "{}"}


def columns_of(table: str, folds: list[str]) -> list[str]:
    """Per-shot value columns of a table in the paper's layout."""
    if table == "table3":
        return ["mIoU"]
    fold_columns = [] if folds == [NO_FOLD] else list(folds)
    return fold_columns + (["mIoU"] if table == "table4" else ["mIoU", "FB-IoU"])


def _mean(values: list[float | None]) -> float | None:
    return None if not values or any(v is None for v in values) else sum(values) / len(values)


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


def reproduced_values(results: Path, run_of_fold: dict[str, Run], shot: int, test_benchmark: str,
                      table: str, folds: list[str]) -> tuple[list[float | None], list[str], list[str]]:
    """[fold mIoUs..., mean mIoU(, mean FB-IoU)] from the evaluation files (missing files give None),
    the files used, and each checkpoint's provenance."""
    mious, fb_ious, used, checkpoints = [], [], [], []
    for fold in folds:
        run = run_of_fold[fold]
        path = Path(evaluation_path(str(results), Evaluation(run, shot, test_benchmark)))
        if path.is_file():
            result = json.loads(path.read_text())
            mious.append(float(result["miou"]))
            fb_ious.append(float(result["fb_iou"]))
            used.append(str(path))
            checkpoints.append(provenance(fold, result))
        else:
            mious.append(None)
            fb_ious.append(None)
    per_fold = [] if folds == [NO_FOLD] else mious
    values = per_fold + [_mean(mious)]
    if table not in ("table3", "table4"):
        values.append(_mean(fb_ious))
    return values, used, checkpoints


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


def build_table(table: str, results: Path, benchmark: str, test_benchmark: str, backbones: list[str],
                folds: list[str], shots: list[int], rows: list[tuple[str, str, str]],
                published: dict[str, Any] | None) -> tuple[list[Row], list[str]]:
    """All rows of one table, in the paper's order, and the evaluation files used.

    `rows`: (name, variant, origin) each; a name may come twice, released and trained, side by side.
    """
    ncolumns = len(columns_of(table, folds))
    out: list[Row] = []
    used_files: list[str] = []
    for backbone in backbones:
        reproduced: dict[str, list[Row]] = {}
        for method, variant, origin in rows:
            run_of_fold = {fold: Run(benchmark, backbone, variant, fold, origin) for fold in folds}
            values, checkpoints = {}, []
            for shot in shots:
                values[shot], used, provenances = reproduced_values(results, run_of_fold, shot, test_benchmark, table, folds)
                used_files += used
                checkpoints = checkpoints or provenances  # every shot evaluates the same checkpoints
            reproduced.setdefault(method, []).append(
                Row(backbone, method, SOURCE_OF_ORIGIN[origin], values, checkpoints=checkpoints))
        if published is None:
            out += [row for mine in reproduced.values() for row in mine]
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
                    out.append(Row(backbone, method, source, {
                        s: [None if a is None or b is None or (partial and i >= len(folds)) else a - b
                            for i, (a, b) in enumerate(zip(mine.values[s], values[s]))]
                        for s in shots}))
            elif not ours:
                values = {s: _select_folds(v, folds, table) for s, v in values.items()}
                out.append(Row(backbone, method, "literature", values, notes))
        out += [row for mine in reproduced.values() for row in mine]  # reproduced rows the paper does not print
    return out, used_files


def _select_folds(values: list[float | None], folds: list[str], table: str) -> list[float | None]:
    """Published [f0, f1, f2, f3, mean(, FB)] in the order of the configured folds (mean and FB kept)."""
    if table == "table3" or folds == [NO_FOLD]:
        return values
    picked = [values[int(f[len("fold"):])] for f in folds if f != NO_FOLD]
    return picked + values[4:]


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return f"{value:+.1f}" if signed else f"{value:.1f}"


def _label(row: Row) -> str:
    return LABELS[row.source].format(row.method)


def _signed(row: Row) -> bool:
    return row.source in ("difference", "released_difference")


def render(table: str, rows: list[Row], folds: list[str], shots: list[int], title: str, notes: list[str]) -> dict[str, str]:
    """The table as {csv, md, tex, html} text."""
    columns = columns_of(table, folds)
    header = ["backbone", "method", "source"] + [f"{shot}shot_{c}" for shot in shots for c in columns] + ["checkpoints"]
    csv_lines = [",".join(header)]
    for row in rows:
        cells = [row.backbone, _csv_quote(row.method), row.source]
        cells += ["" if v is None else f"{v:.4f}" for shot in shots for v in row.values[shot]]
        cells.append(_csv_quote("; ".join(row.checkpoints)))
        csv_lines.append(",".join(cells))
    footnotes = list(notes) + [f"{_label(r)}: {n}" for r in rows for n in r.notes]
    footnotes += [f"{_label(r)}, {r.backbone} checkpoints: {'; '.join(r.checkpoints)}"
                  for r in rows if r.source == "released" and r.checkpoints]

    md = [f"# {title}", ""]
    md.append("| backbone | method | " + " | ".join(f"{shot}-shot {c}" for shot in shots for c in columns) + " |")
    md.append("|---|---|" + "---:|" * (len(columns) * len(shots)))
    for row in rows:
        signed = _signed(row)
        md.append(f"| {row.backbone} | {_label(row)} | "
                  + " | ".join(_fmt(v, signed) for shot in shots for v in row.values[shot]) + " |")
    md += [""] + [f"- {n}" for n in footnotes]

    width = len(columns) * len(shots)
    tex = ["% " + title, "\\begin{tabular}{ll" + "r" * width + "}", "\\toprule",
           " & & " + " & ".join(f"\\multicolumn{{{len(columns)}}}{{c}}{{{shot}-shot}}" for shot in shots) + " \\\\",
           "Backbone & Method & " + " & ".join(_tex(c) for _ in shots for c in columns) + " \\\\", "\\midrule"]
    for row in rows:
        signed = _signed(row)
        tex.append(f"{row.backbone} & {_tex(_label(row))} & "
                   + " & ".join(_tex(_fmt(v, signed)) for shot in shots for v in row.values[shot]) + " \\\\")
    tex += ["\\bottomrule", "\\end{tabular}"] + [f"% {n}" for n in footnotes]

    cells = "".join(f"<th>{shot}-shot {html.escape(c)}</th>" for shot in shots for c in columns)
    body = []
    for row in rows:
        signed = _signed(row)
        body.append(f'<tr class="{row.source}"><td>{row.backbone}</td><td>{html.escape(_label(row))}</td>'
                    + "".join(f"<td>{_fmt(v, signed)}</td>" for shot in shots for v in row.values[shot]) + "</tr>")
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>" + html.escape(title) + "</title><style>"
        "body{font-family:sans-serif;font-size:13px}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}td:nth-child(-n+2){text-align:left}"
        "tr.reproduced{font-weight:bold}tr.released{font-weight:bold;color:#0a4f8a}"
        "tr.difference,tr.released_difference{color:#555;font-style:italic}</style></head><body>"
        f"<h3>{html.escape(title)}</h3><table><tr><th>backbone</th><th>method</th>{cells}</tr>{''.join(body)}</table>"
        + "".join(f"<p>{html.escape(n)}</p>" for n in footnotes) + "</body></html>\n"
    )
    return {"csv": "\n".join(csv_lines) + "\n", "md": "\n".join(md) + "\n", "tex": "\n".join(tex) + "\n", "html": page}


def _csv_quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"') else text


def _tex(text: str) -> str:
    return text.replace("_", "\\_").replace("*", "$^*$").replace("−", "$-$").replace(MISSING, "--")


def parse_rows(specs: list[str]) -> list[tuple[str, str, str]]:
    """["HSNet=fm@released", "HSNet=fm", "HMFS*=hm_aug"] -> [(name, variant, origin), ...]."""
    rows = []
    for spec in specs:
        name, sep, variant = spec.partition("=")
        variant, at, origin = variant.partition("@")
        origin = origin if at else "trained"
        if not sep or not name or not variant or origin not in SOURCE_OF_ORIGIN:
            raise ValueError(f"--rows entry {spec!r} is not NAME=VARIANT[@released] (e.g. HSNet=fm, 'HMFS*=hm_aug', "
                             "HSNet=fm@released)")
        if (name, variant, origin) in rows:
            raise ValueError(f"--rows entry {spec!r} is given twice")
        rows.append((name, variant, origin))
    return rows


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
    rows, used = build_table(args.table, args.results, args.benchmark, args.test_benchmark or args.benchmark,
                             args.backbones, folds, args.shots, parsed_rows, published)
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
    expected = sum(len(folds) * len(args.shots) for _ in args.backbones for _ in args.rows)
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
    parser.add_argument("--rows", required=True, nargs="+",
                        help="NAME=VARIANT[@released] per reproduced row, e.g. HSNet=fm 'HMFS*=hm_aug' HSNet=fm@released")
    parser.add_argument("--published", type=Path, default=None, help="published_results.yaml (real benchmarks)")
    parser.add_argument("--synthetic", action="store_true", help="synthetic benchmark: no paper numbers, a plain note")
    parser.add_argument("--out-prefix", required=True, type=Path, help="writes PREFIX.csv, .md, .tex and .html")
    parser.set_defaults(func=lambda args: (make_tables(args), 0)[1])
