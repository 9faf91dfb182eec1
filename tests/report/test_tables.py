"""Tables 1-5 from the evaluation files handed in: the paper's layout, paper numbers and differences, missing runs
shown as missing (an error with --require-all), files not handed in or not of the table named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hmfs.cli import main
from hmfs.pipeline.grid import Evaluation, Run
from hmfs.report.inputs import ResultFiles
from hmfs.report.table_runs import GridTable, parse_rows
from hmfs.report.table_specs import table_spec
from hmfs.report.tables import MISSING, build_table

REPO = Path(__file__).resolve().parents[2]
PUBLISHED = REPO / "hmfs" / "paper" / "published_results.yaml"


def per_episode(miou: float, fb_iou: float, episodes: int = 4) -> dict:
    """Evaluation fields whose per-episode records give exactly `miou` and `fb_iou` (one decimal each):
    `episodes` identical episodes of class 0, counts out of 1000 pixels (so every interval has zero width)."""
    inter_fg, inter_bg = round(10 * miou), round(10 * (2 * fb_iou - miou))
    return {"miou": miou, "fb_iou": fb_iou, "class_iou": {"0": miou}, "episodes": episodes,
            "per_episode": {"episode": list(range(episodes)), "class_id": [0] * episodes,
                            "intersection": [[inter_bg, inter_fg]] * episodes, "union": [[1000, 1000]] * episodes,
                            "query_fg_fraction": [0.1] * episodes}}


def write_eval(results: Path, run: Run, shot: int, miou: float, fb_iou: float, test: str | None = None) -> Path:
    path = results / run.key / f"{Evaluation(run, shot, test or run.benchmark).name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**per_episode(miou, fb_iou), "timings": {"ms_per_episode": 10.0}}))
    return path


def evaluation_files(results: Path, pattern: str = "eval_*.json") -> list[str]:
    """Every evaluation file below `results`: what a rule would hand in (`--evaluations`)."""
    return sorted(str(p) for p in results.rglob(pattern))


def csv_points(text: str) -> tuple[str, dict[tuple[str, str], list[str]]]:
    """The header up to the last point column, and per (method, source) the point values (the CSV's
    interval, seed and checkpoint columns follow them)."""
    header, *lines = text.splitlines()
    end = next(i for i, name in enumerate(header.split(",")) if name.endswith("_low"))
    return ",".join(header.split(",")[:end]), {tuple(line.split(",")[1:3]): line.split(",")[3:end] for line in lines}


def table1_args(results: Path, out: Path, *extra: str) -> list[str]:
    return ["tables", "--table", "table1", "--evaluations", *evaluation_files(results), "--benchmark", "pascal",
            "--backbones", "resnet50", "--rows", "HSNet=fm", "HSNet*=fm_aug", "HMFS*=hm_aug", "--out-prefix", str(out),
            *extra]


def test_real_table_puts_paper_numbers_and_differences_next_to_reproduced_rows(tmp_path):
    results = tmp_path / "results"
    for k, value in enumerate([60.0, 70.0, 61.0, 65.0]):
        write_eval(results, Run("pascal", "resnet50", "hm_aug", f"fold{k}"), 1, value, 75.0 + k)
    write_eval(results, Run("pascal", "resnet50", "fm", "fold0"), 1, 64.3, 76.0)  # the other folds missing
    assert main(table1_args(results, tmp_path / "t1", "--published", str(PUBLISHED))) == 0
    header, rows = csv_points((tmp_path / "t1.csv").read_text())
    assert header.startswith("backbone,method,source,1shot_fold0,1shot_fold1,1shot_fold2,1shot_fold3,1shot_mIoU,1shot_FB-IoU,5shot_fold0")
    hmfs_mine, hmfs_paper, hmfs_diff = rows[("HMFS*", "reproduced")], rows[("HMFS*", "paper")], rows[("HMFS*", "difference")]
    assert [float(v) for v in hmfs_mine[:6]] == [60.0, 70.0, 61.0, 65.0, 64.0, 76.5]
    assert [float(v) for v in hmfs_paper[:6]] == [69.0, 70.9, 59.3, 61.0, 65.0, 76.5]
    assert float(hmfs_diff[0]) == pytest.approx(-9.0) and float(hmfs_diff[4]) == pytest.approx(-1.0)
    assert hmfs_mine[6:] == [""] * 6  # 5-shot not evaluated: empty, not zero
    hsnet = rows[("HSNet", "reproduced")]
    assert float(hsnet[0]) == 64.3 and hsnet[1:6] == [""] * 5  # mean needs every fold
    assert ("PFENet", "literature") in rows and ("CyCTR", "literature") in rows
    md = (tmp_path / "t1.md").read_text()
    assert f"| resnet50 | HSNet (reproduced) | 64.3 ± 0.0 | {MISSING} |" in md  # identical episodes: zero width
    assert "printed mean 64.3 differs from the average of its printed folds (64.05)" in md  # HSNet*, flagged
    assert "Made from 5 of 24 evaluation files" in md
    tex = (tmp_path / "t1.tex").read_text()
    assert "\\begin{tabular}" in tex and "HMFS$^*$ (reproduced)" in tex
    assert " -9.0$^\\dagger$ " in tex  # the paper's 69.0 lies outside the (zero-width) reproduced interval
    assert "<table>" in (tmp_path / "t1.html").read_text()


def test_synthetic_table_shows_only_reproduced_rows_and_says_so(tmp_path):
    results = tmp_path / "results"
    for variant in ("fm", "hm"):
        for shot in (1, 5):
            write_eval(results, Run("fss", "resnet18", variant, "all"), shot, 50.0 + shot, 70.0)
    assert main(["tables", "--table", "table3", "--evaluations", *evaluation_files(results), "--benchmark", "fss",
                 "--backbones", "resnet18", "--rows", "HSNet=fm", "HMFS=hm", "--synthetic", "--require-all",
                 "--out-prefix", str(tmp_path / "t3")]) == 0
    md = (tmp_path / "t3.md").read_text()
    assert "synthetic benchmark" in md and "not comparable to the paper" in md
    assert "| resnet18 | HSNet (reproduced) | 51.0 ± 0.0 | 55.0 ± 0.0 |" in md
    assert "| resnet18 | HMFS − HSNet (paired) | +0.0 ± 0.0 | +0.0 ± 0.0 |" in md
    assert "paper" not in md.split("\n\n")[1].lower() and "FSOT" not in md


def test_table4_reads_the_cross_domain_files(tmp_path, caplog):
    results = tmp_path / "results"
    for k in range(4):
        write_eval(results, Run("coco", "resnet50", "hm", f"fold{k}"), 1, 40.0 + k, 60.0, test="pascal")
        write_eval(results, Run("coco", "resnet50", "hm", f"fold{k}"), 1, 99.0, 99.0)  # COCO's own: not Table 4's
    table = GridTable("table4", "coco", "pascal", (0,), tuple(parse_rows(["HMFS=hm"])))
    files = ResultFiles(evaluation_files(results, "eval_on_pascal_*.json"))
    rows, used = build_table(table_spec("table4"), table, files, ["resnet50"], [f"fold{k}" for k in range(4)], [1], None)
    assert rows[0].values[1] == [40.0, 41.0, 42.0, 43.0, 41.5] and len(used) == 4
    # handed COCO's own evaluations too: each one named, nothing written
    assert main(["tables", "--table", "table4", "--evaluations", *evaluation_files(results), "--benchmark", "coco",
                 "--test-benchmark", "pascal", "--backbones", "resnet50", "--shots", "1", "--rows", "HMFS=hm",
                 "--synthetic", "--out-prefix", str(tmp_path / "t4")]) == 2
    assert "4 of the files handed in are not part of table4 (coco tested on pascal;" in caplog.text
    assert f"{results}/coco/resnet50/hm/fold0/seed0/eval_1shot.json" in caplog.text and not (tmp_path / "t4.md").exists()


def test_bad_arguments_are_named(tmp_path, caplog):
    write_eval(tmp_path, Run("pascal", "resnet50", "fm", "fold0"), 1, 64.3, 76.0)
    assert main(table1_args(tmp_path, tmp_path / "t", "--published", str(tmp_path / "nope.yaml"))) == 2
    assert "published results not found" in caplog.text
    with pytest.raises(ValueError, match="NAME=VARIANT"):
        parse_rows(["HSNet"])


def test_a_file_handed_in_that_does_not_exist_is_named(tmp_path, caplog):
    there = write_eval(tmp_path, Run("pascal", "resnet50", "fm", "fold0"), 1, 64.3, 76.0)
    gone = tmp_path / Run("pascal", "resnet50", "fm", "fold1").key / "eval_1shot.json"
    args = table1_args(tmp_path, tmp_path / "t", "--synthetic")
    args.insert(args.index("--evaluations") + 1, str(gone))
    assert main(args) == 2
    assert f"1 of the files handed in do not exist: {gone}" in caplog.text and str(there) not in caplog.text


def test_require_all_names_each_cell_whose_file_was_not_handed_in(tmp_path, caplog):
    results = tmp_path / "results"
    for k in (0, 2, 3):  # fold 1 of HSNet, 1-shot: not handed in
        write_eval(results, Run("pascal", "resnet50", "fm", f"fold{k}"), 1, 60.0, 75.0)
    args = ["tables", "--table", "table1", "--evaluations", *evaluation_files(results), "--benchmark", "pascal",
            "--backbones", "resnet50", "--shots", "1", "--rows", "HSNet=fm", "--synthetic", "--out-prefix",
            str(tmp_path / "t")]
    assert main(args) == 0 and "Made from 3 of 4 evaluation files" in (tmp_path / "t.md").read_text()  # by hand: a –
    assert main([*args, "--require-all", "--out-prefix", str(tmp_path / "strict")]) == 2
    assert ("table1 needs 1 files that were not handed in (below the results folder): "
            "pascal/resnet50/fm/fold1/seed0/eval_1shot.json") in caplog.text
    assert not (tmp_path / "strict.md").exists()


def test_real_table3_and_table4_use_the_papers_columns(tmp_path):
    results = tmp_path / "results"
    for shot, value in ((1, 86.0), (5, 88.0)):
        write_eval(results, Run("fss", "resnet50", "hm", "all"), shot, value, 90.0)
    assert main(["tables", "--table", "table3", "--evaluations", *evaluation_files(results), "--benchmark", "fss",
                 "--backbones", "resnet50", "--rows", "HSNet=fm", "HMFS=hm", "--published", str(PUBLISHED),
                 "--out-prefix", str(tmp_path / "t3")]) == 0
    _, rows = csv_points((tmp_path / "t3.csv").read_text())
    assert rows[("HMFS", "reproduced")] == ["86.0000", "88.0000"] and rows[("HMFS", "paper")] == ["87.1000", "88.0000"]
    assert float(rows[("HMFS", "difference")][0]) == pytest.approx(-1.1) and rows[("HSNet", "reproduced")] == ["", ""]
    assert rows[("FSOT", "literature")] == ["82.5000", "83.8000"]

    for k in range(4):
        write_eval(results, Run("coco", "resnet50", "fm", f"fold{k}"), 1, 50.0, 60.0, test="pascal")
    assert main(["tables", "--table", "table4", "--evaluations", *evaluation_files(results, "eval_on_*.json"),
                 "--benchmark", "coco", "--test-benchmark", "pascal", "--backbones", "resnet50", "--shots", "1",
                 "--rows", "HSNet=fm", "--published", str(PUBLISHED), "--out-prefix", str(tmp_path / "t4")]) == 0
    header, rows = csv_points((tmp_path / "t4.csv").read_text())
    assert header == "backbone,method,source,1shot_fold0,1shot_fold1,1shot_fold2,1shot_fold3,1shot_mIoU"
    assert rows[("HSNet", "paper")] == ["45.4000", "61.2000", "63.4000", "75.9000", "61.6000"]
    assert float(rows[("HSNet", "difference")][4]) == pytest.approx(50.0 - 61.6)
    assert "printed mean 61.6 differs" in (tmp_path / "t4.md").read_text()  # table4 resnet50 HSNet, flagged


def test_reduced_folds_keep_paper_folds_aligned_and_leave_mean_differences_blank(tmp_path):
    results = tmp_path / "results"
    for k, value in ((1, 70.0), (3, 60.0)):
        write_eval(results, Run("pascal", "resnet50", "fm", f"fold{k}"), 1, value, 75.0)
    assert main(["tables", "--table", "table1", "--evaluations", *evaluation_files(results), "--benchmark", "pascal",
                 "--backbones", "resnet50", "--folds", "3", "1", "--shots", "1", "--rows", "HSNet=fm", "--published",
                 str(PUBLISHED), "--out-prefix", str(tmp_path / "t")]) == 0
    header, rows = csv_points((tmp_path / "t.csv").read_text())
    assert header == "backbone,method,source,1shot_fold1,1shot_fold3,1shot_mIoU,1shot_FB-IoU"
    assert rows[("HSNet", "reproduced")] == ["70.0000", "60.0000", "65.0000", "75.0000"]
    assert rows[("HSNet", "paper")] == ["70.7000", "60.5000", "64.0000", "76.7000"]  # folds 1 and 3 of the paper
    diff = rows[("HSNet", "difference")]
    assert float(diff[0]) == pytest.approx(-0.7) and float(diff[1]) == pytest.approx(-0.5) and diff[2:] == ["", ""]
    assert "Only folds 1, 3 were run" in (tmp_path / "t.md").read_text()
