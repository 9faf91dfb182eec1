"""`hmfs status` on a grid with a run in every state, made from the files a grid leaves (no training needed)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from hmfs.files import pid_start_time
from hmfs.pipeline.config_check import load_config
from hmfs.pipeline.grid import evaluations, training_runs
from hmfs.pipeline.paths import evaluation_path, run_dir, state_dir, table_paths
from hmfs.pipeline.status import grid_status

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "workflow" / "config.synthetic.yaml"


def write_lines(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def history(epochs: int, best_epoch: int, seconds: float = 10.0) -> list[dict]:
    return [{"epoch": e, "val_miou": 30.0 + e, "best_epoch": min(e, best_epoch), "seconds": seconds} for e in range(epochs)]


def make_grid(workdir: Path) -> tuple[dict, list]:
    """A grid in every state: done, running, stopped, failed, stalled twice (process gone; silent on another host), waiting."""
    config = load_config(CONFIG)
    out = str(workdir / config["output_dir"])
    runs = training_runs(config)
    done, running, stopped, failed, gone, silent = runs[:6]
    summary = Path(run_dir(out, done)) / "train_summary.json"
    summary.parent.mkdir(parents=True)
    summary.write_text(json.dumps({"stopped": {"detail": "no better validation mIoU in the 4 epochs after epoch 11"},
                                   "epochs": 16, "best_epoch": 11, "best_val_miou": 44.25, "seconds": 160.0,
                                   "train_episodes_per_epoch": 100}))
    write_lines(Path(state_dir(out, done)) / "history.jsonl", history(16, 11))

    state = Path(state_dir(out, running))
    write_lines(state / "history.jsonl", history(3, 1))
    write_lines(state / "attempts.jsonl", [{"outcome": "stopped", "signal": "SIGURG", "to": [2, 0]}])
    (state / "lock.json").write_text(json.dumps({"host": platform.node(), "pid": os.getpid(),
                                                 "pid_start": pid_start_time(os.getpid()), "slurm_job_id": "77",
                                                 "phase": "train", "epoch": 3, "step": 12, "steps": 25,
                                                 "train_episodes": 100}))
    state = Path(state_dir(out, stopped))
    write_lines(state / "history.jsonl", history(5, 4))
    write_lines(state / "attempts.jsonl", [{"outcome": "stopped", "signal": "SIGURG", "to": [5, 3], "slurm_job_id": "78"}])
    write_lines(Path(state_dir(out, failed)) / "attempts.jsonl",
                [{"outcome": "failed", "error": "TrainingDiverged: training diverged at epoch 0, step 3", "to": None}])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    state = Path(state_dir(out, gone))
    state.mkdir(parents=True)
    (state / "lock.json").write_text(json.dumps({"host": platform.node(), "pid": dead.pid}))
    state = Path(state_dir(out, silent))
    state.mkdir(parents=True)
    (state / "lock.json").write_text(json.dumps({"host": "node-elsewhere", "pid": 12, "slurm_job_id": "79"}))
    hour_ago = (state / "lock.json").stat().st_mtime - 3600
    os.utime(state / "lock.json", (hour_ago, hour_ago))

    for evaluation in evaluations(config)[:3]:
        path = workdir / evaluation_path(config["output_dir"], evaluation)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
    table = Path(table_paths(out, "table1")["csv"])
    table.parent.mkdir(parents=True)
    table.write_text("x\n")
    return config, runs


def test_status_reads_every_state_from_files(tmp_path):
    config, runs = make_grid(tmp_path)
    status = grid_status(config, tmp_path)
    by_run = {r["run"]: r for r in status["runs"]}
    states = [by_run[run.key]["state"] for run in runs]
    assert states == ["done", "running", "stopped", "failed", "stalled", "stalled"] + ["waiting"] * (len(runs) - 6)
    assert status["trainings"] == {"waiting": len(runs) - 6, "running": 1, "stopped": 1, "failed": 1, "stalled": 2,
                                   "done": 1}
    assert status["evaluations"] == {"done": 3, "total": len(evaluations(config))}
    assert status["tables"] == {"done": 1, "total": len(config["tables"])}

    done = by_run[runs[0].key]
    assert (done["epochs_done"], done["best_epoch"], done["best_val_miou"]) == (16, 11, 44.25)
    assert done["episodes_per_second"] == 10.0 and "epoch 11" in done["detail"]

    running = by_run[runs[1].key]
    schedule = config["train"][runs[1].benchmark]
    assert (running["phase"], running["step"], running["steps"], running["slurm_job_id"]) == ("train", 12, 25, "77")
    assert (running["epochs_done"], running["best_epoch"], running["best_val_miou"], running["last_val_miou"]) == (3, 1, 31.0, 32.0)
    assert running["episodes_per_second"] == 10.0 and running["attempts"] == ["stopped", "running"]
    shortest = max(schedule["min_epochs"], 1 + 1 + schedule["patience"])
    assert running["hours_left"] == ((shortest - 3) * 10 / 3600, (schedule["epochs"] - 3) * 10 / 3600)

    assert "SIGURG at epoch/step [5, 3]" in by_run[runs[2].key]["detail"] and by_run[runs[2].key]["slurm_job_id"] == "78"
    assert by_run[runs[3].key]["detail"].startswith("TrainingDiverged")
    assert "is gone" in by_run[runs[4].key]["detail"]
    assert "no progress for 60 min (process 12 on node-elsewhere)" in by_run[runs[5].key]["detail"]
    # With a longer --stalled-after the other host's hour-old lock still counts as running.
    assert grid_status(config, tmp_path, stalled_after=7200)["runs"][5]["state"] == "running"


def test_status_command_prints_a_table_and_json(tmp_path):
    config, runs = make_grid(tmp_path)
    run = [sys.executable, "-m", "hmfs", "status", "--config", str(CONFIG), "--workdir", str(tmp_path)]
    text = subprocess.run(run, capture_output=True, text=True, timeout=120, check=True).stdout
    lines = {line.split()[0]: line for line in text.splitlines() if line.split() and "/" in line.split()[0]}
    epochs = config["train"][runs[1].benchmark]["epochs"]
    assert lines[runs[1].key].split()[1:4] == ["running", f"3/{epochs}", "train"] and "12/25" in lines[runs[1].key]
    assert "44.2 (11)" in lines[runs[0].key] and "2: 1 stopped, 1 running" in lines[runs[1].key]
    assert f"{runs[3].key}: failed: TrainingDiverged" in text
    assert "trainings: " in text and "1 running" in text and "evaluations: 3 of" in text
    as_json = json.loads(subprocess.run([*run, "--json"], capture_output=True, text=True, timeout=120, check=True).stdout)
    assert [r["state"] for r in as_json["runs"]][:6] == ["done", "running", "stopped", "failed", "stalled", "stalled"]
    bad = subprocess.run([*run, "--watch", "0"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--watch must be a positive number of seconds, got 0" in bad.stderr
