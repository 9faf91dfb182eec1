"""The files handed to a report command (hmfs.report.inputs): each placed by its path, every bad one named."""

from __future__ import annotations

from pathlib import Path

import pytest

from hmfs.pipeline import paths
from hmfs.pipeline.grid import Evaluation, Run
from hmfs.report.inputs import ResultFiles, evaluation_of, history_name, history_run, relative_name

TRAINED = Run("coco", "resnet50", "hm_aug", "fold2", seed=3)
RELEASED = Run("fss", "resnet101", "fm", "all", origin="released")


@pytest.mark.parametrize("evaluation", [Evaluation(TRAINED, 1, "coco"), Evaluation(TRAINED, 5, "pascal"),
                                        Evaluation(RELEASED, 5, "fss")])
@pytest.mark.parametrize("results", ["results", "/abs/results/synthetic", "."])
def test_an_evaluation_file_is_what_its_path_says(evaluation, results):
    path = paths.evaluation_path(results, evaluation)
    assert evaluation_of(path) == evaluation and evaluation_of(Path(path)) == evaluation
    assert history_run(f"{paths.run_dir(results, TRAINED)}/history.jsonl") == TRAINED
    assert relative_name(evaluation) == paths.evaluation_path(".", evaluation)[2:]
    assert history_name(TRAINED) == "coco/resnet50/hm_aug/fold2/seed3/history.jsonl"


@pytest.mark.parametrize("path, message", [
    ("results/coco/resnet50/hm/fold0/seed0/best.pt", "not named as an evaluation file"),
    ("results/coco/resnet50/hm/fold0/seed0/eval_on_coco_1shot.json", "not named as an evaluation file"),
    ("results/coco/resnet50/xm/fold0/seed0/eval_1shot.json", "variant 'xm' is not one of"),
    ("results/coco/resnet50/hm/fold7/seed0/eval_1shot.json", "fold 'fold7' unknown"),
    ("results/mars/resnet50/hm/fold0/seed0/eval_1shot.json", "benchmark 'mars'"),
    ("results/coco/resnet50/hm/fold0/eval_1shot.json", "not inside a run folder"),
    ("hm/fold0/seed0/eval_1shot.json", "not inside a run folder"),
])
def test_a_file_not_named_as_the_workflow_names_it_is_refused(path, message):
    with pytest.raises(ValueError, match=message):
        evaluation_of(path)


def test_result_files_name_every_missing_duplicate_extra_or_unhanded_file(tmp_path):
    def make(run: Run, shot: int, test: str = "coco") -> Path:
        path = Path(paths.evaluation_path(str(tmp_path / "results"), Evaluation(run, shot, test)))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
        return path

    one, five = make(TRAINED, 1), make(TRAINED, 5)
    gone = [tmp_path / "results" / "coco/resnet50/hm/fold0/seed0/eval_1shot.json", tmp_path / "nowhere.json"]
    with pytest.raises(FileNotFoundError, match=f"2 of the files handed in do not exist: {gone[0]}, {gone[1]}$"):
        ResultFiles([one, *gone])
    copy = tmp_path / "copy" / one.relative_to(tmp_path / "results")
    copy.parent.mkdir(parents=True)
    copy.write_text("{}")
    with pytest.raises(ValueError, match=f"{one} and {copy} are the same evaluation"):
        ResultFiles([one, copy])
    files = ResultFiles([one, five])
    assert files.find([Evaluation(TRAINED, 1, "coco")]) == [one]
    with pytest.raises(ValueError, match=f"1 of the files handed in are not part of table2 \\(x\\): {five}$"):
        files.refuse_extra(lambda e: e.shot == 1, "table2 (x)")
    files.check_complete("table2")  # nothing looked for in vain yet
    other = Evaluation(Run("coco", "resnet50", "hm_aug", "fold2", seed=4), 1, "coco")
    assert files.find([Evaluation(TRAINED, 1, "coco"), other]) is None and files.history(TRAINED) is None
    with pytest.raises(ValueError, match="table2 needs 2 files that were not handed in \\(below the results folder\\): "
                                         "coco/resnet50/hm_aug/fold2/seed4/eval_1shot.json, "
                                         "coco/resnet50/hm_aug/fold2/seed3/history.jsonl$"):
        files.check_complete("table2")
