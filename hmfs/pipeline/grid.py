"""The experiment grid of the paper's tables: which runs and evaluations exist, derived from the validated config."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from hmfs.names import FOLDED, NO_FOLD, fold_index, fold_name, parse_variant, variant_name

# Table 4 (protocol.md section 5, RePRI's protocol): trained on COCO-20i fold k, tested on the
# PASCAL classes that are not among that fold's COCO training classes.
TABLE4_PASCAL_CLASSES = {
    0: ("aeroplane", "boat", "chair", "diningtable", "dog", "person"),
    1: ("bicycle", "bus", "horse", "sofa"),
    2: ("bird", "car", "pottedplant", "sheep", "train", "tvmonitor"),
    3: ("bottle", "cat", "cow", "motorbike"),
}


def table4_class_names(fold: str) -> list[str]:
    """PASCAL classes kept by Table 4 for COCO fold `fold` ("fold2")."""
    index = fold_index(fold)
    if fold == NO_FOLD or index not in TABLE4_PASCAL_CLASSES:
        raise ValueError(f"Table 4 has folds fold0-fold3, not {fold!r}")
    return list(TABLE4_PASCAL_CLASSES[index])


# A run's folder and an evaluation's file stem, as templates: formatted with a run's fields they give
# its path; left as they are they are the workflow rules' wildcard patterns (workflow/*.smk).
TRAINED_KEY = "{benchmark}/{backbone}/{variant}/{fold}/seed{seed}"
RELEASED_KEY = "released/{benchmark}/{backbone}/{variant}/{fold}"
EVALUATION_NAME = "eval_{shot}shot"  # on the run's own benchmark
CROSS_DOMAIN_NAME = "eval_on_{test_benchmark}_{shot}shot"  # Table 4: trained on COCO-20i, tested on PASCAL-5i


@dataclass(frozen=True, order=True)
class Run:
    """One run: benchmark x backbone x variant x fold x training seed, trained here or released by the authors."""

    benchmark: str
    backbone: str
    variant: str
    fold: str  # fold<k>, or NO_FOLD for FSS-1000
    origin: str = "trained"  # one of ORIGINS
    seed: int = 0  # the training seed of a trained run (a released checkpoint has one, unknown: 0)

    @property
    def masking(self) -> str:
        return parse_variant(self.variant)[0]

    @property
    def augment(self) -> bool:
        return parse_variant(self.variant)[1]

    @property
    def key(self) -> str:
        """The run's folder below the results folder: benchmark/backbone/variant/fold/seed<k> for a
        trained run (every training seed its own folder), released/benchmark/backbone/variant/fold
        for a released checkpoint."""
        return (RELEASED_KEY if self.origin == "released" else TRAINED_KEY).format(**dataclasses.asdict(self))


def parse_run_key(key: str) -> Run:
    """Inverse of `Run.key`: "coco/resnet50/hm/fold0/seed1" -> Run(..., seed=1);
    "released/coco/resnet50/hm/fold0" -> Run(..., origin="released")."""
    parts = key.split("/")
    if parts[0] == "released" and len(parts) == 5:
        return Run(*parts[1:], origin="released")
    if len(parts) == 5 and parts[4].startswith("seed") and parts[4][len("seed"):].isdigit():
        return Run(*parts[:4], seed=int(parts[4][len("seed"):]))
    raise ValueError(f"run key {key!r} is not <benchmark>/<backbone>/<variant>/<fold>/seed<k> or "
                     "released/<benchmark>/<backbone>/<variant>/<fold>")


@dataclass(frozen=True, order=True)
class Evaluation:
    """One evaluation of a run's best checkpoint: `shot`-shot on `test_benchmark`."""

    run: Run
    shot: int
    test_benchmark: str

    @property
    def name(self) -> str:
        """File stem: eval_<k>shot for the run's own benchmark, eval_on_<benchmark>_<k>shot across domains."""
        name = EVALUATION_NAME if self.test_benchmark == self.run.benchmark else CROSS_DOMAIN_NAME
        return name.format(shot=self.shot, test_benchmark=self.test_benchmark)


def run_folds(benchmark: str, folds: list[int]) -> list[str]:
    """The fold folders of `benchmark` for fold indices `folds`: fold<k> each, or just NO_FOLD for FSS-1000."""
    return [NO_FOLD] if benchmark not in FOLDED else [f"fold{k}" for k in folds]


def folds_of(config: dict[str, Any], benchmark: str) -> list[str]:
    return run_folds(benchmark, config["folds"])


def row_origins(row: dict[str, Any]) -> list[str]:
    """The origins of one table row: its `source` (trained, released, or both side by side)."""
    source = row.get("source", "trained")
    return ["released", "trained"] if source == "both" else [source]


def table_rows(config: dict[str, Any], table: str) -> list[tuple[str, str, str]]:
    """(row name, variant, origin) of one table, as the config lists them (a `both` row gives two)."""
    return [(name, variant_name(row["masking"], row.get("augment", False)), origin)
            for name, row in config["tables"][table]["rows"].items() for origin in row_origins(row)]


def table_seeds(config: dict[str, Any], table: str) -> list[int]:
    """The training seeds of a table's trained rows: its own `seeds`, else `train.seeds`."""
    return list(config["tables"][table].get("seeds", config["train"]["seeds"]))


def table_runs(config: dict[str, Any], table: str) -> list[Run]:
    """Every run of a table: one per training seed for trained rows, one for released rows."""
    spec = config["tables"][table]
    return [Run(spec["benchmark"], backbone, variant, fold, origin, seed)
            for backbone in config["backbones"]
            for _, variant, origin in table_rows(config, table)
            for fold in folds_of(config, spec["benchmark"])
            for seed in (table_seeds(config, table) if origin == "trained" else [0])]


def run_seeds(config: dict[str, Any], run: Run) -> list[int]:
    """Every training seed some table trains for `run`'s benchmark, backbone, variant and fold."""
    return sorted({other.seed for other in training_runs(config)
                   if (other.benchmark, other.backbone, other.variant, other.fold)
                   == (run.benchmark, run.backbone, run.variant, run.fold)})


def table_evaluations(config: dict[str, Any], table: str) -> list[Evaluation]:
    spec = config["tables"][table]
    test_benchmark = spec.get("test_benchmark", spec["benchmark"])
    return [Evaluation(run, shot, test_benchmark)
            for run in table_runs(config, table) for shot in config["evaluate"]["shots"]]


def training_runs(config: dict[str, Any]) -> list[Run]:
    """Every run some table trains, each once (Tables 2 and 5 share FM/HM; Table 4 re-uses COCO's)."""
    return sorted({run for table in config["tables"] for run in table_runs(config, table) if run.origin == "trained"})


def released_runs(config: dict[str, Any]) -> list[Run]:
    """Every run some table evaluates from the authors' released checkpoints, each once."""
    return sorted({run for table in config["tables"] for run in table_runs(config, table) if run.origin == "released"})


def evaluations(config: dict[str, Any]) -> list[Evaluation]:
    return sorted({e for table in config["tables"] for e in table_evaluations(config, table)})


def summarize(config: dict[str, Any]) -> dict[str, int]:
    """Job counts of the grid (what the dry run should list)."""
    evals = evaluations(config)
    return {"trainings": len(training_runs(config)), "released_checkpoints": len(released_runs(config)),
            "evaluations": len(evals),
            "cross_domain_evaluations": sum(e.test_benchmark != e.run.benchmark for e in evals)}


EPISODE_FIGURES = ("qualitative", "small_targets")  # drawn from one fold's 1-shot predictions (first backbone)


def figure_runs(config: dict[str, Any], figure: str) -> list[Run]:
    """The runs a figure draws from."""
    spec = config["figures"][figure]
    if figure == "feature_maps":  # the backbone weights and one support image: no run
        return []
    folds = folds_of(config, spec["benchmark"])
    if figure in EPISODE_FIGURES:
        folds = [fold_name(spec["benchmark"], spec["fold"])]
        backbones = config["backbones"][:1]
    else:
        backbones = config["backbones"]
    runs = [Run(spec["benchmark"], b, v, f) for b in backbones for v in spec["variants"].values() for f in folds]
    if figure == "convergence":  # every training seed's history: the plot can show their spread
        return [Run(r.benchmark, r.backbone, r.variant, r.fold, seed=seed) for r in runs for seed in run_seeds(config, r) or [0]]
    return runs  # training seed 0: what hmfs/report/figures.py reads
