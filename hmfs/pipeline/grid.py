"""The experiment grid of the paper's tables, and every path of the workflow, derived from the validated config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hmfs.pipeline.assets import prepare_records
from hmfs.pipeline.released import missing_released, released_checkpoint_path

TABLES = ("table1", "table2", "table3", "table4", "table5")
ORIGINS = ("trained", "released")  # a run's checkpoint: trained by the workflow, or released by the authors
FOLDED = ("pascal", "coco")  # FSS-1000 has one class split (trn/val/test), no folds
NO_FOLD = "all"  # the fold folder of FSS-1000 runs

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


def variant_name(masking: str, augment: bool) -> str:
    """The folder of a training variant: the masking, with `_aug` when trained with augmentation."""
    return f"{masking}_aug" if augment else masking


def parse_variant(variant: str) -> tuple[str, bool]:
    """Inverse of `variant_name`: (masking, augment)."""
    if variant.endswith("_aug"):
        return variant[: -len("_aug")], True
    return variant, False


def fold_name(benchmark: str, fold: int | None) -> str:
    return NO_FOLD if benchmark not in FOLDED else f"fold{fold}"


def fold_index(name: str) -> int:
    """`fold2` -> 2; FSS-1000's `all` -> 0 (the loaders ignore the fold there)."""
    return 0 if name == NO_FOLD else int(name[len("fold"):])


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
        if self.origin == "released":
            return f"released/{self.benchmark}/{self.backbone}/{self.variant}/{self.fold}"
        return f"{self.benchmark}/{self.backbone}/{self.variant}/{self.fold}/seed{self.seed}"


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
        if self.test_benchmark == self.run.benchmark:
            return f"eval_{self.shot}shot"
        return f"eval_on_{self.test_benchmark}_{self.shot}shot"


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


def checkpoint_path(config: dict[str, Any], run: Run) -> str:
    """The checkpoint a run's evaluations read: best.pt of a training, or the released file."""
    if run.origin == "released":
        return released_checkpoint_path(config["released"]["dir"], run)
    return f"{run_dir(config['output_dir'], run)}/best.pt"


def uses_backbone_weights(config: dict[str, Any], run: Run) -> bool:
    """Whether a run's evaluation reads the backbone_weights file (released files carry their own backbone)."""
    return run.origin == "trained" or config["released"]["backbone_weights"] == "imagenet"


def check_released_files(config: dict[str, Any]) -> None:
    """Every released checkpoint the tables need is in place; else one error listing all missing files."""
    runs = released_runs(config)
    if not runs:
        return
    missing = missing_released(config["released"]["dir"], runs)
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of {len(runs)} released checkpoints are missing (layout: <released.dir>/<benchmark>/"
            "<backbone>/<variant>/<fold>/best_model.pt; README 'Tables from the released weights'):\n"
            + "\n".join(missing)
            + "\nDownload them from the folders named, put each file at its path, and check the folder with "
            f"`python -m hmfs check-released --dir {config['released']['dir']}`; or set those rows' source to trained.")


def evaluations(config: dict[str, Any]) -> list[Evaluation]:
    return sorted({e for table in config["tables"] for e in table_evaluations(config, table)})


# ----------------------------------------------------------------------------------------------
# Paths: one place for every file the workflow reads or writes. `out` is the results folder.


def run_dir(out: str, run: Run) -> str:
    return f"{out}/{run.key}"


def evaluation_path(out: str, evaluation: Evaluation) -> str:
    return f"{run_dir(out, evaluation.run)}/{evaluation.name}.json"


def predictions_path(out: str, evaluation: Evaluation) -> str:
    return f"{run_dir(out, evaluation.run)}/{evaluation.name}_predictions.npz"


def state_dir(out: str, run: Run) -> str:
    """The resumable training state: outside the declared outputs, which Snakemake deletes when a job fails."""
    return f"{out}/.state/{run.key}"


def table_paths(out: str, table: str) -> dict[str, str]:
    return {ext: f"{out}/tables/{table}.{ext}" for ext in ("csv", "md", "tex", "html")}


def weights_path(config: dict[str, Any], backbone: str) -> str:
    """The frozen backbone's weights file: torchvision's ImageNet file, or one pretrained by the workflow."""
    weights = config["backbone_weights"]
    suffix = "imagenet.pth" if weights["source"] == "torchvision" else "synthetic.pt"
    return f"{weights['dir']}/{backbone}_{suffix}"


def summarize(config: dict[str, Any]) -> dict[str, int]:
    """Job counts of the grid (what the dry run should list)."""
    evals = evaluations(config)
    return {"trainings": len(training_runs(config)), "released_checkpoints": len(released_runs(config)),
            "evaluations": len(evals),
            "cross_domain_evaluations": sum(e.test_benchmark != e.run.benchmark for e in evals)}



# ----------------------------------------------------------------------------------------------
# Command-line flags of each rule's `python -m hmfs` call, from the config (config -> flags -> dataclass).


def prepared_marker(config: dict[str, Any], benchmark: str) -> str:
    """Written last by `prepare --summary`: a benchmark's data is in HSNet's layout."""
    return f"{config['data']['root']}/{benchmark}.prepared.json"


def verified_marker(config: dict[str, Any], benchmark: str) -> str:
    """Written by `verify-data --summary` when every image and mask decodes and fits: the data is
    ready (what trainings, evaluations and figures wait for)."""
    return f"{config['data']['root']}/{benchmark}.verified.json"


def verify_flags(config: dict[str, Any], benchmark: str) -> list[str]:
    return ["--benchmark", benchmark, "--data-root", config["data"]["root"],
            "--summary", verified_marker(config, benchmark)]


def splits_dir(config: dict[str, Any]) -> str | None:
    """The split lists: the ones prepare wrote, or None for HSNet's (shipped with hmfs)."""
    return f"{config['data']['root']}/splits" if config["data"]["splits"] == "prepared" else None


def _data_flags(config: dict[str, Any], benchmark: str) -> list[str]:
    flags = ["--benchmark", benchmark, "--data-root", config["data"]["root"]]
    if splits_dir(config):
        flags += ["--splits-dir", splits_dir(config)]
    return flags


def _model_flags(config: dict[str, Any], run: Run) -> list[str]:
    flags = ["--backbone", run.backbone, "--masking", run.masking, "--device", config["device"]]
    if uses_backbone_weights(config, run):
        return flags + ["--backbone-weights", weights_path(config, run.backbone)]
    return flags + ["--backbone-from-checkpoint"]


def train_flags(config: dict[str, Any], run: Run) -> list[str]:
    schedule, train = config["train"][run.benchmark], config["train"]
    flags = _data_flags(config, run.benchmark) + ["--fold", str(fold_index(run.fold))] + _model_flags(config, run)
    flags += ["--img-size", str(train["img_size"]), "--batch-size", str(schedule["batch_size"]),
              "--lr", str(schedule["lr"]), "--epochs", str(schedule["epochs"]), "--seed", str(run.seed),
              "--val-seed", str(train["val_seed"]), "--checkpoint-every", str(train["checkpoint_every"]),
              "--out", run_dir(config["output_dir"], run), "--state-dir", state_dir(config["output_dir"], run)]
    for key in ("train_episodes", "val_episodes"):
        if schedule[key] is not None:
            flags += [f"--{key.replace('_', '-')}", str(schedule[key])]
    if run.augment:
        flags.append("--augment")
        if train.get("augment_ops") is not None:
            flags += ["--augment-ops", *train["augment_ops"]]
    if train["bf16"]:
        flags.append("--bf16")
    if train.get("cache_features"):
        flags.append("--cache-features")
    workers = config["resources"]["train"].get("workers")
    if workers:  # data-loader processes: a resource (results do not depend on it), so resumable with another
        flags += ["--num-workers", str(workers)]
    return flags


def train_sbatch_flags(config: dict[str, Any]) -> str:
    """Extra sbatch flags of a training job (the `slurm_extra` resource, read only by the SLURM executor).

    `--signal=URG@<s>`: SIGURG `save_before_limit` seconds before the time limit, on which
    `hmfs train` saves and stops (URG: the other processes of the job ignore it by default);
    `--open-mode=append`: a requeued job (same job id) appends to its SLURM log instead of replacing it.
    """
    flags = ["--open-mode=append"]
    lead = config["resources"]["train"].get("save_before_limit")
    if lead:
        flags.append(f"--signal=URG@{lead}")
    return " ".join(flags)


def evaluation_flags(config: dict[str, Any], evaluation: Evaluation) -> list[str]:
    run, out, settings = evaluation.run, config["output_dir"], config["evaluate"]
    flags = _data_flags(config, evaluation.test_benchmark) + ["--fold", str(fold_index(run.fold))]
    flags += _model_flags(config, run)
    flags += ["--img-size", str(config["train"]["img_size"]), "--shot", str(evaluation.shot),
              "--seed", str(settings["seed"]), "--batch-size", str(settings["batch_size"]),
              "--checkpoint", checkpoint_path(config, run), "--checkpoint-origin", run.origin,
              "--out", evaluation_path(out, evaluation), "--predictions", predictions_path(out, evaluation),
              "--num-predictions", str(settings["predictions"]),
              "--num-smallest-predictions", str(settings.get("predictions_smallest", 0))]
    if settings["episodes"][evaluation.test_benchmark] is not None:
        flags += ["--episodes", str(settings["episodes"][evaluation.test_benchmark])]
    if evaluation.test_benchmark != run.benchmark:
        if (run.benchmark, evaluation.test_benchmark) != ("coco", "pascal"):
            raise ValueError(f"cross-domain evaluation {run.benchmark} -> {evaluation.test_benchmark} is not "
                             "defined; Table 4 trains on coco and tests on pascal")
        flags += ["--class-names", *table4_class_names(run.fold)]
    if settings["bf16"]:
        flags.append("--bf16")
    return flags


def generate_flags(config: dict[str, Any], benchmark: str) -> list[str]:
    synthetic = config["data"].get("synthetic")
    if config["data"]["source"] != "synthetic" or synthetic is None:
        raise ValueError("data.synthetic is required when data.source is 'synthetic'")
    return ["--out", config["data"]["raw_dir"], "--benchmark", benchmark, "--seed", str(synthetic["seed"]),
            "--image-size", str(synthetic["image_size"]), "--pascal-train", str(synthetic["pascal_train"]),
            "--pascal-val", str(synthetic["pascal_val"]), "--coco-train", str(synthetic["coco_train"]),
            "--coco-val", str(synthetic["coco_val"]), "--fss-classes", str(synthetic["fss_classes"]),
            "--background", synthetic.get("background", "clutter")]


def synthetic_summary(config: dict[str, Any], benchmark: str) -> str:
    """Written last by `generate`: the raw synthetic benchmark is complete."""
    return f"{config['data']['raw_dir']}/{benchmark}_summary.json"


def prepare_flags(config: dict[str, Any], benchmark: str) -> list[str]:
    data = config["data"]
    splits_out = splits_dir(config) or f"{data['root']}/splits"  # HSNet's lists are used; these are kept for reference
    flags = ["--benchmark", benchmark, "--raw", data["raw_dir"], "--out", data["root"], "--splits-out", splits_out,
             "--summary", prepared_marker(config, benchmark)]
    records = prepare_records(config, benchmark)  # the downloads it came from, kept in its record
    return flags + ["--asset-records", *records] if records else flags


def pretrain_flags(config: dict[str, Any], backbone: str) -> list[str]:
    settings = config["backbone_weights"].get("pretrain")
    if config["backbone_weights"]["source"] != "pretrain" or settings is None:
        raise ValueError("backbone_weights.pretrain is required when backbone_weights.source is 'pretrain'")
    flags = ["--backbone", backbone, "--out", weights_path(config, backbone),
             "--exclude-classes-of", *[synthetic_summary(config, b) for b in ("pascal", "coco", "fss")]]
    for key, value in settings.items():
        flags += [f"--{key.replace('_', '-')}", str(value)]
    return flags


def bootstrap_flags(config: dict[str, Any]) -> list[str]:
    """The intervals' bootstrap (config `uncertainty`), as `tables` and `claims` take it."""
    settings = config["uncertainty"]
    return ["--resamples", str(settings["resamples"]), "--bootstrap-seed", str(settings["seed"]),
            "--confidence", str(settings["confidence"])]


def table_flags(config: dict[str, Any], table: str, published: str) -> list[str]:
    spec = config["tables"][table]
    flags = ["--table", table, "--results", config["output_dir"], "--benchmark", spec["benchmark"],
             "--backbones", *config["backbones"], "--folds", *map(str, config["folds"]),
             "--shots", *map(str, config["evaluate"]["shots"]),
             "--seeds", *map(str, table_seeds(config, table)), *bootstrap_flags(config),
             "--rows", *[f"{name}={variant}" + ("@released" if origin == "released" else "")
                         for name, variant, origin in table_rows(config, table)],
             "--out-prefix", f"{config['output_dir']}/tables/{table}"]
    if "test_benchmark" in spec:
        flags += ["--test-benchmark", spec["test_benchmark"]]
    if config["data"]["source"] == "synthetic":
        flags.append("--synthetic")
    else:
        flags += ["--published", published]
    return flags


def claims_paths(out: str) -> dict[str, str]:
    """The claims table (next to Tables 1-5); its .json holds every number, for the forest plot."""
    return {ext: f"{out}/tables/claims.{ext}" for ext in ("csv", "md", "tex", "html", "json")}


def forest_path(out: str) -> str:
    """The report's summary figure: every claim's reproduced difference with its interval."""
    return f"{out}/figures/claims_forest.png"


def claims_inputs(config: dict[str, Any], claims: list[dict[str, Any]]) -> list[str]:
    """The files the claims table reads: every table's evaluations, and the training histories of the
    trained runs whose convergence a claim compares (`claims`: the entries of hmfs/paper/claims.yaml)."""
    out = config["output_dir"]
    files = {evaluation_path(out, e) for e in evaluations(config)}
    for claim in claims:
        if claim["kind"] == "convergence" and claim["table"] in config["tables"]:
            variants = {variant for name, variant, origin in table_rows(config, claim["table"])
                        if name in (claim["a"], claim["b"]) and origin == "trained"}
            files |= {f"{run_dir(out, run)}/history.jsonl" for run in table_runs(config, claim["table"])
                      if run.origin == "trained" and run.variant in variants}
    return sorted(files)


def claims_flags(config: dict[str, Any], published: str, claims_file: str) -> list[str]:
    """`python -m hmfs claims`: every table's rows and seeds, the paper's numbers, the bootstrap."""
    flags = ["--results", config["output_dir"], "--claims", claims_file, "--published", published,
             "--backbones", *config["backbones"], "--folds", *map(str, config["folds"]),
             "--shots", *map(str, config["evaluate"]["shots"]), *bootstrap_flags(config)]
    for table, spec in config["tables"].items():
        flags += ["--table", table, spec["benchmark"], spec.get("test_benchmark", spec["benchmark"]),
                  ",".join(map(str, table_seeds(config, table))),
                  *[f"{name}={variant}" + ("@released" if origin == "released" else "")
                    for name, variant, origin in table_rows(config, table)]]
    if config["data"]["source"] == "synthetic":
        flags.append("--synthetic")
    return flags + ["--out-prefix", f"{config['output_dir']}/tables/claims"]


FIGURE_FILES = {"convergence": "fig7_convergence.png", "qualitative": "fig5_qualitative.png",
                "small_targets": "fig4_small_targets.png", "feature_maps": "fig6_feature_maps.png",
                "runtime": "runtime.png"}
EPISODE_FIGURES = ("qualitative", "small_targets")  # drawn from one fold's 1-shot predictions (first backbone)


def figure_paths(config: dict[str, Any]) -> dict[str, str]:
    """The PNG of every figure the config asks for (each figure is optional)."""
    out = config["output_dir"]
    return {figure: f"{out}/figures/{name}" for figure, name in FIGURE_FILES.items() if figure in config["figures"]}


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


def figure_inputs(config: dict[str, Any], figure: str) -> list[str]:
    out, runs = config["output_dir"], figure_runs(config, figure)
    if figure == "convergence":
        return [f"{run_dir(out, run)}/history.jsonl" for run in runs]
    if figure in EPISODE_FIGURES:
        return [predictions_path(out, Evaluation(run, 1, run.benchmark)) for run in runs]
    if figure == "feature_maps":
        return [weights_path(config, config["backbones"][0])]
    return [evaluation_path(out, Evaluation(run, shot, run.benchmark))
            for run in runs for shot in config["evaluate"]["shots"]]


def _test_episode_flags(config: dict[str, Any], spec: dict[str, Any]) -> list[str]:
    """The evaluation's test episodes of one fold (first backbone): same data, seed, length and size."""
    flags = ["--backbone", config["backbones"][0], "--fold", str(spec["fold"]), "--data-root", config["data"]["root"],
             "--img-size", str(config["train"]["img_size"]), "--seed", str(config["evaluate"]["seed"])]
    if config["evaluate"]["episodes"][spec["benchmark"]] is not None:
        flags += ["--evaluation-episodes", str(config["evaluate"]["episodes"][spec["benchmark"]])]
    if splits_dir(config):
        flags += ["--splits-dir", splits_dir(config)]
    return flags


def figure_flags(config: dict[str, Any], figure: str) -> list[str]:
    """`python -m hmfs figures` arguments of one figure (its subcommand is the key with dashes)."""
    spec = config["figures"][figure]
    command = figure.replace("_", "-")
    if figure == "feature_maps":
        return [command, "--benchmark", spec["benchmark"], "--out", figure_paths(config)[figure],
                *_test_episode_flags(config, spec), "--episode", str(spec["episode"]),
                "--backbone-weights", weights_path(config, config["backbones"][0]), "--layers", *spec["layers"]]
    flags = [command, "--results", config["output_dir"], "--benchmark", spec["benchmark"],
             "--variants", *[f"{label}={variant}" for label, variant in spec["variants"].items()],
             "--out", figure_paths(config)[figure]]
    if figure in EPISODE_FIGURES:
        flags += _test_episode_flags(config, spec) + ["--episodes", str(spec["episodes"])]
    else:
        flags += ["--backbones", *config["backbones"], "--folds", *map(str, config["folds"])]
    if figure == "runtime":
        flags += ["--shots", *map(str, config["evaluate"]["shots"]), "--claimed-overhead", str(spec["claimed_overhead"])]
    return flags


def check_grid(config: dict[str, Any]) -> None:
    """Checks the schema cannot express; each error names the key and the fix."""
    for table, spec in config["tables"].items():
        if "test_benchmark" in spec and (spec["benchmark"], spec["test_benchmark"]) != ("coco", "pascal"):
            raise ValueError(f"tables.{table}: test_benchmark {spec['test_benchmark']!r} after training on "
                             f"{spec['benchmark']!r} is not defined; only coco -> pascal (Table 4) is")
    for figure, spec in config["figures"].items():
        if spec["benchmark"] == "fss" and spec.get("fold", 0) != 0:
            raise ValueError(f"figures.{figure}.fold must be 0 for fss (FSS-1000 has no folds)")
        trained = set(training_runs(config))
        missing = [run.key for run in figure_runs(config, figure) if run not in trained]
        if missing:
            raise ValueError(f"figures.{figure} draws from runs no table trains ({', '.join(missing[:3])}); "
                             f"add them to a table's rows (with training seed 0, which the figures read) or "
                             f"change figures.{figure}.variants")
    if config["data"]["source"] == "synthetic" and "synthetic" not in config["data"]:
        raise ValueError("data.synthetic is required when data.source is 'synthetic'")
    if config["backbone_weights"]["source"] == "pretrain" and "pretrain" not in config["backbone_weights"]:
        raise ValueError("backbone_weights.pretrain is required when backbone_weights.source is 'pretrain'")
    if config["backbone_weights"]["source"] == "pretrain" and config["data"]["source"] != "synthetic":
        raise ValueError("backbone_weights.source 'pretrain' needs data.source 'synthetic' (its classes are chosen "
                         "against the generated benchmarks); for real data use 'torchvision'")
    qualitative = config["figures"].get("qualitative")
    if qualitative and qualitative["episodes"] > config["evaluate"]["predictions"]:
        raise ValueError(f"figures.qualitative.episodes ({qualitative['episodes']}) exceeds "
                         f"evaluate.predictions ({config['evaluate']['predictions']}), the episodes each evaluation keeps")
    small = config["figures"].get("small_targets")
    kept_smallest = config["evaluate"].get("predictions_smallest", 0)
    if small and small["episodes"] > kept_smallest:
        raise ValueError(f"figures.small_targets.episodes ({small['episodes']}) exceeds evaluate.predictions_smallest "
                         f"({kept_smallest}), the smallest-target episodes each evaluation keeps")
    maps = config["figures"].get("feature_maps")
    if maps:
        length = config["evaluate"]["episodes"][maps["benchmark"]]  # None: the split's natural length
        if length is not None and maps["episode"] >= length:
            raise ValueError(f"figures.feature_maps.episode ({maps['episode']}) is not a test episode: "
                             f"evaluate.episodes.{maps['benchmark']} is {length}")
    if released_runs(config) and "released" not in config:
        rows = [f"tables.{t}.rows.{name}" for t, spec in config["tables"].items()
                for name, row in spec["rows"].items() if row.get("source", "trained") != "trained"]
        raise ValueError(f"{', '.join(rows[:3])} read released checkpoints, but the config has no `released:` section "
                         "(released: {dir: resources/released, backbone_weights: checkpoint})")
    if config["folds"] != sorted(config["folds"]):
        raise ValueError(f"folds must be in increasing order, got {config['folds']}")
