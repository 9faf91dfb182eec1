"""The command line: every subcommand is registered and documents itself."""

from __future__ import annotations

import pytest

from hmfs.cli import build_parser, main

COMMANDS = ("generate", "prepare", "verify-data", "convert-splits", "pretrain", "train", "evaluate", "bench", "plan", "status", "gpu-check", "fetch-weights", "check-released", "fetch", "unpack",
            "tables", "claims", "forest", "figures")


@pytest.mark.parametrize("command", COMMANDS)
def test_subcommand_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert command in capsys.readouterr().out


def test_all_subcommands_registered():
    parser = build_parser()
    choices = next(a for a in parser._actions if a.dest == "command").choices
    assert set(choices) == set(COMMANDS)


def test_unknown_command_is_an_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fly"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'fly'" in capsys.readouterr().err


def test_commands_without_torch_do_not_import_it():
    # tables and figures run in every workflow refresh: they must start fast, without torch.
    import subprocess
    import sys

    code = ("import sys; from hmfs.cli import build_parser; build_parser(['tables']); build_parser(['figures']); "
            "build_parser(['claims']); build_parser(['forest']); "
            # prepare, verify-data, fetch and unpack only read and write files: no torch either.
            "[build_parser([c]) for c in ('prepare', 'verify-data', 'fetch', 'unpack')]; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
