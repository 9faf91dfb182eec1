"""One list per name (hmfs.names): the config schema, the workflow's wildcards, the model, the data and the report agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from hmfs import names
from hmfs.pipeline.grid import Run

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())


def _enums(node, path=""):
    """Every (path, enum list) in the schema."""
    if isinstance(node, dict):
        if "enum" in node:
            yield path, node["enum"]
        for key, value in node.items():
            yield from _enums(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _enums(value, f"{path}/{i}")


def test_the_schema_enums_are_the_name_lists():
    defs = SCHEMA["$defs"]
    assert tuple(defs["benchmark"]["enum"]) == names.BENCHMARKS
    assert tuple(defs["masking"]["enum"]) == names.MASKINGS
    assert tuple(defs["backbone"]["enum"]) == names.BACKBONES
    assert tuple(defs["row"]["properties"]["source"]["enum"]) == (*names.ORIGINS, "both")
    assert tuple(SCHEMA["properties"]["tables"]["properties"]) == names.TABLES
    folds = [enum for path, enum in _enums(SCHEMA) if path.endswith(("/folds/items", "/fold"))]
    assert len(folds) >= 3 and all(enum == list(range(names.NUM_FOLDS)) for enum in folds)
    variant = re.compile(defs["figure_variants"]["additionalProperties"]["pattern"])
    assert [v for v in names.VARIANTS if variant.match(v)] == list(names.VARIANTS)
    assert not variant.match("xm") and not variant.match("hm_au")


def test_the_workflow_takes_its_wildcard_constraints_from_hmfs_names():
    common = (REPO / "workflow" / "common.smk").read_text()
    assert "**names.wildcard_constraints()" in common
    hand_written = [f for f in (REPO / "workflow").glob("*.smk") if re.search(r"resnet18\||pascal\|coco|fm\|im", f.read_text())]
    assert not hand_written, f"name patterns spelled by hand in {hand_written}: use hmfs.names"


@pytest.mark.parametrize("wildcard, accepted, refused", [
    ("benchmark", names.BENCHMARKS, ("voc", "pascal5i")),
    ("backbone", names.BACKBONES, ("resnet152", "vgg16")),
    ("variant", names.VARIANTS, ("xm", "fm_aug_aug", "aug")),
    ("fold", names.fold_names(), ("fold4", "fold")),
    ("table", names.TABLES, ("table6", "claims")),
])
def test_each_wildcard_accepts_exactly_its_names(wildcard, accepted, refused):
    pattern = re.compile(names.wildcard_constraints()[wildcard])
    assert all(pattern.fullmatch(name) for name in accepted)
    assert not any(pattern.fullmatch(name) for name in refused)


def test_the_run_wildcard_matches_every_run_key_and_nothing_else():
    pattern = re.compile(names.wildcard_constraints()["run"])
    runs = [Run(b, bb, v, names.fold_name(b, 1), origin, seed=3 if origin == "trained" else 0)
            for b in names.BENCHMARKS for bb in names.BACKBONES for v in names.VARIANTS for origin in names.ORIGINS]
    assert all(pattern.fullmatch(run.key) for run in runs)
    assert not pattern.fullmatch("coco/resnet50/hm/fold0")  # a trained run's folder ends in its seed
    assert not pattern.fullmatch("released/coco/resnet50/hm/fold0/seed0")


def test_the_model_and_the_data_use_the_same_names():
    from hmfs.data import BENCHMARKS
    from hmfs.data.splits import BENCHMARK_FOLDS
    from hmfs.model import BACKBONES
    from hmfs.model.masking import MASKING_REGISTRY

    assert BACKBONES == names.BACKBONES and BENCHMARKS == names.BENCHMARKS
    assert tuple(MASKING_REGISTRY) == names.MASKINGS
    assert {b: n > 1 for b, n in BENCHMARK_FOLDS.items()} == {b: b in names.FOLDED for b in names.BENCHMARKS}
    assert all(n == names.NUM_FOLDS for b, n in BENCHMARK_FOLDS.items() if b in names.FOLDED)


def test_one_parser_of_a_variant():
    assert all(names.variant_name(*names.parse_variant(v)) == v for v in names.VARIANTS)
    assert names.parse_variant("hm_aug") == ("hm", True) and names.parse_variant("fm") == ("fm", False)
    with pytest.raises(ValueError, match="xm_aug"):
        names.parse_variant("xm_aug")
