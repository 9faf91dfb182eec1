"""Config errors in one line: the key's dotted path, the closest valid key for a typo, the schema's complaint otherwise."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from hmfs.pipeline.config_check import check_config_schema

REPO = Path(__file__).resolve().parents[2]
PAPER = yaml.safe_load((REPO / "config.yaml").read_text())


@pytest.mark.parametrize("change, message", [
    (lambda c: c.update(trian=c.pop("train")), "config key `trian` is not known: did you mean `train`?"),
    (lambda c: c["train"]["pascal"].update(patiance=5), "config key `train.pascal.patiance` is not known: did you mean `patience`?"),
    (lambda c: c["resources"]["train"].update(gpus=2), "config key `resources.train.gpus` is not known: did you mean `gpu`?"),
    (lambda c: c["evaluate"].update(zzz=1), "config key `evaluate.zzz` is not known: allowed here: "),
    (lambda c: c["train"]["coco"].update(lr="fast"), "config key `train.coco.lr`: 'fast' is not of type 'number'"),
    (lambda c: c.update(backbones=["resnet51"]), "config key `backbones.0`: 'resnet51' is not one of"),
])
def test_a_bad_config_is_one_line_naming_the_key(change, message):
    config = copy.deepcopy(PAPER)
    check_config_schema(copy.deepcopy(config))
    change(config)
    with pytest.raises(ValueError) as error:
        check_config_schema(config)
    assert message in str(error.value) and "\n" not in str(error.value)
