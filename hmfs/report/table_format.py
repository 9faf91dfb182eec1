"""The tables' text: one row per method and source, cells with their intervals, as CSV, Markdown, LaTeX and HTML."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

from hmfs.report.table_specs import TableSpec
from hmfs.report.uncertainty import Cell, fmt_cell

SOURCE_OF_ORIGIN = {"trained": "reproduced", "released": "released"}  # a row's origin (hmfs.names.ORIGINS) -> its source
MISSING = "–"  # shown for a run that has no evaluation file yet; never a zero
OUTSIDE = "†"  # a difference to the paper whose paper number lies outside the reproduced interval


@dataclass
class Row:
    """One table row: values per shot, each [fold values..., mean mIoU, FB-IoU] (None = missing), and
    for rows made here their interval cells in the same layout."""

    backbone: str
    method: str
    source: str  # reproduced | released | paper | difference | released_difference | paired | released_paired | literature
    values: dict[int, list[float | None]]
    notes: list[str] = field(default_factory=list)
    checkpoints: list[str] = field(default_factory=list)  # provenance of reproduced / released rows
    cells: dict[int, list[Cell | None]] = field(default_factory=dict)


LABELS = {"reproduced": "{} (reproduced)", "released": "{} (released weights)", "paper": "{} (paper)",
          "difference": "{} (reproduced − paper)", "released_difference": "{} (released weights − paper)",
          "paired": "{} (paired)", "released_paired": "{} (paired, released weights)", "literature": "{}"}
INTERVAL_SOURCES = ("reproduced", "released", "paired", "released_paired")


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return f"{value:+.1f}" if signed else f"{value:.1f}"


def _label(row: Row) -> str:
    return LABELS[row.source].format(row.method)


def _text(row: Row, shot: int, i: int) -> str:
    """One cell as shown: `38.1 ± 2.3` for rows made here, `−1.0†` for a difference to the paper."""
    value, cell = row.values[shot][i], row.cells[shot][i] if row.cells else None
    if row.source in INTERVAL_SOURCES and row.cells:
        return fmt_cell(cell, signed=row.source.endswith("paired"), missing=MISSING)
    if row.source in ("difference", "released_difference"):
        return _fmt(value, True) + (OUTSIDE if cell is not None and not cell.covers(0.0) else "")
    return _fmt(value)


def _csv_number(value: float | None) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.4f}"


def render(spec: TableSpec, rows: list[Row], folds: list[str], shots: list[int], title: str,
           notes: list[str]) -> dict[str, str]:
    """The table as {csv, md, tex, html} text, in the columns of its spec."""
    columns = spec.columns(folds)
    names = [f"{shot}shot_{c}" for shot in shots for c in columns]
    header = (["backbone", "method", "source"] + names + [f"{n}_{end}" for n in names for end in ("low", "high")]
              + [f"{n}_seed_sd" for n in names] + ["seeds", "checkpoints"])
    csv_lines = [",".join(header)]
    for row in rows:
        cells = [c for shot in shots for c in (row.cells.get(shot) or [None] * len(columns))]
        line = [row.backbone, _csv_quote(row.method), row.source]
        line += [_csv_number(v) for shot in shots for v in row.values[shot]]
        line += [_csv_number(None if c is None else getattr(c, end)) for c in cells for end in ("low", "high")]
        line += [_csv_number(None if c is None else c.spread) for c in cells]
        line += [str(max((c.seeds for c in cells if c is not None), default="")), _csv_quote("; ".join(row.checkpoints))]
        csv_lines.append(",".join(line))
    footnotes = list(notes) + [f"{_label(r)}: {n}" for r in rows for n in r.notes]
    footnotes += [f"{_label(r)}, {r.backbone} checkpoints: {'; '.join(r.checkpoints)}"
                  for r in rows if r.source == "released" and r.checkpoints]
    texts = {row_id: [_text(row, shot, i) for shot in shots for i in range(len(columns))] for row_id, row in enumerate(rows)}

    md = [f"# {title}", ""]
    md.append("| backbone | method | " + " | ".join(f"{shot}-shot {c}" for shot in shots for c in columns) + " |")
    md.append("|---|---|" + "---:|" * (len(columns) * len(shots)))
    md += [f"| {row.backbone} | {_label(row)} | " + " | ".join(texts[k]) + " |" for k, row in enumerate(rows)]
    md += [""] + [f"- {n}" for n in footnotes]

    width = len(columns) * len(shots)
    tex = ["% " + title, "\\begin{tabular}{ll" + "r" * width + "}", "\\toprule",
           " & & " + " & ".join(f"\\multicolumn{{{len(columns)}}}{{c}}{{{shot}-shot}}" for shot in shots) + " \\\\",
           "Backbone & Method & " + " & ".join(_tex(c) for _ in shots for c in columns) + " \\\\", "\\midrule"]
    tex += [f"{row.backbone} & {_tex(_label(row))} & " + " & ".join(_tex(t) for t in texts[k]) + " \\\\"
            for k, row in enumerate(rows)]
    tex += ["\\bottomrule", "\\end{tabular}"] + [f"% {n}" for n in footnotes]

    cells = "".join(f"<th>{shot}-shot {html.escape(c)}</th>" for shot in shots for c in columns)
    body = [f'<tr class="{row.source}"><td>{row.backbone}</td><td>{html.escape(_label(row))}</td>'
            + "".join(f"<td>{html.escape(t)}</td>" for t in texts[k]) + "</tr>" for k, row in enumerate(rows)]
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>" + html.escape(title) + "</title><style>"
        "body{font-family:sans-serif;font-size:13px}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right;white-space:nowrap}td:nth-child(-n+2){text-align:left}"
        "tr.reproduced{font-weight:bold}tr.released{font-weight:bold;color:#0a4f8a}tr.paired,tr.released_paired{color:#6a3d9a}"
        "tr.difference,tr.released_difference{color:#555;font-style:italic}</style></head><body>"
        f"<h3>{html.escape(title)}</h3><table><tr><th>backbone</th><th>method</th>{cells}</tr>{''.join(body)}</table>"
        + "".join(f"<p>{html.escape(n)}</p>" for n in footnotes) + "</body></html>\n"
    )
    return {"csv": "\n".join(csv_lines) + "\n", "md": "\n".join(md) + "\n", "tex": "\n".join(tex) + "\n", "html": page}


def _csv_quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"') else text


def _tex(text: str) -> str:
    return (text.replace("_", "\\_").replace("*", "$^*$").replace("−", "$-$").replace(MISSING, "--")
            .replace("±", "$\\pm$").replace(OUTSIDE, "$^\\dagger$"))
