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


# The longest test files, longest first (minutes on 2 cores; the rest take under two each).
LONGEST_FILES = ("test_slurm.py", "test_end_to_end.py", "test_workflow.py", "test_train_evaluate.py",
                 "test_data_acquisition.py")


def pytest_collection_modifyitems(config, items):
    """The longest test files first, then the others in their order (stable within a file).

    `make test` spreads whole files over two workers (pytest-xdist, --dist loadfile, so a module's
    fixtures are built once): starting the longest files first keeps one long file from running
    alone at the end.
    """
    def rank(item) -> int:
        name = item.path.name
        return LONGEST_FILES.index(name) if name in LONGEST_FILES else len(LONGEST_FILES)

    items.sort(key=rank)
