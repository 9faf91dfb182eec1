"""Atomic writes: whole files or none, with the mode the user's umask allows (not mkstemp's owner-only 0600)."""

from __future__ import annotations

import os
import stat

import pytest
import torch

from hmfs.runtime import atomic_torch_save, atomic_write_text, current_umask


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_take_the_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        assert current_umask() == umask
        atomic_write_text(tmp_path / "table.md", "| a |\n")
        atomic_torch_save(tmp_path / "best.pt", {"w": torch.zeros(2)})
    finally:
        os.umask(previous)
    for name in ("table.md", "best.pt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "table.md"]  # no temporary file left
