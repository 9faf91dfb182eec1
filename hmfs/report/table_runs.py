"""One table of the grid as the report commands receive it (benchmarks, training seeds, rows), and the runs behind a cell."""

from __future__ import annotations

from dataclasses import dataclass

from hmfs.names import ORIGINS, TABLES
from hmfs.pipeline.grid import Evaluation, Run

RowSpec = tuple[str, str, str]  # (row name, variant, origin), e.g. ("HMFS*", "hm_aug", "trained")


@dataclass(frozen=True)
class GridTable:
    """A table's runs: trained on `benchmark`, tested on `test_benchmark`, one run per training seed of a
    trained row and one released checkpoint per released row; `rows` in the table's order."""

    name: str
    benchmark: str
    test_benchmark: str
    seeds: tuple[int, ...]
    rows: tuple[RowSpec, ...]

    def variant(self, name: str, origin: str) -> str | None:
        return next((v for n, v, o in self.rows if n == name and o == origin), None)

    def runs(self, backbone: str, variant: str, origin: str, fold: str) -> list[Run]:
        """The runs behind one fold's cell: one per training seed, in order (a released checkpoint: one)."""
        seeds = self.seeds if origin == "trained" else (0,)
        return [Run(self.benchmark, backbone, variant, fold, origin, seed) for seed in seeds]

    def holds(self, evaluation: Evaluation, backbones: list[str], folds: list[str], shots: list[int]) -> bool:
        """Whether `evaluation` is one of this table's cells (for backbones x folds x shots)."""
        run = evaluation.run
        return (run.benchmark == self.benchmark and evaluation.test_benchmark == self.test_benchmark
                and run.backbone in backbones and run.fold in folds and evaluation.shot in shots
                and any(v == run.variant and o == run.origin for _, v, o in self.rows)
                and run.seed in (self.seeds if run.origin == "trained" else (0,)))

    def trains(self, run: Run, backbones: list[str], folds: list[str]) -> bool:
        """Whether `run` is one of this table's trained runs (whose history a convergence claim reads)."""
        return (run.origin == "trained" and run.benchmark == self.benchmark and run.backbone in backbones
                and run.fold in folds and run.seed in self.seeds
                and any(v == run.variant and o == "trained" for _, v, o in self.rows))

    def describe(self, backbones: list[str], folds: list[str], shots: list[int]) -> str:
        """For messages: "table4 (coco tested on pascal; backbones ...; rows ...; folds ...; shots ...; seeds ...)"."""
        rows = ", ".join(f"{n}={v}" + ("" if o == "trained" else f"@{o}") for n, v, o in self.rows)
        return (f"{self.name} ({self.benchmark} tested on {self.test_benchmark}; backbones {', '.join(backbones)}; "
                f"rows {rows}; folds {', '.join(folds)}; shots {', '.join(map(str, shots))}; training seeds "
                f"{', '.join(map(str, self.seeds))})")


def parse_rows(specs: list[str]) -> list[RowSpec]:
    """["HSNet=fm@released", "HSNet=fm", "HMFS*=hm_aug"] -> [(name, variant, origin), ...]."""
    rows = []
    for spec in specs:
        name, sep, variant = spec.partition("=")
        variant, at, origin = variant.partition("@")
        origin = origin if at else "trained"
        if not sep or not name or not variant or origin not in ORIGINS:
            raise ValueError(f"--rows entry {spec!r} is not NAME=VARIANT[@released] (e.g. HSNet=fm, 'HMFS*=hm_aug', "
                             "HSNet=fm@released)")
        if (name, variant, origin) in rows:
            raise ValueError(f"--rows entry {spec!r} is given twice")
        rows.append((name, variant, origin))
    return rows


def parse_grid_table(values: list[str]) -> GridTable:
    """`claims --table TABLE BENCHMARK TEST_BENCHMARK SEEDS ROW...` (SEEDS "0,1"; ROW as `tables --rows`)."""
    if len(values) < 5 or values[0] not in TABLES:
        raise ValueError(f"--table {' '.join(values)} is not TABLE BENCHMARK TEST_BENCHMARK SEEDS ROW... "
                         "(e.g. --table table5 coco coco 0,1 FM=fm IM=im HM=hm)")
    seeds = tuple(int(s) for s in values[3].split(","))
    return GridTable(values[0], values[1], values[2], seeds, tuple(parse_rows(values[4:])))
