"""The experiment grid: which runs the paper's tables need, their paths, and the flags each rule passes."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from hmfs import names
from hmfs.pipeline import argv, checks, grid, paths, rule_inputs
from hmfs.cli import build_parser

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def paper() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


@pytest.fixture(scope="module")
def synthetic() -> dict:
    return yaml.safe_load((REPO / "workflow" / "config.synthetic.yaml").read_text())


def test_paper_grid_is_exactly_what_the_tables_need(paper):
    runs = grid.training_runs(paper)
    # Per backbone: Table 1 3 variants x 4 folds, COCO fm/im/hm x 4 folds (Tables 2, 4, 5 share), FSS fm/hm.
    assert len(runs) == 2 * (12 + 12 + 2) == 52
    assert len(set(runs)) == len(runs)
    coco = {r.variant for r in runs if r.benchmark == "coco"}
    assert coco == {"fm", "im", "hm"}
    assert {r.variant for r in runs if r.benchmark == "pascal"} == {"fm", "fm_aug", "hm_aug"}
    assert {r.fold for r in runs if r.benchmark == "fss"} == {names.NO_FOLD}
    evaluations = grid.evaluations(paper)
    assert len(evaluations) == 2 * 52 + 2 * 2 * 2 * 4 == 136  # every run 1/5-shot, plus Table 4's COCO -> PASCAL
    cross = [e for e in evaluations if e.test_benchmark != e.run.benchmark]
    assert {(e.run.benchmark, e.test_benchmark, e.run.variant) for e in cross} == {("coco", "pascal", "fm"),
                                                                                  ("coco", "pascal", "hm")}


def test_synthetic_grid_has_the_same_shape_for_one_backbone_and_one_fold(synthetic):
    assert synthetic["backbones"] == ["resnet18"] and synthetic["folds"] == [0]
    # PASCAL fm / fm_aug / hm_aug, COCO fm / im / hm, FSS fm / hm; each 1- and 5-shot, plus Table 4's two.
    assert grid.summarize(synthetic) == {"trainings": 8, "released_checkpoints": 0, "evaluations": 20,
                                          "cross_domain_evaluations": 4}


def test_table4_keeps_repri_classes():
    assert grid.table4_class_names("fold0") == ["aeroplane", "boat", "chair", "diningtable", "dog", "person"]
    assert grid.table4_class_names("fold1") == ["bicycle", "bus", "horse", "sofa"]
    assert grid.table4_class_names("fold2") == ["bird", "car", "pottedplant", "sheep", "train", "tvmonitor"]
    assert grid.table4_class_names("fold3") == ["bottle", "cat", "cow", "motorbike"]
    with pytest.raises(ValueError, match="fold0-fold3"):
        grid.table4_class_names(names.NO_FOLD)


def test_paths_read_coarse_to_fine(paper):
    run = grid.Run("coco", "resnet50", "hm", "fold2")
    assert paths.evaluation_path("results", grid.Evaluation(run, 1, "coco")) == "results/coco/resnet50/hm/fold2/seed0/eval_1shot.json"
    assert paths.evaluation_path("results", grid.Evaluation(run, 5, "pascal")).endswith("fold2/seed0/eval_on_pascal_5shot.json")
    assert paths.state_dir("results", run) == "results/.state/coco/resnet50/hm/fold2/seed0"
    assert paths.run_dir("results", grid.Run("coco", "resnet50", "hm", "fold2", seed=3)) == "results/coco/resnet50/hm/fold2/seed3"
    released = grid.Run("coco", "resnet50", "hm", "fold2", "released")
    assert paths.run_dir("results", released) == "results/released/coco/resnet50/hm/fold2"  # one checkpoint: no seed folder
    for key in ("coco/resnet50/hm/fold2/seed3", "released/coco/resnet50/hm/fold2", "fss/resnet18/fm/all/seed0"):
        assert grid.parse_run_key(key).key == key
    for bad in ("coco/resnet50/hm/fold2", "released/coco/resnet50/hm/fold2/seed0", "coco/resnet50/hm/fold2/seedx"):
        with pytest.raises(ValueError, match="is not"):
            grid.parse_run_key(bad)
    assert names.variant_name("hm", True) == "hm_aug" and names.parse_variant("hm_aug") == ("hm", True)
    assert paths.weights_path(paper, "resnet101") == "resources/weights/resnet101_imagenet.pth"


def test_train_flags_parse_into_the_recipe(paper):
    run = grid.Run("pascal", "resnet101", "hm_aug", "fold3")
    args = build_parser(["train"]).parse_args(["train", *argv.train_flags(paper, run)])
    assert (args.benchmark, args.fold, args.backbone, args.masking, args.augment) == ("pascal", 3, "resnet101", "hm", True)
    assert (args.img_size, args.batch_size, args.lr, args.epochs) == (400, 20, 0.001, 2000)
    assert args.val_episodes == 1000 and args.train_episodes is None
    assert not args.restart_finished  # a finished state is never thrown away implicitly
    assert str(args.out) == "results/pascal/resnet101/hm_aug/fold3/seed0" and args.seed == 0
    assert str(args.state_dir) == "results/.state/pascal/resnet101/hm_aug/fold3/seed0"
    assert args.splits_dir is None  # HSNet's own lists
    coco = build_parser(["train"]).parse_args(["train", *argv.train_flags(paper, grid.Run("coco", "resnet50", "fm", "fold0"))])
    assert coco.batch_size == 20 and not coco.augment  # the HMFS paper: 20 for all benchmarks (HSNet: 40)


def test_evaluation_flags(paper, synthetic):
    run = grid.Run("coco", "resnet50", "fm", "fold1")
    parse = build_parser(["evaluate"]).parse_args
    cross = parse(["evaluate", *argv.evaluation_flags(paper, grid.Evaluation(run, 5, "pascal"))])
    assert cross.benchmark == "pascal" and cross.shot == 5 and cross.class_names == ["bicycle", "bus", "horse", "sofa"]
    assert str(cross.checkpoint) == "results/coco/resnet50/fm/fold1/seed0/best.pt" and cross.episodes == 1000
    fss = parse(["evaluate", *argv.evaluation_flags(synthetic, grid.Evaluation(grid.Run("fss", "resnet18", "hm", "all"), 1, "fss"))])
    assert fss.episodes is None and fss.fold == 0 and str(fss.splits_dir) == "results/synthetic/data/splits"


def test_every_rule_command_parses(synthetic):
    parser = build_parser()
    for benchmark in ("pascal", "coco", "fss"):
        parser.parse_args(["generate", *argv.generate_flags(synthetic, benchmark)])
        parser.parse_args(["prepare", *argv.prepare_flags(synthetic, benchmark)])
    parser.parse_args(["pretrain", *argv.pretrain_flags(synthetic, "resnet18")])
    for table in names.TABLES:  # the rule appends its input list: --evaluations {input.evaluations}
        args = parser.parse_args(["tables", *argv.table_flags(synthetic, table, "published.yaml"), "--evaluations",
                                  *rule_inputs.table_inputs(synthetic, table)])
        assert args.require_all and len(args.evaluations) == len(grid.table_evaluations(synthetic, table))
    handed = {"convergence": ["--histories", "h.jsonl"], "qualitative": [], "runtime": ["--evaluations", "e.json"]}
    for figure, inputs in handed.items():
        parser.parse_args(["figures", *argv.figure_flags(synthetic, figure), *inputs])


def test_figure_inputs_come_from_trained_runs(paper):
    assert len(rule_inputs.figure_inputs(paper, "convergence")) == 2 * 2 * 4  # backbones x {fm, hm} x folds
    assert len(rule_inputs.figure_inputs(paper, "qualitative")) == 3  # fm, im, hm of one fold, first backbone
    assert len(rule_inputs.figure_inputs(paper, "runtime")) == 2 * 3 * 4 * 2


def test_check_grid_names_the_bad_key(paper):
    bad = copy.deepcopy(paper)
    bad["tables"]["table2"]["test_benchmark"] = "fss"
    with pytest.raises(ValueError, match="tables.table2: test_benchmark 'fss'"):
        checks.check_grid(bad)
    bad = copy.deepcopy(paper)
    bad["figures"]["convergence"]["variants"] = {"IM*": "im_aug"}
    with pytest.raises(ValueError, match="figures.convergence"):
        checks.check_grid(bad)
    bad = copy.deepcopy(paper)
    bad["data"]["source"] = "synthetic"
    with pytest.raises(ValueError, match="data.synthetic is required"):
        checks.check_grid(bad)
    bad = copy.deepcopy(paper)
    bad["backbone_weights"].update(source="pretrain", pretrain={})
    with pytest.raises(ValueError, match="needs data.source 'synthetic'"):
        checks.check_grid(bad)
    bad = copy.deepcopy(paper)
    bad["figures"]["qualitative"]["episodes"] = 99
    with pytest.raises(ValueError, match="figures.qualitative.episodes"):
        checks.check_grid(bad)
    bad = copy.deepcopy(paper)
    bad["folds"] = [1, 0]
    with pytest.raises(ValueError, match="increasing order"):
        checks.check_grid(bad)


def test_training_seeds_per_config_and_per_table(paper):
    config = copy.deepcopy(paper)
    assert config["train"]["seeds"] == [0] and all(grid.table_seeds(config, t) == [0] for t in config["tables"])
    config["tables"]["table5"]["seeds"] = [0, 1]  # Table 5 only: its runs again with seed 1
    runs = grid.training_runs(config)
    assert len(runs) == 52 + 2 * 3 * 4  # seed 1 of COCO fm/im/hm; seed 0 shared with Tables 2 and 4
    assert {r.seed for r in runs if r.benchmark == "pascal"} == {0}
    assert grid.run_seeds(config, grid.Run("coco", "resnet50", "fm", "fold1")) == [0, 1]
    run = grid.Run("coco", "resnet50", "hm", "fold1", seed=1)
    args = build_parser(["train"]).parse_args(["train", *argv.train_flags(config, run)])
    assert args.seed == 1 and str(args.out).endswith("hm/fold1/seed1")
    flags = argv.table_flags(config, "table5", "p.yaml")
    assert flags[flags.index("--seeds") + 1: flags.index("--resamples")] == ["0", "1"]
    assert argv.table_flags(config, "table2", "p.yaml")[argv.table_flags(config, "table2", "p.yaml").index("--seeds") + 1] == "0"
    assert len(grid.evaluations(config)) == 136 + 2 * 3 * 4 * 2  # Table 5's seed-1 runs, 1- and 5-shot
    # Fig. 7 draws every seed's history; the other figures seed 0
    assert len(rule_inputs.figure_inputs(config, "convergence")) == 2 * 2 * 4 * 2
    assert all(r.seed == 0 for r in grid.figure_runs(config, "runtime"))
    config["train"]["seeds"], config["tables"]["table5"]["seeds"] = [1, 2], [1, 2]
    with pytest.raises(ValueError, match="training seed 0"):
        checks.check_grid(config)


def test_claims_flags_and_inputs(paper, synthetic):
    from hmfs.report.table_runs import parse_grid_table

    claims = yaml.safe_load((REPO / "hmfs" / "paper" / "claims.yaml").read_text())["claims"]
    args = build_parser(["claims"]).parse_args(["claims", *argv.claims_flags(paper, "p.yaml", "c.yaml"),
                                                "--evaluations", *rule_inputs.claims_evaluations(paper),
                                                "--histories", *rule_inputs.claims_histories(paper, claims)])
    assert args.require_all and len(args.evaluations) == len(grid.evaluations(paper)) and len(args.histories) == 16
    specs = {spec.name: spec for spec in map(parse_grid_table, args.table)}
    assert set(specs) == set(paper["tables"]) and specs["table5"].rows == (("FM", "fm", "trained"), ("IM", "im", "trained"),
                                                                             ("HM", "hm", "trained"))
    assert specs["table4"].test_benchmark == "pascal" and specs["table1"].seeds == (0,)
    assert args.resamples == 10000 and not args.synthetic and str(args.out_prefix) == "results/tables/claims"
    assert build_parser(["claims"]).parse_args(["claims", *argv.claims_flags(synthetic, "p", "c"),
                                                "--evaluations", "e.json"]).synthetic
    inputs = set(rule_inputs.claims_evaluations(paper)) | set(rule_inputs.claims_histories(paper, claims))
    histories = {f"results/{r.key}/history.jsonl" for r in grid.training_runs(paper)}
    evaluations = {paths.evaluation_path("results", e) for e in grid.evaluations(paper)}
    assert inputs <= histories | evaluations and evaluations <= inputs
    assert {p for p in inputs if p.endswith("history.jsonl")} == {
        f"results/coco/{b}/{v}/fold{k}/seed0/history.jsonl" for b in paper["backbones"] for v in ("fm", "hm") for k in range(4)}
