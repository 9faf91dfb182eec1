"""The command-line flags of each rule's `python -m hmfs` call, from the config (config -> flags)."""

from __future__ import annotations

from typing import Any

from hmfs.names import fold_index
from hmfs.pipeline.assets import prepare_records
from hmfs.pipeline.grid import EPISODE_FIGURES, Evaluation, Run, table4_class_names, table_rows, table_seeds
from hmfs.pipeline.paths import (checkpoint_path, evaluation_path, figure_paths, predictions_path, prepared_marker, run_dir,
                                 splits_dir, state_dir, synthetic_summary, verified_marker, weights_path)

def uses_backbone_weights(config: dict[str, Any], run: Run) -> bool:
    """Whether a run's evaluation reads the backbone_weights file (released files carry their own backbone)."""
    return run.origin == "trained" or config["released"]["backbone_weights"] == "imagenet"


def verify_flags(config: dict[str, Any], benchmark: str) -> list[str]:
    return ["--benchmark", benchmark, "--data-root", config["data"]["root"],
            "--summary", verified_marker(config, benchmark)]


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


def training_gpus(config: dict[str, Any], benchmark: str) -> int:
    """GPUs of one training job of `benchmark`: resources.train.gpu, a number or one per benchmark."""
    gpu = config["resources"]["train"]["gpu"]
    return int(gpu[benchmark] if isinstance(gpu, dict) else gpu)


def training_ranks(config: dict[str, Any], benchmark: str) -> int:
    """Training processes of one job: one per GPU (with device cpu: as many gloo processes), at least one."""
    return max(1, training_gpus(config, benchmark))


def train_launcher(config: dict[str, Any], benchmark: str) -> list[str]:
    """What starts `-m hmfs ... train`: python, or torchrun with one process per GPU on the job's node."""
    ranks = training_ranks(config, benchmark)
    if ranks == 1:
        return ["python"]
    return ["torchrun", "--standalone", f"--nproc-per-node={ranks}"]


def train_flags(config: dict[str, Any], run: Run) -> list[str]:
    schedule, train = config["train"][run.benchmark], config["train"]
    flags = _data_flags(config, run.benchmark) + ["--fold", str(fold_index(run.fold))] + _model_flags(config, run)
    flags += ["--img-size", str(train["img_size"]), "--batch-size", str(schedule["batch_size"]),
              "--precision", train["precision"],
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
    for key in ("patience", "min_epochs"):
        if schedule.get(key) is not None:
            flags += [f"--{key.replace('_', '-')}", str(schedule[key])]
    if train.get("cache_features"):
        flags.append("--cache-features")
    if not train.get("tensorboard", True):
        flags.append("--no-tensorboard")
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
    flags += ["--precision", settings["precision"]]
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
    # The evaluation files come from the rule's input list (`--evaluations {input.evaluations}`), not from here.
    flags = ["--table", table, "--require-all", "--benchmark", spec["benchmark"],
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


def claims_flags(config: dict[str, Any], published: str, claims_file: str) -> list[str]:
    """`python -m hmfs claims`: every table's rows and seeds, the paper's numbers, the bootstrap (the files it
    reads come from the rule's input list: `--evaluations {input.evaluations} --histories {input.histories}`)."""
    flags = ["--require-all", "--claims", claims_file, "--published", published,
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
    flags = [command, "--benchmark", spec["benchmark"],
             "--variants", *[f"{label}={variant}" for label, variant in spec["variants"].items()],
             "--out", figure_paths(config)[figure]]
    if figure in EPISODE_FIGURES:  # the prediction files below --results; convergence and runtime get their rule's inputs
        flags += ["--results", config["output_dir"], *_test_episode_flags(config, spec), "--episodes", str(spec["episodes"])]
    else:
        flags += ["--backbones", *config["backbones"], "--folds", *map(str, config["folds"])]
    if figure == "runtime":
        flags += ["--shots", *map(str, config["evaluate"]["shots"]), "--claimed-overhead", str(spec["claimed_overhead"])]
    return flags
