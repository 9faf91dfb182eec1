"""The pre-submission checks of a SLURM run (hmfs.pipeline.cluster) on recorded `scontrol`/`sacct` answers: partition
limits, fake GPUs, the executor plugin's choice of job-state command, and the fix each problem names; and the
paper config's plan on SLURM (a dry run with the shipped profile)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hmfs.pipeline import argv
from hmfs.pipeline.cluster import (SQUEUE_MIN_JOB_AGE, JobRequest, account_note, check_submission,
                                   effective_status_command, gpu_count, parse_minutes, parse_nodes, parse_partitions,
                                   signal_lead, status_problems, unschedulable)
from tests.workflow.test_workflow import REPO, WORKFLOW_FILES

PARTITIONS = (
    "PartitionName=main AllowGroups=ALL Default=YES MaxNodes=UNLIMITED MaxTime=2-00:00:00 MaxMemPerNode=UNLIMITED "
    "MaxCPUsPerNode=UNLIMITED Nodes=n[1-2] State=UP TotalCPUs=64\n"
    "PartitionName=short Default=NO MaxTime=04:00:00 MaxMemPerNode=64000 MaxCPUsPerNode=16 Nodes=n1 State=UP\n"
    "PartitionName=old Default=NO MaxTime=UNLIMITED Nodes=n2 State=DOWN\n")
NODES = (
    "NodeName=n1 Arch=x86_64 CPUTot=32 RealMemory=256000 Gres=gpu:a100:4(S:0-1),shard:8 Partitions=main,short State=IDLE\n"
    "NodeName=n2 CPUTot=32 RealMemory=128000 Gres=(null) Partitions=main,old State=IDLE\n")


def request(**changes) -> JobRequest:
    values = dict(rule_name="train_model", partition=None, runtime_min=1440, mem_mb=64000, cpus=8, gpus=1,
                  signal_lead_s=600)
    values.update(changes)
    return JobRequest(**values)


def problems_of(*requests: JobRequest) -> list[str]:
    return unschedulable(list(requests), parse_partitions(PARTITIONS), parse_nodes(NODES))


def test_slurm_time_strings():
    assert [parse_minutes(v) for v in ("UNLIMITED", "30", "02:00:00", "1-12:00:00", "2-00:00:00", "1-12", "5:30")] \
        == [None, 30, 120, 2160, 2880, 2160, 6]
    assert parse_minutes("00:00:30") == 1  # seconds round up


def test_partitions_and_nodes_are_read_from_scontrol():
    main, short, old = parse_partitions(PARTITIONS)
    assert (main.default, main.max_time_min, main.max_mem_mb, short.max_cpus_per_node, old.up) == (True, 2880, None, 16, False)
    n1, n2 = parse_nodes(NODES)
    assert (n1.cpus, n1.mem_mb, n1.gpus, n1.partitions, n2.gpus) == (32, 256000, 4, ("main", "short"), 0)
    assert gpu_count("gpu:2") == 2 and gpu_count("gpu:fake:2,gpu:a100:1") == 3 and gpu_count("(null)") == 0


def test_jobs_that_fit_pass():
    assert problems_of(request(), request(rule_name="evaluate_model", runtime_min=120, mem_mb=16000, cpus=4,
                                          signal_lead_s=None)) == []
    assert problems_of(request(partition="short", runtime_min=240, mem_mb=64000, cpus=16)) == []


@pytest.mark.parametrize("change, named", [
    (dict(runtime_min=10080), "runtime 10080 min exceeds the partition's MaxTime 2880 min"),
    (dict(partition="short", runtime_min=300), "MaxTime 240 min"),
    (dict(partition="short", runtime_min=60, mem_mb=96000), "mem_mb 96000 exceeds the partition's MaxMemPerNode 64000"),
    (dict(partition="short", runtime_min=60, cpus=24), "threads 24 exceed the partition's MaxCPUsPerNode 16"),
    (dict(gpus=8), "no node has 8 CPUs, 64000 MB and 8 GPUs"),
    (dict(mem_mb=300000), "no node has"),
    (dict(partition="gpu"), "partition gpu does not exist (partitions: main, short, old)"),
    (dict(partition="old", gpus=0), "the partition is not UP"),
    (dict(runtime_min=10, signal_lead_s=600), "leaving less than half the job for training"),
])
def test_jobs_that_can_never_run_are_named_with_the_limit(change, named):
    problems = problems_of(request(**change))
    assert any(named in p for p in problems), problems
    assert all(p.startswith("rule train_model") for p in problems)


def test_signal_lead_is_read_from_the_sbatch_flags():
    assert signal_lead("--open-mode=append --signal=URG@600") == 600
    assert signal_lead("--signal=B:USR1@90") == 90 and signal_lead("--open-mode=append") is None
    config = {"resources": {"train": {"save_before_limit": 900}}}
    assert signal_lead(argv.train_sbatch_flags(config)) == 900
    assert argv.train_sbatch_flags({"resources": {"train": {}}}) == "--open-mode=append"


def test_the_plugins_choice_of_status_command():
    # Its default is sacct whenever the binary exists, and it leaves squeue for sacct when MinJobAge is short.
    assert effective_status_command(None, 300, 10, sacct_installed=True) == "sacct"
    assert effective_status_command("squeue", 300, 10, sacct_installed=True) == "squeue"
    assert effective_status_command("squeue", 100, 40, sacct_installed=True) == "sacct"
    assert effective_status_command("sacct", 300, 10, sacct_installed=False) == "squeue"


NO_DB = "Slurm accounting storage is disabled"


@pytest.mark.parametrize("setting, age, init, sacct, sacct_error, fix", [
    # No slurmdbd: the shipped profile (squeue) works; the plugin's default (sacct) would hang.
    ("squeue", 300, 10, True, NO_DB, None),
    (None, 300, 40, True, NO_DB, "set `slurm-status-command: squeue`"),
    ("squeue", 100, 40, True, NO_DB, "slurm-init-seconds-before-status-checks to at most 33"),
    ("squeue", 60, 10, True, NO_DB, "no way to follow jobs"),
    # slurmdbd: both work while MinJobAge is long; with a short one, only sacct.
    ("squeue", 300, 10, True, None, None),
    ("sacct", 30, 10, True, None, None),
    ("squeue", 60, 10, True, None, "set `slurm-status-command: sacct`"),
    ("squeue", 60, 10, False, None, "sacct is not available (not installed)"),
])
def test_status_command_problems_name_their_fix(setting, age, init, sacct, sacct_error, fix):
    problems = status_problems(setting, age, init, sacct, sacct_error if sacct else None, None)
    if fix is None:
        assert problems == []
    else:
        assert len(problems) == 1 and fix in problems[0], problems
    assert SQUEUE_MIN_JOB_AGE == 200


def fake_slurm(answers: dict[str, tuple[int, str]]):
    calls = []

    def run(args: list[str]) -> tuple[int, str]:
        calls.append(args)
        return answers[" ".join(args[:3])]

    return run, calls


def test_check_submission_asks_the_cluster_and_collects_every_problem():
    answers = {
        "scontrol show config": (0, "KillWait                = 30 sec\nMinJobAge               = 300 sec\n"),
        "sacct -X -n": (1, NO_DB),
        "squeue -h -o": (0, ""),
        "scontrol show partition": (0, PARTITIONS),
        "scontrol show node": (0, NODES),
    }
    run, calls = fake_slurm(answers)
    ok = check_submission([request()], "squeue", 10, run=run, which=lambda name: f"/usr/bin/{name}")
    assert ok == [] and ["squeue", "-h", "-o", "%i"] in calls
    run, _ = fake_slurm(answers)
    problems = check_submission([request(runtime_min=10080), request(rule_name="evaluate_model", gpus=9)], None, 40,
                                run=run, which=lambda name: f"/usr/bin/{name}")
    assert len(problems) == 3 and "sacct" in problems[0] and "MaxTime" in problems[1] and "evaluate_model" in problems[2]
    down = check_submission([request()], "squeue", 10, run=lambda args: (1, "Unable to contact slurm controller"))
    assert len(down) == 1 and "does not answer" in down[0]


def test_a_failing_account_guess_is_announced_with_its_fix():
    run, calls = fake_slurm({"sacct -n -X": (1, NO_DB)})
    note = account_note(False, run=run)
    assert f"which fails here ({NO_DB})" in note and "set `slurm_account` under default-resources in slurm/config.yaml" in note
    assert account_note(True, run=run) is None and len(calls) == 1  # an account given: nothing guessed, nothing run
    assert account_note(False, run=fake_slurm({"sacct -n -X": (0, "")})[0]) is None  # sacct works: the guess is quiet


STAGES = {"train_model": "train", "evaluate_model": "evaluate", "evaluate_cross_domain": "evaluate",
          "prepare_data": "data", "generate_synthetic": "data", "pretrain_backbone": "pretrain"}


def test_paper_config_on_slurm_asks_for_the_configured_wall_time(tmp_path):
    """`snakemake --profile slurm --cores 64 -n` on config.yaml: each job asks for its stage's runtime (minutes),
    training jobs for a day at most, with the signal that makes them save ahead of the limit."""
    for name in (*WORKFLOW_FILES, "slurm"):
        source = REPO / name
        copy = shutil.copytree if source.is_dir() else shutil.copy2
        copy(source, tmp_path / name)
    result = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "--profile", "slurm", "--cores", "64", "-n"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    resources = yaml.safe_load((REPO / "config.yaml").read_text())["resources"]
    jobs = re.findall(r"^(?:local)?rule (\w+):\n(?:    .*\n)*?    resources: (.*)$", result.stdout, re.M)
    assert sum(rule == "train_model" for rule, _ in jobs) == 52
    longest = max(stage["runtime"] for stage in resources.values())
    for rule, line in jobs:
        runtime = int(re.search(r"\bruntime=(\d+)", line).group(1))
        assert runtime <= longest, (rule, runtime)
        if rule in STAGES:
            assert runtime == resources[STAGES[rule]]["runtime"], (rule, runtime)
        if rule == "train_model":
            assert runtime <= 24 * 60
            assert f"--signal=URG@{resources['train']['save_before_limit']}" in line, line
