"""The paper's claims checked one by one (hmfs.report.claims, claim_rules, claim_checks): the data file, the verdict
rule, each kind of claim on the files handed in, the forest plot."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from hmfs import names
from hmfs.pipeline import grid
from hmfs.report import claim_checks, claim_rules, claims_format, inputs
from hmfs.cli import main
from hmfs.pipeline.grid import Run
from hmfs.report.inputs import ResultFiles
from hmfs.report.table_runs import GridTable
from hmfs.report.uncertainty import Settings
from tests.report.test_tables import evaluation_files

REPO = Path(__file__).resolve().parents[2]
CLAIMS = REPO / "hmfs" / "paper" / "claims.yaml"
HISTORY = inputs.HISTORY
PUBLISHED = REPO / "hmfs" / "paper" / "published_results.yaml"


def config(name: str) -> dict:
    return yaml.safe_load((REPO / name).read_text())


@pytest.mark.parametrize("low, high, expect, null, margin, verdict", [
    (0.5, 2.0, "greater", 0.0, None, "supported"),
    (-2.0, -0.5, "greater", 0.0, None, "contradicted"),
    (-0.5, 2.0, "greater", 0.0, None, "inconclusive"),
    (0.0, 2.0, "greater", 0.0, None, "inconclusive"),  # touching zero is covering it
    (-2.0, -0.5, "less", 0.0, None, "supported"),
    (0.5, 2.0, "less", 0.0, None, "contradicted"),
    (-0.4, 0.6, "equal", 0.0, 1.0, "supported"),  # on par: inside +-margin
    (-0.4, 1.6, "equal", 0.0, 1.0, "inconclusive"),
    (0.2, 0.6, "equal", 0.0, 1.0, "contradicted"),  # a difference, however small
    (1.5, 9.0, "greater", 1.0, None, "supported"),  # ratios: no difference is 1x
    (0.5, 3.0, "greater", 1.0, None, "inconclusive"),
    (0.2, 0.9, "greater", 1.0, None, "contradicted"),
])
def test_verdict_rule(low, high, expect, null, margin, verdict):
    assert claim_rules.verdict(low, high, expect, null, margin) == verdict


def test_verdict_rule_needs_a_direction_and_a_margin_for_parity():
    with pytest.raises(ValueError, match="expect must be"):
        claim_rules.verdict(0, 1, "bigger")
    with pytest.raises(ValueError, match="margin"):
        claim_rules.verdict(0, 1, "equal")


def test_claims_file_parses_and_every_claim_names_inputs_the_grid_produces(tmp_path):
    loaded = claim_rules.load_claims(CLAIMS)
    assert {c["kind"] for c in loaded} == set(claim_rules.KINDS)
    assert {c["table"] for c in loaded if c["kind"] == "paired_difference"} == set(names.TABLES)
    # no files handed in: every claim lists the files it waits for
    for name in ("config.yaml", "workflow/config.synthetic.yaml"):
        cfg = config(name)
        for claim in loaded:
            rows = {row for row, _, _ in grid.table_rows(cfg, claim["table"])}
            assert {claim["a"], claim["b"]} <= rows, (name, claim["id"])
        specs = {t: GridTable(t, s["benchmark"], s.get("test_benchmark", s["benchmark"]),
                              tuple(grid.table_seeds(cfg, t)), tuple(grid.table_rows(cfg, t)))
                 for t, s in cfg["tables"].items()}
        checker = claim_checks.Checker(ResultFiles(), specs, cfg["folds"], cfg["evaluate"]["shots"],
                                       yaml.safe_load(PUBLISHED.read_text()), Settings(resamples=100))
        results, skipped = claim_checks.check_claims(loaded, checker, cfg["backbones"])
        assert skipped == [] and len(results) == (7 * 2 + 2 * 2 + 1 + 2) * len(cfg["backbones"])
        produced = {inputs.relative_name(e) for e in grid.evaluations(cfg)}  # below the results folder
        produced |= {inputs.history_name(r) for r in grid.training_runs(cfg)}
        assert checker.files.not_handed and set(checker.files.not_handed) <= produced
        for result in results:  # every input a claim waits for is a file the workflow makes
            reason = result.detail["not_evaluated"]
            assert result.verdict == claims_format.NOT_EVALUATED and reason.startswith("missing ")
            assert set(reason[len("missing "):].split(", ")) <= produced, reason
    released = config("config.released.yaml")  # released weights: HM vs FM of Tables 1-4 where both were released
    specs = {t: GridTable(t, s["benchmark"], s.get("test_benchmark", s["benchmark"]), (0,),
                          tuple(grid.table_rows(released, t))) for t, s in released["tables"].items()}
    checker = claim_checks.Checker(ResultFiles(), specs, [0, 1, 2, 3], [1, 5], {}, Settings(resamples=100))
    results, skipped = claim_checks.check_claims(loaded, checker, ["resnet50"])
    assert {r.claim for r in results} == {"table2_hmfs_vs_hsnet", "table3_hmfs_vs_hsnet", "table4_hmfs_vs_hsnet_domain_shift",
                                         "small_targets_gain", "small_targets_larger_gain", "runtime_overhead"}
    assert all(r.evidence == "released" for r in results) and any("convergence_speedup" in s for s in skipped)


def test_paper_values_come_from_the_published_tables():
    loaded = {c["id"]: c for c in claim_rules.load_claims(CLAIMS)}
    published = yaml.safe_load(PUBLISHED.read_text())
    checker = claim_checks.Checker(ResultFiles(), {}, [0, 1, 2, 3], [1, 5], published, Settings())
    assert checker.paper_value(loaded["table2_hmfs_vs_hsnet"], "resnet50", 1) == pytest.approx(43.9 - 39.2)
    assert checker.paper_value(loaded["table5_hm_vs_im"], "resnet50", 1) == pytest.approx(0.4)
    assert checker.paper_value(loaded["table3_hmfs_vs_hsnet"], "resnet101", 5) == pytest.approx(0.0)
    assert claim_rules.expected(loaded["table1_hmfs_vs_hsnet"], "resnet101", 1) == "equal"
    assert claim_rules.expected(loaded["table1_hmfs_vs_hsnet"], "resnet50", 5) == "less"
    assert checker.paper_value(loaded["convergence_speedup"], "resnet50", None) == 13
    assert checker.paper_value(loaded["runtime_overhead"], "resnet50", 1) == pytest.approx(40.0)
    two_folds = claim_checks.Checker(ResultFiles(), {}, [0, 1], [1], published, Settings())
    assert two_folds.paper_value(loaded["table2_hmfs_vs_hsnet"], "resnet50", 1) == pytest.approx(
        (39.3 + 45.7) / 2 - (36.3 + 43.1) / 2)  # fewer folds: the mean of the paper's values for those folds


def test_a_bad_claims_file_is_named(tmp_path):
    entry = copy.deepcopy(claim_rules.load_claims(CLAIMS)[0])
    for change, message in ((lambda c: c.update(kind="vibes"), "kind must be"),
                            (lambda c: c.update(expect="equal", margin=None) or c.pop("margin"), "equal needs a margin"),
                            (lambda c: c.pop("source"), "lacks source")):
        bad = copy.deepcopy(entry)
        change(bad)
        (tmp_path / "c.yaml").write_text(yaml.safe_dump({"claims": [bad]}))
        with pytest.raises(ValueError, match=message):
            claim_rules.load_claims(tmp_path / "c.yaml")


def test_epochs_to_fraction():
    history = [{"val_miou": v} for v in (0.0, 10.0, 19.0, 20.0, 18.0)]
    assert claim_checks.epochs_to_fraction(history, 0.95) == 3 and claim_checks.epochs_to_fraction(history, 1.0) == 4
    assert claim_checks.epochs_to_fraction([{"val_miou": 0.0}] * 3, 0.95) is None


def evaluation(fg_iou: np.ndarray, fraction: np.ndarray, ms: float, classes: int = 4) -> dict:
    """An evaluation whose episode i has foreground IoU fg_iou[i] and query foreground fraction fraction[i]."""
    from tests.report.test_uncertainty import evaluation as make

    class_id = np.arange(len(fg_iou)) % classes
    return make(fg_iou, class_id, tuple(range(classes)), fraction, ms=ms)


def test_claims_table_on_constructed_runs(tmp_path):
    """HM gains on small targets only, IM matches FM, FM converges in 10 epochs and HM in 2, HM is 40% slower."""
    results = tmp_path / "results"
    rng = np.random.default_rng(0)
    n = 90
    fraction = np.tile([0.01, 0.05, 0.3], n // 3)  # small, middle, large targets
    for fold in ("fold0", "fold1"):
        base = rng.uniform(0.3, 0.7, n)
        ious = {"fm": base, "im": base, "hm": np.where(fraction < 0.02, base + 0.2, base)}
        for variant, ms in (("fm", 10.0), ("im", 10.5), ("hm", 14.0)):
            for shot in (1, 5):
                path = results / Run("coco", "r50", variant, fold).key / f"eval_{shot}shot.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(evaluation(ious[variant], fraction, ms)))
            epochs = 10 if variant == "fm" else 2
            curve = [min(1.0, (e + 1) / epochs) * 40 for e in range(12)]
            (path.parent / "history.jsonl").write_text("".join(json.dumps({"epoch": e, "val_miou": v}) + "\n"
                                                               for e, v in enumerate(curve)))
    out = tmp_path / "claims"
    assert main(["claims", "--evaluations", *evaluation_files(results, "eval_1shot.json"),  # the 1-shot claims' files
                 "--histories", *evaluation_files(results, HISTORY),
                 "--require-all", "--claims", str(CLAIMS), "--published", str(PUBLISHED),
                 "--backbones", "r50", "--folds", "0", "1", "--shots", "1", "--resamples", "500",
                 "--table", "table2", "coco", "coco", "0", "HSNet=fm", "HMFS=hm",
                 "--table", "table5", "coco", "coco", "0", "FM=fm", "IM=im", "HM=hm",
                 "--synthetic", "--out-prefix", str(out)]) == 0
    numbers = json.loads(out.with_suffix(".json").read_text())
    by_id = {r["claim"]: r for r in numbers["results"]}
    assert by_id["table2_hmfs_vs_hsnet"]["verdict"] == "supported" and by_id["table2_hmfs_vs_hsnet"]["low"] > 0
    assert by_id["table5_im_vs_fm"]["point"] == 0 and by_id["table5_im_vs_fm"]["verdict"] == "inconclusive"
    assert by_id["table5_hm_vs_im"]["verdict"] == "supported"
    small = by_id["small_targets_gain"]
    assert small["verdict"] == "supported" and small["point"] > 15  # +0.2 IoU on the small third, nothing else
    assert [b["point"] for b in small["detail"]["bins"]][1:] == [0.0, 0.0]
    assert by_id["small_targets_larger_gain"]["verdict"] == "supported"
    speed = by_id["convergence_speedup"]
    assert speed["point"] == pytest.approx(5.0) and speed["paper"] == 13 and speed["verdict"] == "supported"
    assert speed["paper_inside"] is False and speed["runs"] == 2
    runtime = by_id["runtime_overhead"]
    assert runtime["point"] == pytest.approx(40.0) and runtime["verdict"] == "supported"
    md = out.with_suffix(".md").read_text()
    assert "verdicts about the stand-in" in md and "supported (stand-in)" in md and "Verdict rule" in md
    assert "Not checked: table1_hmfs_vs_hsnet" in md  # this grid has no Table 1
    for ext in ("csv", "tex", "html"):
        assert out.with_suffix(f".{ext}").stat().st_size > 500

    png = tmp_path / "forest.png"
    assert main(["forest", "--claims", str(out.with_suffix(".json")), "--out", str(png)]) == 0
    assert Image.open(png).size[1] > 300
    assert len(json.loads(png.with_suffix(".json").read_text())["rows"]) == len(numbers["results"])


def claims_args(results: Path, out: Path, *extra: str) -> list[str]:
    """Table 2's claims, fold 0, 1-shot, on every evaluation file below `results`."""
    return ["claims", "--evaluations", *evaluation_files(results), "--claims", str(CLAIMS), "--published", str(PUBLISHED),
            "--backbones", "r50", "--folds", "0", "--shots", "1", "--resamples", "200",
            "--table", "table2", "coco", "coco", "0", "HSNet=fm", "HMFS=hm", "--out-prefix", str(out), *extra]


def test_a_size_bin_without_episodes_leaves_that_claim_not_evaluated(tmp_path):
    results = tmp_path / "results"
    for variant in ("fm", "hm"):
        path = results / Run("coco", "r50", variant, "fold0").key / "eval_1shot.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(evaluation(np.full(8, 0.5), np.full(8, 0.1), 10.0)))  # one size only
    out = tmp_path / "claims"
    assert main(claims_args(results, out)) == 0
    by_id = {r["claim"]: r for r in json.loads(out.with_suffix(".json").read_text())["results"]}
    assert by_id["small_targets_gain"]["verdict"] == claims_format.NOT_EVALUATED
    assert "holds no episode" in by_id["small_targets_gain"]["detail"]["not_evaluated"]
    assert by_id["table2_hmfs_vs_hsnet"]["verdict"] == "inconclusive"  # identical runs
    assert by_id["runtime_overhead"]["verdict"] == "inconclusive"  # one fold: a range over one run


def test_claims_name_the_files_not_handed_in_and_refuse_others(tmp_path, caplog):
    results = tmp_path / "results"
    for variant in ("fm", "hm"):
        path = results / Run("coco", "r50", variant, "fold0").key / "eval_1shot.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(evaluation(np.full(9, 0.5), np.tile([0.01, 0.05, 0.3], 3), 10.0)))
    hm = "coco/r50/hm/fold0/seed0/eval_1shot.json"
    args = claims_args(results, tmp_path / "claims")
    args.remove(str(results / hm))  # HMFS's evaluation not handed in
    assert main(args) == 0
    by_id = {r["claim"]: r for r in json.loads((tmp_path / "claims.json").read_text())["results"]}
    assert by_id["table2_hmfs_vs_hsnet"]["detail"]["not_evaluated"] == f"missing {hm}"
    assert main([*args, "--require-all"]) == 2
    assert (f"the claims table needs 2 files that were not handed in (below the results folder): {hm}, "
            "coco/r50/fm/fold0/seed0/history.jsonl") in caplog.text  # and the convergence claim's history
    other = results / Run("pascal", "r50", "fm", "fold0").key / "eval_1shot.json"  # no table of these claims has it
    other.parent.mkdir(parents=True)
    other.write_text((results / hm).read_text())
    assert main(claims_args(results, tmp_path / "claims")) == 2
    assert "1 of the files handed in are not part of the claims' tables: table2 (coco tested on coco;" in caplog.text
    assert str(other) in caplog.text
