"""The cluster path on a real SLURM: a single node with two fake GPUs and no accounting database, brought up
by tests/workflow/slurm_cluster.sh, and `snakemake --profile slurm --cores 64` as a user types it.

Checked: every heavy job goes through sbatch, training jobs get a GPU, the tables equal a local run's;
a training split by 1-minute time limits and a requeue ends with the weights and history of an
uninterrupted run, and the requeued job keeps the logs of both its attempts. Where SLURM cannot be
installed (no root, no apt-get) these tests skip with the reason; with CI=true they fail instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from hmfs.pipeline import argv, grid, paths
from hmfs.training.attempts import read_attempts
from hmfs.training.run_lock import LOCK_NAME, read_lock
from tests.workflow.test_workflow import WORKFLOW_FILES, job_counts, tiny_config

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "tests" / "workflow" / "slurm_cluster.sh"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true, but the SLURM tests cannot run: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def slurm():
    """A running single-node SLURM (started here and stopped after the module, unless it was already up)."""
    if shutil.which("sbatch") is None and (os.geteuid() != 0 or shutil.which("apt-get") is None):
        unavailable("SLURM is not installed, and installing it needs root on Debian/Ubuntu (apt-get)")
    was_up = subprocess.run([CLUSTER, "status"], capture_output=True).returncode == 0
    up = subprocess.run([CLUSTER, "up"], capture_output=True, text=True, timeout=900)
    if up.returncode != 0:
        unavailable(f"tests/workflow/slurm_cluster.sh up failed: {(up.stdout + up.stderr).strip()[-2000:]}")
    yield
    if not was_up:
        subprocess.run([CLUSTER, "down"], capture_output=True, timeout=120)


def copy_workflow(target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for name in (*WORKFLOW_FILES, "slurm"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, target / name)
    return target


def snakemake(cwd: Path, *args: str, timeout: int = 600) -> str:
    """`snakemake ARGS` in `cwd` as a user types it; its whole output (an AssertionError with it when it fails)."""
    result = subprocess.run([str(BIN / "snakemake"), *args], cwd=cwd, env=ENV, capture_output=True, text=True,
                            timeout=timeout)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({result.returncode}):\n{output[-6000:]}")
    return output


def submitted(output: str) -> dict[str, int]:
    """SLURM job id -> Snakemake job id, from the executor's "Job N has been submitted with SLURM jobid M" lines."""
    return {m.group(2): int(m.group(1)) for m in re.finditer(r"Job (\d+) has been submitted with SLURM jobid (\d+)", output)}


def grid_config(workdir: Path) -> dict:
    """tiny_config cut to Table 3 (FSS-1000: fm and hm), training jobs asking for one GPU."""
    config = yaml.safe_load(tiny_config(workdir).read_text())
    config["tables"] = {"table3": config["tables"]["table3"]}
    config["figures"] = {}
    config["resources"]["train"]["gpu"] = 1
    return config


@pytest.fixture(scope="module")
def local_run(tmp_path_factory) -> Path:
    """The reduced grid run locally: the reference tables, and the data and backbone the SLURM runs start from."""
    workdir = copy_workflow(tmp_path_factory.mktemp("local"))
    (workdir / "grid.yaml").write_text(yaml.safe_dump(grid_config(workdir), sort_keys=False))
    snakemake(workdir, "--configfile", "grid.yaml", "--cores", "2")
    return workdir


def start_from(local: Path, workdir: Path, parts=("raw", "weights")) -> None:
    """Give a SLURM run the local run's generated data / backbone (copied with their times: not re-made)."""
    for part in parts:
        shutil.copytree(local / "out" / part, workdir / "out" / part)


def test_grid_through_slurm_equals_the_local_run(slurm, local_run, tmp_path):
    workdir = copy_workflow(tmp_path / "slurm")
    shutil.copy2(local_run / "grid.yaml", workdir / "grid.yaml")
    start_from(local_run, workdir)

    output = snakemake(workdir, "--profile", "slurm", "--cores", "64", "--configfile", "grid.yaml")
    counts = job_counts(output)
    local = set(re.findall(r"^localrule (\w+):", output, re.M)) | {"all"}  # tables, plots, report
    heavy = {rule: n for rule, n in counts.items() if rule not in local}
    assert {"prepare_data": 1, "train_model": 2, "evaluate_model": 4}.items() <= heavy.items(), counts
    jobs = submitted(output)
    assert len(jobs) == sum(heavy.values()), output[-3000:]  # every heavy job was an sbatch job, once
    for rule in heavy:
        assert list((workdir / ".snakemake" / "slurm_logs" / f"rule_{rule}").rglob("*.log")), rule

    # The training jobs ran in SLURM jobs with one of the node's two GPUs.
    for variant in ("fm", "hm"):
        run = grid.Run("fss", "resnet18", variant, "all")
        (attempt,) = read_attempts(workdir / paths.state_dir("out", run) / "attempts.jsonl")
        assert attempt["outcome"] == "finished" and attempt["slurm_job_id"] in jobs
        assert attempt["cuda_visible_devices"] in ("0", "1"), attempt
        job = subprocess.run(["scontrol", "show", "job", attempt["slurm_job_id"]], capture_output=True, text=True).stdout
        assert "gres:gpu:1" in job or "gres/gpu=1" in job, job

    tables = sorted(path.name for path in (local_run / "out" / "tables").iterdir())
    assert {f"table3.{ext}" for ext in ("csv", "md", "tex", "html")} <= set(tables)
    for name in tables:
        assert (workdir / "out" / "tables" / name).read_bytes() == (local_run / "out" / "tables" / name).read_bytes(), name
    assert (workdir / "report.html").stat().st_size > 10_000


def wait_for(condition, what: str, timeout: float, process: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            break
        time.sleep(0.5)
    tail = log.read_text()[-4000:] if log and log.is_file() else ""
    raise AssertionError(f"timed out waiting for {what}\n{tail}")


def squeue_state(job_id: str) -> tuple[str, str]:
    out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T %r"], capture_output=True, text=True).stdout.split()
    return (out[0], out[1]) if len(out) == 2 else ("", "")


def train_command(config: dict, run: grid.Run, out: Path) -> list[str]:
    """The workflow's training command for `run`, writing to `out` (and `out`.state) instead."""
    flags = argv.train_flags(config, run)
    flags[flags.index("--out") + 1] = str(out)
    flags[flags.index("--state-dir") + 1] = f"{out}.state"
    return [sys.executable, "-m", "hmfs", "--threads", "1", "train", *flags]


def test_training_across_time_limits_and_requeue_equals_an_uninterrupted_run(slurm, local_run, tmp_path):
    workdir = copy_workflow(tmp_path / "slurm")
    start_from(local_run, workdir, parts=("raw", "data", "weights"))
    config = grid_config(workdir)
    config["tables"]["table3"]["rows"] = {"HSNet": {"masking": "fm"}}
    config["train"]["fss"].update(train_episodes=None, val_episodes=4)
    config["train"]["checkpoint_every"] = 1
    # 1-minute jobs, signalled 15 s before their limit: SLURM checks limits every 30 s and signals once
    # the limit is within 15 + 30 s, so the signal comes 15-45 s into a job (measured), the limit at 60-90 s.
    config["resources"]["train"].update(runtime=1, save_before_limit=15, threads=1)
    run = grid.Run("fss", "resnet18", "fm", "all")
    state_dir = workdir / paths.state_dir("out", run)

    # About 70 s of training on this machine (one epoch, timed): more than one such job can do.
    config["train"]["fss"]["epochs"] = 1
    subprocess.run(train_command(config, run, tmp_path / "timing"), cwd=workdir, env=ENV, check=True,
                   capture_output=True, timeout=600)
    epoch_seconds = json.loads((tmp_path / "timing" / "history.jsonl").read_text().splitlines()[0])["seconds"]
    config["train"]["fss"]["epochs"] = max(3, round(70 / epoch_seconds))
    (workdir / "split.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    # The uninterrupted reference: the same training command, run straight, alongside on the other core.
    straight = subprocess.Popen(train_command(config, run, tmp_path / "straight"), cwd=workdir, env=ENV,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "snakemake.log"
    target = f"out/{run.key}/best.pt"
    with open(log, "w") as handle:
        process = subprocess.Popen([str(BIN / "snakemake"), target, "--profile", "slurm", "--cores", "64",
                                    "--configfile", "split.yaml"], cwd=workdir, env=ENV, stdout=handle,
                                   stderr=subprocess.STDOUT)
    attempts_path = state_dir / "attempts.jsonl"
    try:
        # The first job ends on its time-limit signal; Snakemake submits the next. Once that one has
        # saved progress, requeue it (as a preemption would): SIGTERM, then SLURM queues the same job
        # id again, held ~2 minutes (released at once here).
        wait_for(lambda: read_attempts(attempts_path), "the first job to stop", 300, process, log)
        second = wait_for(lambda: list(submitted(log.read_text()))[1:2], "the second sbatch", 120, process, log)[0]
        stopped_at = time.time()
        wait_for(lambda: (state_dir / "state.pt").stat().st_mtime > stopped_at, "the second job's progress", 120,
                 process, log)
        subprocess.run(["scontrol", "requeue", second], check=True)
        wait_for(lambda: squeue_state(second) == ("PENDING", "BeginTime"), "the requeued job's hold", 60, process, log)
        subprocess.run(["scontrol", "update", f"jobid={second}", "StartTime=now"], check=True)
        assert process.wait(timeout=900) == 0, log.read_text()[-6000:]
    finally:
        if process.poll() is None:
            process.terminate()
    assert straight.wait(timeout=600) == 0, straight.stderr.read()[-3000:]

    attempts = read_attempts(attempts_path)
    summary = [(a["outcome"], a["signal"], a["slurm_job_id"], a["snakemake_attempt"]) for a in attempts]
    assert summary[0][:2] == ("stopped", "SIGURG"), summary  # the first job's time limit
    requeued = [i for i, a in enumerate(attempts) if a["slurm_job_id"] == second]
    assert len(requeued) == 2 and requeued[1] == requeued[0] + 1, summary  # the same job ran twice
    assert summary[requeued[0]][:2] == ("stopped", "SIGTERM"), summary
    assert summary[-1][0] == "finished" and all(a["outcome"] == "stopped" for a in attempts[:-1]), summary
    # Each stop but the requeue made Snakemake submit the job again (its next attempt); every
    # attempt resumed where the one before had saved.
    expected = [1]
    for i in range(1, len(attempts)):
        expected.append(expected[-1] + (i != requeued[1]))
    assert [a["snakemake_attempt"] for a in attempts] == expected, summary
    assert all(a["from"] == b["to"] for a, b in zip(attempts[1:], attempts)), summary
    assert all(a["cuda_visible_devices"] in ("0", "1") for a in attempts), attempts
    assert log.read_text().count("Trying to restart job") == len(attempts) - 2

    # Bit for bit the uninterrupted run's weights and history.
    out = workdir / "out" / run.key
    for name in ("best.pt", "last.pt"):
        a, b = torch.load(tmp_path / "straight" / name, weights_only=True), torch.load(out / name, weights_only=True)
        assert a["epoch"] == b["epoch"] and a["val_miou"] == b["val_miou"], name
        assert all(torch.equal(a["learner"][k], b["learner"][k]) for k in a["learner"]), name
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    reference = [json.loads(line) for line in (tmp_path / "straight" / "history.jsonl").read_text().splitlines()]
    assert [{k: v for k, v in h.items() if k != "seconds"} for h in history] == \
        [{k: v for k, v in h.items() if k != "seconds"} for h in reference]

    # The logs of every attempt: the state's train.log, and the requeued job's SLURM log (appended).
    train_log = (state_dir / "train.log").read_text()
    assert train_log.count("==== attempt ") == len(attempts) and train_log.count(f"slurm_job_id={second},") == 2
    slurm_log = next((workdir / ".snakemake" / "slurm_logs" / "rule_train_model").rglob(f"{second}.log")).read_text()
    assert slurm_log.count("rule train_model:") >= 2 and "DUE TO JOB REQUEUE" in slurm_log, slurm_log[-3000:]


def test_a_training_job_killed_without_warning_resumes_under_the_profile(slurm, local_run, tmp_path):
    # SIGKILL to the trainer, as the OOM killer or a lost node deals it: no signal to save on. The job fails,
    # Snakemake submits it again, and the new trainer records the killed attempt, takes over its lock and resumes
    # from the last saved step.
    workdir = copy_workflow(tmp_path / "slurm")
    start_from(local_run, workdir, parts=("raw", "data", "weights"))
    config = grid_config(workdir)
    config["tables"]["table3"]["rows"] = {"HSNet": {"masking": "fm"}}
    config["train"]["fss"]["epochs"] = 12  # about 50 steps: time to kill it in the middle
    config["train"]["checkpoint_every"] = 1
    config["resources"]["train"]["threads"] = 1  # as the reference's train_command: the same kernels, bit for bit
    (workdir / "kill.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    run = grid.Run("fss", "resnet18", "fm", "all")
    state_dir = workdir / paths.state_dir("out", run)
    straight = subprocess.Popen(train_command(config, run, tmp_path / "straight"), cwd=workdir, env=ENV,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "snakemake.log"
    with open(log, "w") as handle:
        process = subprocess.Popen([str(BIN / "snakemake"), f"out/{run.key}/best.pt", "--profile", "slurm", "--cores",
                                    "64", "--configfile", "kill.yaml"], cwd=workdir, env=ENV, stdout=handle,
                                   stderr=subprocess.STDOUT)
    try:
        holder = wait_for(lambda: (lambda lock: lock if lock and lock.get("saved") and lock["saved"] >= [0, 3] else None)(
            read_lock(state_dir / LOCK_NAME)), "a trainer that saved 3 steps", 300, process, log)
        os.kill(holder["pid"], signal.SIGKILL)
        assert process.wait(timeout=900) == 0, log.read_text()[-6000:]
    finally:
        if process.poll() is None:
            process.terminate()
    assert straight.wait(timeout=600) == 0, straight.stderr.read()[-3000:]

    killed, finished = read_attempts(state_dir / "attempts.jsonl")
    assert (killed["outcome"], killed["pid"], killed["slurm_job_id"]) == ("killed", holder["pid"], holder["slurm_job_id"])
    assert finished["outcome"] == "finished" and finished["slurm_job_id"] != killed["slurm_job_id"]
    assert [0, 3] <= killed["to"] <= finished["from"], (killed, finished)  # resumed from the last save, nothing lost
    assert "was killed without saving its end" in (state_dir / "train.log").read_text()
    out = workdir / "out" / run.key
    for name in ("best.pt", "last.pt"):
        a, b = torch.load(tmp_path / "straight" / name, weights_only=True), torch.load(out / name, weights_only=True)
        assert all(torch.equal(a["learner"][k], b["learner"][k]) for k in a["learner"]), name


def test_a_two_process_training_job_runs_through_the_profile(slurm, local_run, tmp_path):
    # resources.train.gpu 2 for FSS-1000: one sbatch job with --gpus=2 runs torchrun with two (gloo) processes.
    workdir = copy_workflow(tmp_path / "slurm")
    start_from(local_run, workdir, parts=("raw", "data", "weights"))
    config = grid_config(workdir)
    config["resources"]["train"]["gpu"] = {"pascal": 1, "coco": 1, "fss": 2}
    (workdir / "ranks.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    run = grid.Run("fss", "resnet18", "fm", "all")
    output = snakemake(workdir, f"out/{run.key}/best.pt", "--profile", "slurm", "--cores", "64",
                       "--configfile", "ranks.yaml")
    (slurm_job,) = submitted(output)
    (attempt,) = read_attempts(workdir / paths.state_dir("out", run) / "attempts.jsonl")
    assert attempt["outcome"] == "finished" and attempt["ranks"] == 2 and attempt["slurm_job_id"] == slurm_job
    assert attempt["cuda_visible_devices"] == "0,1", attempt
    job = subprocess.run(["scontrol", "show", "job", slurm_job], capture_output=True, text=True).stdout
    assert "gres:gpu:2" in job or "gres/gpu=2" in job, job
    log = (workdir / "out" / "logs" / "train_model" / f"{run.key}.log").read_text()
    assert "rank 0 of 2 joined the gloo process group" in log
    # The same global batch as the local one-process run: the same weights up to float rounding.
    two = torch.load(workdir / "out" / run.key / "last.pt", weights_only=True)["learner"]
    one = torch.load(local_run / "out" / run.key / "last.pt", weights_only=True)["learner"]
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=1e-4, atol=1e-5, msg=key)  # as test_distributed.py
