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


def pytest_collection_modifyitems(config, items):
    """Test files with slow tests first, the SLURM ones first of all (stable within a file).

    `make test` spreads whole files over two workers (pytest-xdist, --dist loadfile, so a module's
    fixtures are built once): starting the longest files first keeps one long file from running
    alone at the end.
    """
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: 0 if "slurm" in item.path.name else 1 if item.path in slow_files else 2)
