"""Tests of the generate command: its flags reach the generators and only the asked benchmarks are written."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hmfs.commands import generate


def test_generate_command_writes_summaries(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    generate.add_parser(parser.add_subparsers())
    args = parser.parse_args(
        ["generate", "--out", str(tmp_path), "--benchmark", "fss", "--fss-classes", "5", "--image-size", "48"]
    )
    assert args.func(args) == 0
    assert json.loads((tmp_path / "fss_summary.json").read_text())["classes"] == 5
    assert not (tmp_path / "coco").exists()
