"""Shared test fixtures: where the reference parity files live, and small helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HMFS_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    path = Path(os.environ.get("HMFS_PARITY_DIR", SHARED / "reference" / "parity"))
    if not (path / "hsnet_resnet50_s0.pt").is_file():
        pytest.fail(f"parity fixtures not found in {path}: set HMFS_PARITY_DIR (or HMFS_SHARED) to the folder "
                    "holding hsnet_resnet50_s0.pt and hsnet_resnet101_s0.pt")
    return path
