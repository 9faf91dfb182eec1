"""Before the first sbatch: can SLURM run these jobs, and can Snakemake follow them? Problems are named with their fix.

Two ways a SLURM run goes wrong without an error, each checked here from what the cluster says:
- a job asks for more than its partition allows (time, memory, CPUs, GPUs): with
  `EnforcePartLimits=NO` it stays PENDING forever and Snakemake is never told;
- the job-state command the executor plugin will use does not work: `sacct` without slurmdbd
  answers "accounting storage is disabled" and Snakemake waits forever; `squeue` forgets a job
  `MinJobAge` seconds after it ends, and Snakemake may look only every 180 s.
The workflow runs `check_submission` once, at the start of a SLURM run (workflow/cluster.smk).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Callable

# The executor plugin (snakemake-executor-plugin-slurm 2.8) polls job states at most every
# MAX_STATUS_INTERVAL seconds; squeue must still list a finished job then, with some slack.
MAX_STATUS_INTERVAL = 180
SQUEUE_MIN_JOB_AGE = MAX_STATUS_INTERVAL + 20
# A training job must keep at least this share of its wall time before the stop signal.
MIN_TRAINING_SHARE = 0.5
PROFILE = "slurm/config.yaml"


@dataclass(frozen=True)
class JobRequest:
    """What one kind of job asks SLURM for (the same for every job of a rule here)."""

    rule_name: str
    partition: str | None  # None: the cluster's default partition
    runtime_min: int | None
    mem_mb: int | None
    cpus: int
    gpus: int
    signal_lead_s: int | None = None  # sbatch --signal=...@<seconds>, if any


@dataclass(frozen=True)
class Node:
    name: str
    cpus: int
    mem_mb: int
    gpus: int
    partitions: tuple[str, ...]


@dataclass(frozen=True)
class Partition:
    name: str
    default: bool
    up: bool
    max_time_min: int | None  # None: unlimited
    max_mem_mb: int | None
    max_cpus_per_node: int | None


def parse_minutes(value: str) -> int | None:
    """SLURM's time format ("UNLIMITED", "30", "2:00:00", "1-12:00:00", "1-12") -> minutes (None: unlimited)."""
    value = value.strip()
    if value.upper() in ("UNLIMITED", "INFINITE", "NONE", ""):
        return None
    days, _, clock = value.rpartition("-")
    parts = [int(p) for p in clock.split(":")]
    if days:  # days-hours[:minutes[:seconds]]
        hours, minutes, seconds = (parts + [0, 0])[:3]
        total = int(days) * 1440 + hours * 60 + minutes + (seconds > 0)
    elif len(parts) == 3:
        total = parts[0] * 60 + parts[1] + (parts[2] > 0)
    elif len(parts) == 2:  # minutes:seconds
        total = parts[0] + (parts[1] > 0)
    else:
        total = parts[0]
    return total


def _records(text: str) -> list[dict[str, str]]:
    """`scontrol show ... -o` output: one record per line, KEY=VALUE fields separated by spaces."""
    records = []
    for line in text.splitlines():
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        if fields:
            records.append(fields)
    return records


def _limit(value: str | None) -> int | None:
    if value is None or value.upper() in ("UNLIMITED", "0", "NONE", ""):
        return None
    return int(re.match(r"\d+", value).group())


def gpu_count(gres: str) -> int:
    """GPUs in a node's Gres string: "gpu:2", "gpu:a100:4(S:0-1),shard:8" -> 2, 4; "(null)" -> 0."""
    return sum(int(m.group(1)) for m in re.finditer(r"(?:^|,)gpu(?::[^:,(]+)?:(\d+)", gres))


def parse_partitions(text: str) -> list[Partition]:
    return [Partition(name=r["PartitionName"], default=r.get("Default") == "YES", up=r.get("State") == "UP",
                      max_time_min=parse_minutes(r.get("MaxTime", "UNLIMITED")),
                      max_mem_mb=_limit(r.get("MaxMemPerNode")), max_cpus_per_node=_limit(r.get("MaxCPUsPerNode")))
            for r in _records(text) if "PartitionName" in r]


def parse_nodes(text: str) -> list[Node]:
    return [Node(name=r["NodeName"], cpus=int(r.get("CPUTot", 0)), mem_mb=int(r.get("RealMemory", 0)),
                 gpus=gpu_count(r.get("Gres", "")), partitions=tuple(p for p in r.get("Partitions", "").split(",") if p))
            for r in _records(text) if "NodeName" in r]


def signal_lead(slurm_extra: str | None) -> int | None:
    """Seconds of `--signal=[B:|R:]SIG@<seconds>` in sbatch flags, if present."""
    match = re.search(r"--signal[= ]\S*@(\d+)", slurm_extra or "")
    return int(match.group(1)) if match else None


def unschedulable(requests: list[JobRequest], partitions: list[Partition], nodes: list[Node]) -> list[str]:
    """Every request that no node of its partition can ever run, with the limit it exceeds."""
    problems = []
    by_name = {p.name: p for p in partitions}
    default = next((p for p in partitions if p.default), None)
    for request in requests:
        partition = by_name.get(request.partition) if request.partition else default
        if partition is None:
            known = ", ".join(by_name) or "none"
            problems.append(f"rule {request.rule_name}: partition {request.partition or '(cluster default)'} does not "
                            f"exist (partitions: {known}); set slurm_partition in {PROFILE}")
            continue
        where = f"rule {request.rule_name} on partition {partition.name}"
        fix = f"lower it under `resources:` in the config, or pick another partition (slurm_partition in {PROFILE})"
        if not partition.up:
            problems.append(f"{where}: the partition is not UP")
        if partition.max_time_min is not None and (request.runtime_min or 0) > partition.max_time_min:
            resumes = " (this job saves ahead of its limit and resumes in the next)" if request.signal_lead_s else ""
            problems.append(f"{where}: runtime {request.runtime_min} min exceeds the partition's MaxTime "
                            f"{partition.max_time_min} min; {fix}{resumes}")
        members = [n for n in nodes if partition.name in n.partitions]
        if partition.max_mem_mb is not None and (request.mem_mb or 0) > partition.max_mem_mb:
            problems.append(f"{where}: mem_mb {request.mem_mb} exceeds the partition's MaxMemPerNode "
                            f"{partition.max_mem_mb}; {fix}")
        if partition.max_cpus_per_node is not None and request.cpus > partition.max_cpus_per_node:
            problems.append(f"{where}: threads {request.cpus} exceed the partition's MaxCPUsPerNode "
                            f"{partition.max_cpus_per_node}; {fix}")
        fitting = [n for n in members if n.cpus >= request.cpus and n.mem_mb >= (request.mem_mb or 0)
                   and n.gpus >= request.gpus]
        if members and not fitting:
            largest = ", ".join(f"{n.name}: {n.cpus} CPUs, {n.mem_mb} MB, {n.gpus} GPUs" for n in members[:3])
            problems.append(f"{where}: no node has {request.cpus} CPUs, {request.mem_mb} MB and {request.gpus} GPUs "
                            f"({largest}); {fix}")
        if request.signal_lead_s is not None and request.runtime_min:
            if request.signal_lead_s > MIN_TRAINING_SHARE * request.runtime_min * 60:
                problems.append(f"{where}: the stop signal comes {request.signal_lead_s} s before the "
                                f"{request.runtime_min}-minute limit, leaving less than half the job for training; "
                                "lower resources.train.save_before_limit or raise resources.train.runtime")
    return problems


def effective_status_command(setting: str | None, min_job_age: int | None, init_seconds: int,
                             sacct_installed: bool) -> str:
    """The job-state command the executor plugin will really use (its fallbacks, plugin version 2.8)."""
    command = setting or ("sacct" if sacct_installed else "squeue")
    if command == "squeue" and sacct_installed and (min_job_age is None or min_job_age < 3 * init_seconds):
        command = "sacct"
    if command == "sacct" and not sacct_installed:
        command = "squeue"
    return command


def status_problems(setting: str | None, min_job_age: int | None, init_seconds: int, sacct_installed: bool,
                    sacct_error: str | None, squeue_error: str | None) -> list[str]:
    """Why Snakemake could not follow its jobs (it would wait forever), with the fix; [] when it can.

    `sacct_error` / `squeue_error`: what the command printed when it failed, None when it worked.
    """
    command = effective_status_command(setting, min_job_age, init_seconds, sacct_installed)
    sacct_works = sacct_installed and sacct_error is None
    age = f"MinJobAge {min_job_age} s" if min_job_age is not None else "MinJobAge unknown"
    if command == "sacct" and not sacct_works:
        if setting == "squeue":  # the plugin's own fallback chose sacct
            return [f"Snakemake would follow jobs with sacct, which fails here ({sacct_error}): the executor "
                    f"plugin switches from squeue to sacct when {age} < 3 x slurm-init-seconds-before-status-checks "
                    f"({init_seconds} s). Set slurm-init-seconds-before-status-checks to at most "
                    f"{(min_job_age or 0) // 3} in {PROFILE}, or ask your admins for slurmdbd accounting"]
        if min_job_age is not None and min_job_age >= SQUEUE_MIN_JOB_AGE:
            return [f"Snakemake would follow jobs with sacct, which fails here ({sacct_error}); set "
                    f"`slurm-status-command: squeue` in {PROFILE} ({age} is enough for it)"]
        return [f"no way to follow jobs: sacct fails ({sacct_error}) and squeue forgets a job {age} after it "
                f"ends, while Snakemake may look only every {MAX_STATUS_INTERVAL} s; ask your admins for "
                f"slurmdbd accounting or MinJobAge >= {SQUEUE_MIN_JOB_AGE}"]
    if command == "squeue":
        if squeue_error is not None:
            return [f"squeue fails ({squeue_error}): is this a SLURM login node?"]
        if min_job_age is None or min_job_age < SQUEUE_MIN_JOB_AGE:
            if sacct_works:
                return [f"squeue forgets a job {age} after it ends, and Snakemake may look only every "
                        f"{MAX_STATUS_INTERVAL} s; set `slurm-status-command: sacct` in {PROFILE} (sacct works here)"]
            return [f"no way to follow jobs: squeue forgets a job {age} after it ends, Snakemake may look only "
                    f"every {MAX_STATUS_INTERVAL} s, and sacct is not available ({sacct_error or 'not installed'}); "
                    f"ask your admins for slurmdbd accounting or MinJobAge >= {SQUEUE_MIN_JOB_AGE}"]
    return []


Runner = Callable[[list[str]], tuple[int, str]]


def run_command(args: list[str]) -> tuple[int, str]:
    """(exit code, stdout + stderr) of a SLURM client command; 127 when it is not installed."""
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        return 127, f"{args[0]}: not installed"
    except subprocess.TimeoutExpired:
        return 124, f"{' '.join(args)}: no answer within 60 s"
    return done.returncode, (done.stdout + done.stderr).strip()


def check_submission(requests: list[JobRequest], status_command: str | None, init_seconds: int,
                     run: Runner = run_command, which: Callable[[str], str | None] = shutil.which) -> list[str]:
    """All problems of a SLURM run before it submits anything (empty: go ahead)."""
    code, config_text = run(["scontrol", "show", "config"])
    if code != 0:
        return [f"scontrol show config failed ({config_text}): SLURM's controller does not answer from here"]
    age = re.search(r"^MinJobAge\s*=\s*(\d+)", config_text, re.M)
    min_job_age = int(age.group(1)) if age else None
    sacct_installed = which("sacct") is not None
    sacct_error = None
    if sacct_installed:
        code, out = run(["sacct", "-X", "-n", "-o", "JobIdRaw", "--starttime", "now"])
        sacct_error = None if code == 0 else (out or f"exit code {code}")
    code, out = run(["squeue", "-h", "-o", "%i"])
    squeue_error = None if code == 0 else (out or f"exit code {code}")
    problems = status_problems(status_command, min_job_age, init_seconds, sacct_installed, sacct_error, squeue_error)

    code, partitions_text = run(["scontrol", "show", "partition", "-o"])
    code_nodes, nodes_text = run(["scontrol", "show", "node", "-o"])
    if code != 0 or code_nodes != 0:
        return problems + [f"scontrol show partition/node failed: {partitions_text} {nodes_text}".strip()]
    return problems + unschedulable(requests, parse_partitions(partitions_text), parse_nodes(nodes_text))


def account_note(has_account: bool, run: Runner = run_command) -> str | None:
    """What to expect when no job names a `slurm_account`: the executor plugin guesses one with sacct
    (`sacct -nu <user> -o Account`), and where sacct fails (no slurmdbd) it prints sacct's own error
    and submits without an account. None when there is nothing to say."""
    if has_account:
        return None
    code, out = run(["sacct", "-n", "-X", "-o", "Account%64", "--starttime", "now"])
    if code == 0:
        return None
    first = (out.splitlines() or [f"exit code {code}"])[0]
    return (f"no slurm_account is set, so the SLURM executor will guess one with sacct, which fails here ({first}): "
            "it then prints that error and submits every job without an account, which is harmless where the cluster "
            f"needs none; set `slurm_account` under default-resources in {PROFILE} to skip the guess")
