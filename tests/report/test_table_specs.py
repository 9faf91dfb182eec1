"""One spec per paper table (hmfs.report.table_specs): every table has one, and each reads its columns and printed numbers as the paper lays them out."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hmfs import names
from hmfs.report import table_specs
from hmfs.report.table_specs import table_spec

PUBLISHED = yaml.safe_load((Path(__file__).resolve().parents[2] / "hmfs" / "paper" / "published_results.yaml").read_text())
FOLDS = [f"fold{k}" for k in range(names.NUM_FOLDS)]


def test_every_table_has_one_spec_named_as_in_the_text():
    assert tuple(table_specs.SPECS) == names.TABLES
    for name in names.TABLES:
        spec = table_spec(name)
        assert spec.name == name and spec.label == f"Table {name[-1]}" and spec.title.startswith(f"{spec.label}: ")
    with pytest.raises(ValueError, match="unknown table 'table9'; accepted: table1, table2"):
        table_spec("table9")
    with pytest.raises(ValueError, match="paper_row must be"):
        table_specs.TableSpec("table6", "Table 6: x", True, True, "rows")


@pytest.mark.parametrize("name, folds, columns", [
    ("table1", FOLDS, [*FOLDS, "mIoU", "FB-IoU"]),
    ("table2", ["fold0"], ["fold0", "mIoU", "FB-IoU"]),
    ("table3", [names.NO_FOLD], ["mIoU"]),
    ("table4", FOLDS, [*FOLDS, "mIoU"]),  # the paper prints no FB-IoU across domains
    ("table5", [names.NO_FOLD], ["mIoU", "FB-IoU"]),  # no fold columns on a benchmark without folds
])
def test_columns(name, folds, columns):
    assert table_spec(name).columns(folds) == columns


def test_printed_numbers_read_per_table():
    fss, coco = table_spec("table3"), table_spec("table2")
    hmfs = PUBLISHED["table3"]["resnet50"]["HMFS"]
    assert fss.printed(hmfs, 1) == [87.1] and fss.printed(hmfs, 5) == [88.0] and fss.printed(hmfs, 2) is None
    assert fss.printed(PUBLISHED["table3"]["resnet50"]["FSOT"], 5) == [83.8]  # a literature row: the bare list
    assert fss.printed_folds([87.1]) == ([], None) and fss.select_folds([87.1], [names.NO_FOLD]) == [87.1]
    assert fss.paper_mean([87.1], [0, 1, 2, 3]) == 87.1 and fss.paper_mean(None, [0]) is None
    row = coco.printed(PUBLISHED["table2"]["resnet50"]["HMFS"], 1)
    assert row == [39.3, 45.7, 46.9, 43.7, 43.9, 70.8] and coco.printed({"1shot": None}, 1) is None
    assert coco.printed_folds(row) == ([39.3, 45.7, 46.9, 43.7], 43.9)
    assert coco.select_folds(row, ["fold1", "fold3"]) == [45.7, 43.7, 43.9, 70.8]  # the mean and FB-IoU as printed
    assert coco.paper_mean(row, [0, 1, 2, 3]) == 43.9  # all folds: the printed mean
    assert coco.paper_mean(row, [0, 1]) == pytest.approx((39.3 + 45.7) / 2)  # fewer: the mean of those folds
    assert coco.paper_mean(None, [0]) is None
