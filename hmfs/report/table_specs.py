"""One spec per paper table: its title, its columns, and how its printed numbers read in published_results.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hmfs.names import NO_FOLD, NUM_FOLDS, TABLES

PAPER_SHOTS = (1, 5)  # a "shots" row of published_results.yaml: [1-shot mIoU, 5-shot mIoU]
PAPER_MEAN = NUM_FOLDS  # a "folds" row: [fold0, fold1, fold2, fold3, mIoU(, FB-IoU)]; the mean after the folds


@dataclass(frozen=True)
class TableSpec:
    """How one of the paper's tables looks: title, per-fold columns, FB-IoU column, and its printed rows.

    paper_row: "folds": a method's entry holds per shot `<k>shot: [fold0..fold3, mIoU(, FB-IoU)]`;
    "shots": it holds `values: [1-shot mIoU, 5-shot mIoU]` (or is that list), no folds.
    """

    name: str
    title: str
    fold_columns: bool  # one mIoU column per fold before the mean (on a benchmark with folds)
    fb_iou: bool  # a mean FB-IoU column after the mean mIoU
    paper_row: str  # "folds" or "shots", see above

    def __post_init__(self) -> None:
        if self.paper_row not in ("folds", "shots"):
            raise ValueError(f"{self.name}: paper_row must be 'folds' or 'shots', got {self.paper_row!r}")

    @property
    def label(self) -> str:
        """"Table 4": how the text names it."""
        return self.title.partition(":")[0]

    def shows_folds(self, folds: list[str]) -> bool:
        return self.fold_columns and folds != [NO_FOLD]

    def columns(self, folds: list[str]) -> list[str]:
        """Per-shot value columns in the paper's layout: [fold..., mIoU(, FB-IoU)]."""
        return (list(folds) if self.shows_folds(folds) else []) + ["mIoU"] + (["FB-IoU"] if self.fb_iou else [])

    def printed(self, entry: Any, shot: int) -> list[float | None] | None:
        """A method's printed numbers for one shot, as the paper lays them out; None where it prints none."""
        if self.paper_row == "shots":
            values = entry["values"] if isinstance(entry, dict) else entry
            return [values[PAPER_SHOTS.index(shot)]] if shot in PAPER_SHOTS else None
        printed = entry.get(f"{shot}shot")
        return list(printed) if printed else None

    def printed_folds(self, row: list[float | None]) -> tuple[list[float | None], float | None]:
        """The per-fold values and the mean of a printed row ([], None where it prints no folds)."""
        if self.paper_row == "shots":
            return [], None
        return row[:PAPER_MEAN], row[PAPER_MEAN]

    def select_folds(self, row: list[float | None], folds: list[str]) -> list[float | None]:
        """A printed row in the order of the configured folds (the mean and FB-IoU kept as printed)."""
        if self.paper_row == "shots" or folds == [NO_FOLD]:
            return row
        return [row[int(f[len("fold"):])] for f in folds if f != NO_FOLD] + row[PAPER_MEAN:]

    def paper_mean(self, row: list[float | None] | None, folds: list[int]) -> float | None:
        """The paper's mean mIoU over `folds` (fold indices): its printed mean for all folds, else the
        mean of its printed values for those folds; None where a value is not printed."""
        if self.paper_row == "shots":
            return None if row is None else row[0]
        row = row or [None] * (PAPER_MEAN + 1)
        picked = [row[k] for k in folds]
        if len(folds) == NUM_FOLDS:
            return row[PAPER_MEAN]
        return None if None in picked else sum(picked) / len(picked)


SPECS = {spec.name: spec for spec in (
    TableSpec("table1", "Table 1: PASCAL-5i, mIoU per fold, mean mIoU and FB-IoU",
              fold_columns=True, fb_iou=True, paper_row="folds"),
    TableSpec("table2", "Table 2: COCO-20i, mIoU per fold, mean mIoU and FB-IoU",
              fold_columns=True, fb_iou=True, paper_row="folds"),
    TableSpec("table3", "Table 3: FSS-1000, mIoU", fold_columns=False, fb_iou=False, paper_row="shots"),
    TableSpec("table4", "Table 4: domain shift, trained on COCO-20i, tested on PASCAL-5i (mIoU per fold and mean)",
              fold_columns=True, fb_iou=False, paper_row="folds"),
    TableSpec("table5", "Table 5: masking ablation on COCO-20i, FM vs IM vs HM",
              fold_columns=True, fb_iou=True, paper_row="folds"),
)}


def table_spec(name: str) -> TableSpec:
    """The spec of a table of hmfs.names.TABLES (tests/report/test_table_specs.py: one each)."""
    if name not in SPECS:
        raise ValueError(f"unknown table {name!r}; accepted: {', '.join(TABLES)}")
    return SPECS[name]
