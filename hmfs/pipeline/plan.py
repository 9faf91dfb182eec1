"""The cost plan of a config's grid before any job: episodes, FLOPs and estimated GPU-hours per job, and a greedy schedule on N GPUs."""

from __future__ import annotations

import heapq
import statistics
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from hmfs.pipeline.argv import training_gpus
from hmfs.pipeline.episode_counts import EpisodeCounter
from hmfs.pipeline.flops import episode_flops
from hmfs.pipeline.grid import evaluations, training_runs
from hmfs.training.stopping import assumed_stop, earliest_stop

# The stopping cases a plan is given for: every training to its cap, stopped at the earliest epoch its rule
# allows, and the assumed middle (best epoch by min_epochs, stopped `patience` epochs later).
STOP_CASES = {"cap": None, "assumed": assumed_stop, "earliest": earliest_stop}

# ASSUMED sustained TFLOP/s of one GPU on this workload (convolutions of small batches, fp32): round
# guesses to size a plan, not measurements. `python -m hmfs bench --out FILE` on the GPU replaces them.
DEVICE_CLASSES = {"t4": 5.0, "v100": 12.0, "a100": 30.0, "h100": 60.0}
DEFAULT_DEVICE_CLASS = "a100"
# For scale only, not computed here: HSNet's authors report about 2 days per PASCAL-5i run and about
# a week per COCO-20i run, each on 4 GPUs.


@dataclass(frozen=True)
class Throughput:
    """Sustained FLOP/s of one GPU for training steps and for evaluation passes, and where they come from."""

    train: float
    evaluate: float
    source: str  # "assumed: a100 at 30 TFLOP/s" or "measured: bench FILE ..."


def device_class_throughput(name: str) -> Throughput:
    if name not in DEVICE_CLASSES:
        raise ValueError(f"unknown --device-class {name!r}; accepted: {', '.join(DEVICE_CLASSES)}")
    rate = DEVICE_CLASSES[name] * 1e12
    return Throughput(rate, rate, f"assumed: {name} at {DEVICE_CLASSES[name]:g} TFLOP/s sustained (an assumption, "
                                  "not a measurement)")


def _achieved(report: dict[str, Any], source: str) -> tuple[float, float]:
    """(training, evaluation) FLOP/s of one `python -m hmfs bench` report: the FLOP model of its 1-shot
    evaluation and training step over their measured median milliseconds."""
    try:
        model = episode_flops(report["backbone"], report["masking"], int(report["img_size"]))
        eval_ms = float(report["results"]["eval_1shot"]["total"])
        train_ms = float(report["results"]["train_step"]["total"])
        eval_batch = int(report["batch_size"])
        train_batch = int(report.get("train_batch_size") or eval_batch)
    except (KeyError, TypeError) as error:
        raise ValueError(f"{source}: not a `python -m hmfs bench --out` or `gpu-check` report (missing {error})") from None
    if eval_ms <= 0 or train_ms <= 0:
        raise ValueError(f"{source}: measured times must be positive, got {eval_ms} and {train_ms} ms")
    return (train_batch * (model.training_forward + model.training_backward) / (train_ms / 1000),
            eval_batch * model.evaluation(1) / (eval_ms / 1000))


def bench_throughput(report: dict[str, Any], source: str = "bench file", precision: str = "fp32") -> Throughput:
    """Achieved FLOP/s from a `python -m hmfs bench` report, or the median over the `precision` reports of a
    `python -m hmfs gpu-check` file (the grid's precision: train.precision)."""
    if "reports" not in report:
        train, evaluate = _achieved(report, source)
        return Throughput(train, evaluate, f"measured: {source} ({report['backbone']} {report['masking']} "
                          f"{report['img_size']}px on {report.get('device', '?')}), applied to every backbone and size")
    usable = [r for r in report["reports"] if "error" not in r and r.get("precision", "fp32") == precision]
    if not usable:
        raise ValueError(f"{source}: no successful {precision} report (run gpu-check with --precisions {precision})")
    rates = [_achieved(r, source) for r in usable]
    train, evaluate = (statistics.median(rate[i] for rate in rates) for i in (0, 1))
    return Throughput(train, evaluate, f"measured: {source} (gpu-check on {report.get('device_name', report.get('device'))}, "
                      f"median of {len(usable)} {precision} reports), applied to every backbone and size")


@dataclass
class Job:
    """One training or evaluation: its episodes, FLOPs per episode, and estimated hours."""

    key: str  # the run's key, or run key/evaluation name
    kind: str  # "train" or "evaluate"
    group: str  # jobs summarised on one line share it
    episodes: int | None  # None: unknown until the split lists exist (see note)
    forward_per_episode: int  # FLOPs
    backward_per_episode: int  # FLOPs (training episodes only)
    flops: float | None  # the whole job
    gpus: int  # devices it holds (resources.<stage>.gpu, at least 1)
    hours: float | None  # estimated wall hours (linear scaling over its GPUs assumed)
    depends_on: str | None = None
    note: str = ""
    stop_shares: dict[str, float] | None = None  # trainings: epochs in each STOP_CASES case / the epoch cap

    @property
    def gpu_hours(self) -> float | None:
        return None if self.hours is None else self.hours * self.gpus


def _training_job(config: dict[str, Any], run, counter: EpisodeCounter, rate: Throughput) -> Job:
    schedule, size = config["train"][run.benchmark], config["train"]["img_size"]
    model = episode_flops(run.backbone, run.masking, size)
    train, val = counter.train_per_epoch(run), counter.val_per_epoch(run)
    gpus = training_gpus(config, run.benchmark) or 1
    known = train.episodes is not None and val.episodes is not None
    epochs = schedule["epochs"]
    episodes = epochs * (train.episodes + val.episodes) if known else None
    seconds = (epochs * (train.episodes * (model.training_forward + model.training_backward) / rate.train
                         + val.episodes * model.evaluation(1) / rate.evaluate)) if known else None
    flops = (epochs * (train.episodes * (model.training_forward + model.training_backward)
                       + val.episodes * model.evaluation(1))) if known else None
    note = "; ".join(n for n in (train.note, val.note) if n)
    if known:
        note = f"{epochs} epochs x ({train.episodes} train + {val.episodes} val)" + (f"; {note}" if note else "")
    rule = (epochs, schedule.get("patience"), schedule.get("min_epochs", 0))
    stops = {case: epochs if stop is None else stop(*rule) for case, stop in STOP_CASES.items()}
    if stops["earliest"] < epochs:
        note += f"; the stopping rule ends it after {stops['earliest']}-{epochs} (assumed {stops['assumed']})"
    return Job(run.key, "train", f"{run.benchmark} {run.backbone} {run.variant}", episodes, model.training_forward,
               model.training_backward, flops, gpus, None if seconds is None else seconds / 3600 / gpus, note=note,
               stop_shares={case: n / epochs for case, n in stops.items()})


def _evaluation_job(config: dict[str, Any], evaluation, counter: EpisodeCounter, rate: Throughput) -> Job:
    run = evaluation.run
    model = episode_flops(run.backbone, run.masking, config["train"]["img_size"])
    count = counter.evaluation(evaluation)
    forward = model.evaluation(evaluation.shot)
    gpus = max(1, config["resources"]["evaluate"]["gpu"])
    flops = None if count.episodes is None else count.episodes * forward
    hours = None if flops is None else flops / rate.evaluate / 3600 / gpus
    group = f"{evaluation.test_benchmark} {run.backbone} {run.variant} {evaluation.shot}-shot" + (
        f" (trained on {run.benchmark})" if evaluation.test_benchmark != run.benchmark else "")
    return Job(f"{run.key}/{evaluation.name}", "evaluate", group, count.episodes, forward, 0, flops, gpus, hours,
               run.key if run.origin == "trained" else None, count.note)


def greedy_schedule(jobs: list[Job], gpus: int) -> float:
    """Makespan (hours) of list scheduling on `gpus` GPUs: whenever GPUs are free, the longest job whose
    training has finished starts. Jobs of unknown length are left out."""
    known = [job for job in jobs if job.hours is not None]
    finish: dict[str, float] = {}
    waiting = {job.key: job for job in known}
    free = [0.0] * gpus  # when each GPU is next free (a heap)
    while waiting:
        now = heapq.heappop(free)
        ready = [j for j in waiting.values()
                 if j.depends_on is None or (j.depends_on in finish and finish[j.depends_on] <= now)
                 or (j.depends_on not in waiting and j.depends_on not in finish)]
        if not ready:  # idle until the next training ends
            heapq.heappush(free, min(t for t in finish.values() if t > now))
            continue
        job = max(ready, key=lambda j: (j.hours, j.key))
        held = [now] + [heapq.heappop(free) for _ in range(min(job.gpus, gpus) - 1)]
        end = max(held) + job.hours
        for _ in held:
            heapq.heappush(free, end)
        finish[job.key] = end
        del waiting[job.key]
    return max(finish.values(), default=0.0)


def longest_chain(jobs: list[Job]) -> tuple[float, str]:
    """The longest training plus its longest evaluation (hours), and its run key: no schedule beats it."""
    chains: dict[str, float] = {j.key: j.hours for j in jobs if j.kind == "train" and j.hours is not None}
    tails: dict[str, float] = {}
    for job in jobs:
        if job.kind == "evaluate" and job.hours is not None:
            head = job.depends_on or job.key
            tails[head] = max(tails.get(head, 0.0), job.hours)
    total = {key: chains.get(key, 0.0) + tails.get(key, 0.0) for key in set(chains) | set(tails)}
    key = max(total, key=total.get, default="")
    return total.get(key, 0.0), key


def plan(config: dict[str, Any], rate: Throughput, gpus: int, root: Path | None = None) -> dict[str, Any]:
    """The cost plan of `config`'s grid: every job, the totals, and the schedule on `gpus` GPUs."""
    if gpus < 1:
        raise ValueError(f"--gpus must be at least 1, got {gpus}")
    counter = EpisodeCounter(config, root)
    jobs = [_training_job(config, run, counter, rate) for run in training_runs(config)]
    jobs += [_evaluation_job(config, e, counter, rate) for e in evaluations(config)]
    gpu_hours = {kind: sum(j.gpu_hours for j in jobs if j.kind == kind and j.gpu_hours is not None)
                 for kind in ("train", "evaluate")}
    chain, chain_key = longest_chain(jobs)
    by_stop = {}
    for case in STOP_CASES:
        scaled = [replace(j, hours=None if j.hours is None or not j.stop_shares else j.hours * j.stop_shares[case])
                  if j.kind == "train" else j for j in jobs]
        by_stop[case] = {"gpu_hours": sum(j.gpu_hours for j in scaled if j.gpu_hours is not None),
                         "makespan_hours": greedy_schedule(scaled, gpus), "longest_chain_hours": longest_chain(scaled)[0]}
    return {
        "estimate": True, "throughput": asdict(rate), "gpus": gpus,
        "jobs": [{**asdict(j), "gpu_hours": j.gpu_hours} for j in jobs],
        "totals": {
            "trainings": sum(j.kind == "train" for j in jobs), "evaluations": sum(j.kind == "evaluate" for j in jobs),
            "unknown_length": sum(j.hours is None for j in jobs),
            "flops": sum(j.flops for j in jobs if j.flops is not None),
            "gpu_hours_train": gpu_hours["train"], "gpu_hours_evaluate": gpu_hours["evaluate"],
            "gpu_hours": gpu_hours["train"] + gpu_hours["evaluate"],
            "makespan_hours": greedy_schedule(jobs, gpus),
            "by_stop": by_stop,
            "longest_chain_hours": chain, "longest_chain_run": chain_key,
        },
    }


def _duration(hours: float) -> str:
    return f"{hours:.3g} h" if hours < 48 else f"{hours / 24:.3g} days"


def short_summary(result: dict[str, Any]) -> str:
    """Three lines for the log of a run that starts: the grid's estimated cost (`python -m hmfs plan` has the rest)."""
    totals, cases = result["totals"], result["totals"]["by_stop"]
    gpu_hours = {case: f"{row['gpu_hours']:,.3g}" if row["gpu_hours"] < 100 else f"{row['gpu_hours']:,.0f}"
                 for case, row in cases.items()}
    wall = {case: _duration(row["makespan_hours"]) for case, row in cases.items()}
    return "\n".join([
        f"hmfs plan (ESTIMATES; {result['throughput']['source']}): {totals['trainings']} trainings, "
        f"{totals['evaluations']} evaluations",
        f"  GPU-hours {gpu_hours['earliest']} - {gpu_hours['cap']} (assumed {gpu_hours['assumed']}); wall time on "
        f"{result['gpus']} GPUs {wall['earliest']} - {wall['cap']} (assumed {wall['assumed']}), from the earliest stop "
        "to every epoch cap",
        "  the whole plan: python -m hmfs plan --config <this config> [--bench FILE from your GPU] [--gpus N]",
    ])
