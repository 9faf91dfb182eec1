"""The claims table: its row (`Result`, one checked claim) and its text as CSV, Markdown, LaTeX, HTML and JSON."""

from __future__ import annotations

import html
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from hmfs.report.table_specs import table_spec

NOT_EVALUATED = "not evaluated"
RULE = ("Verdict rule (b against a, on the interval of the reproduced value): supported: the interval excludes no "
        "difference (0 points, a speed-up of 1x, 0% overhead) on the side the paper states; contradicted: it excludes "
        "no difference on the other side; inconclusive: it covers no difference. A claim of parity ('on par', the paper "
        "printing equal numbers) is supported when the interval lies within ±margin, contradicted when it excludes no "
        "difference, inconclusive otherwise. 'paper inside' says whether the interval covers the paper's own value.")


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


def _number(value: float | None, unit: str, signed: bool = True) -> str:
    if value is None or math.isnan(value):
        return "–"
    if unit == "x":
        return f"{value:.2g}x" if value < 10 else f"{value:.0f}x"
    return f"{value:+.1f}" if signed else f"{value:.1f}"


def _comparison(result: Result) -> str:
    table = table_spec(result.table).label
    if result.kind == "convergence":
        return f"{table} runs: {result.b} vs {result.a}, convergence speed-up (x)"
    if result.kind == "runtime":
        return f"{table} runs: {result.b} / {result.a} ms per episode − 1 (%)"
    if result.kind == "small_targets":
        part = "smallest third" if result.measure == "smallest_third" else "smallest − largest third"
        return f"{table} runs: {result.b} − {result.a}, fg IoU, {part}"
    return f"{table}: {result.b} − {result.a}, mIoU"


def render(results: list[Result], notes: list[str], title: str, synthetic: bool) -> dict[str, str]:
    """The claims table as {csv, md, tex, html, json} text."""
    stand_in = " (stand-in)" if synthetic else ""
    header = ["claim", "kind", "table", "a", "b", "backbone", "shot", "evidence", "unit", "expect", "paper", "point",
              "low", "high", "interval", "paper_inside", "verdict", "about", "runs", "statement"]
    csv = [",".join(header)]
    rows = []
    for r in results:
        values = [r.claim, r.kind, r.table, r.a, r.b, r.backbone, "" if r.shot is None else str(r.shot), r.evidence,
                  r.unit, r.expect] + ["" if v is None else f"{v:.4f}" for v in (r.paper, r.point, r.low, r.high)]
        values += [r.interval, "" if r.paper_inside is None or synthetic else str(r.paper_inside).lower(), r.verdict,
                   "synthetic stand-in" if synthetic else "the paper's benchmarks", str(r.runs), r.statement]
        csv.append(",".join('"' + v.replace('"', '""') + '"' if any(c in v for c in ',"') else v for v in values))
        inside = "–" if r.paper_inside is None or synthetic else ("yes" if r.paper_inside else "no")
        shown = "–" if r.point is None else (f"{_number(r.point, r.unit)} [{_number(r.low, r.unit)}, "
                                             f"{_number(r.high, r.unit)}]")
        says = f"on par (±{r.margin:g})" if r.expect == "equal" else {"greater": "b > a", "less": "b < a"}[r.expect]
        rows.append([_comparison(r) + (" (released weights)" if r.evidence == "released" else ""), r.backbone,
                     "–" if r.shot is None else f"{r.shot}-shot", says, _number(r.paper, r.unit), shown, inside,
                     r.verdict + (stand_in if r.verdict != NOT_EVALUATED else "")])
    columns = ["comparison (b vs a)", "backbone", "shot", "paper says", "paper", "reproduced [interval]",
               "paper inside", "verdict" + stand_in]
    footnotes = [RULE] + notes
    md = [f"# {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    md += ["| " + " | ".join(row) + " |" for row in rows] + [""] + [f"- {n}" for n in footnotes]

    def tex(text: str) -> str:
        return (text.replace("_", "\\_").replace("*", "$^*$").replace("−", "$-$").replace("–", "--")
                .replace("%", "\\%").replace("[", "{[}").replace("]", "{]}"))

    latex = ["% " + title, "\\begin{tabular}{l" + "l" * 3 + "r" * 2 + "l" * 2 + "}", "\\toprule",
             " & ".join(tex(c) for c in columns) + " \\\\", "\\midrule"]
    latex += [" & ".join(tex(c) for c in row) + " \\\\" for row in rows]
    latex += ["\\bottomrule", "\\end{tabular}"] + [f"% {n}" for n in footnotes]
    colour = {"supported": "#1a7f37", "contradicted": "#b42318", "inconclusive": "#555"}
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row[:-1])
                   + f"<td style='color:{colour.get(r.verdict, '#999')};font-weight:bold'>{html.escape(row[-1])}</td></tr>"
                   for row, r in zip(rows, results))
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>" + html.escape(title) + "</title><style>"
            "body{font-family:sans-serif;font-size:13px}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:2px 6px;white-space:nowrap}</style></head><body>"
            f"<h3>{html.escape(title)}</h3><table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns)
            + f"</tr>{body}</table>" + "".join(f"<p>{html.escape(n)}</p>" for n in footnotes) + "</body></html>\n")
    numbers = {"title": title, "synthetic": synthetic, "rule": RULE, "notes": notes,
               "results": [{**asdict(r), "comparison": _comparison(r)} for r in results]}
    return {"csv": "\n".join(csv) + "\n", "md": "\n".join(md) + "\n", "tex": "\n".join(latex) + "\n", "html": page,
            "json": json.dumps(numbers, indent=1) + "\n"}
