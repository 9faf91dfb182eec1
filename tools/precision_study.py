"""fp32 against bf16 and fp16 on the synthetic stand-in: train one run per precision, evaluate each on the same
test episodes, and print mIoU with 95 % intervals, the paired difference to fp32, and the times; not run by pytest.

Needs a finished `make synthetic` (its prepared data and pretrained backbone) in RESULTS:

    python tools/precision_study.py results/synthetic --benchmark pascal --masking fm --seeds 0 1 2 --out precision.json

Every run is a separate process with one torch thread, one after the other, so the times compare.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml

from hmfs.report.stats import bootstrap, combine_seeds, load_episodes, paired_difference

REPO = Path(__file__).resolve().parents[1]


def interval(summary) -> str:
    """`point [low, high]` of a seeds' summary (`combine_seeds`) in mIoU points, and the seeds' spread."""
    estimate = summary.miou
    spread = f" (sd {summary.miou_spread:.2f} over {summary.seeds} seeds)" if summary.seeds > 1 else ""
    return f"{estimate.point:.2f} [{estimate.low:.2f}, {estimate.high:.2f}]{spread}"


def relative_difference(a: Path, b: Path) -> float:
    """||a - b|| / ||b|| over all learner weights of two checkpoints."""
    x, y = (torch.load(path, weights_only=True)["learner"] for path in (a, b))
    keys = [k for k in y if y[k].is_floating_point()]
    difference = sum(float((x[k] - y[k]).double().pow(2).sum()) for k in keys) ** 0.5
    return difference / sum(float(y[k].double().pow(2).sum()) for k in keys) ** 0.5


def run(command: list[str]) -> float:
    """Seconds `python -m hmfs --threads 1 COMMAND` took; exits with the command's last error lines if it fails."""
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "hmfs", "--threads", "1", *command], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"`hmfs {' '.join(command)}` failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, help="a synthetic run's output_dir (data/ and weights/ below it)")
    parser.add_argument("--benchmark", default="pascal")
    parser.add_argument("--masking", default="fm")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16", "fp16"])
    parser.add_argument("--shots", nargs="+", type=int, default=[1, 5])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0],
                        help="training seeds: each precision trains once per seed; means and intervals hold the seeds' "
                             "spread, and each seed is paired with fp32's run of the same seed")
    parser.add_argument("--variant", default=None, help="with --trained: the run's variant folder (default: --masking)")
    parser.add_argument("--trained", action="store_true",
                        help="do not train: evaluate RESULTS' own fp32-trained run in each precision (where training "
                             "in bf16/fp16 is too slow, as on CPUs without bf16/fp16 kernels)")
    parser.add_argument("--epochs", type=int, default=None, help="override the synthetic config's epoch cap (and drop its patience)")
    parser.add_argument("--train-episodes", type=int, default=None, help="override the synthetic config's episodes per epoch")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    config = yaml.safe_load((REPO / "workflow" / "config.synthetic.yaml").read_text())
    schedule, evaluate = dict(config["train"][args.benchmark]), config["evaluate"]
    if args.epochs is not None:
        schedule.update(epochs=args.epochs, patience=None)
    if args.train_episodes is not None:
        schedule["train_episodes"] = args.train_episodes
    data = args.results / "data"
    common = ["--benchmark", args.benchmark, "--data-root", str(data), "--splits-dir", str(data / "splits"),
              "--fold", "0", "--backbone", "resnet18", "--masking", args.masking,
              "--backbone-weights", str(args.results / "weights" / "resnet18_synthetic.pt"),
              "--img-size", str(config["train"]["img_size"])]
    work = args.out.parent / f"{args.out.stem}_runs"
    rows = {}

    def evaluate_shots(checkpoint: Path, out: Path, precision: str, row: dict) -> None:
        """Evaluate `checkpoint` at each shot in `precision`; its seconds and ms per episode go into `row`."""
        for shot in args.shots:
            result = out / f"eval_{shot}shot.json"
            eval_seconds = run(["evaluate", *common, "--checkpoint", str(checkpoint), "--shot", str(shot),
                                "--seed", str(evaluate["seed"]), "--batch-size", str(evaluate["batch_size"]),
                                *(["--episodes", str(evaluate["episodes"][args.benchmark])]
                                  if evaluate["episodes"][args.benchmark] else []),
                                "--precision", precision, "--out", str(result)])
            timings = json.loads(result.read_text())["timings"]
            row[f"{shot}shot"] = {"eval_seconds": eval_seconds, "ms_per_episode": timings["ms_per_episode"]}
        print(f"{precision}/{out.name}", json.dumps(row), flush=True)

    for precision, seed in [(p, s) for p in args.precisions for s in args.seeds]:
        out = work / precision / f"seed{seed}"
        key = f"{precision}/seed{seed}"
        if args.trained:
            fold = "all" if args.benchmark == "fss" else "fold0"
            checkpoint = args.results / args.benchmark / "resnet18" / (args.variant or args.masking) / fold / "seed0" / "best.pt"
            rows[key] = {"checkpoint": str(checkpoint), "trained_in": "fp32"}
            evaluate_shots(checkpoint, out, precision, rows[key])
            continue
        flags = ["--batch-size", str(schedule["batch_size"]), "--lr", str(schedule["lr"]), "--epochs",
                 str(schedule["epochs"]), "--train-episodes", str(schedule["train_episodes"]), "--val-episodes",
                 str(schedule["val_episodes"]), "--precision", precision, "--seed", str(seed), "--out", str(out)]
        if schedule.get("patience"):
            flags += ["--patience", str(schedule["patience"]), "--min-epochs", str(schedule.get("min_epochs", 0))]
        if config["train"].get("cache_features"):
            flags.append("--cache-features")
        seconds = run(["train", *common, *flags])
        trained = json.loads((out / "train_summary.json").read_text())
        last = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()][-1]
        rows[key] = {"train_seconds": seconds, "epochs": trained["epochs"], "best_epoch": trained["best_epoch"],
                     "train_seconds_per_epoch": trained["seconds"] / trained["epochs"],
                     "last_train_loss": last["train_loss"], "last_val_loss": last["val_loss"],
                     "last_val_miou": last["val_miou"]}
        reference = work / "fp32" / f"seed{seed}" / "last.pt"
        if precision != "fp32" and reference.is_file():
            rows[key]["weights_vs_fp32"] = relative_difference(out / "last.pt", reference)
        evaluate_shots(out / "best.pt", out, precision, rows[key])
    summary = {}
    for precision in args.precisions:
        summary[precision] = {}
        for shot in args.shots:
            records = [load_episodes(work / precision / f"seed{s}" / f"eval_{shot}shot.json") for s in args.seeds]
            cell = summary[precision][f"{shot}shot"] = {"miou": interval(combine_seeds([bootstrap(r) for r in records]))}
            if precision != "fp32" and "fp32" in args.precisions:
                reference = [load_episodes(work / "fp32" / f"seed{s}" / f"eval_{shot}shot.json") for s in args.seeds]
                cell["minus_fp32"] = interval(combine_seeds([paired_difference(a, b) for a, b in zip(reference, records)]))
    args.out.write_text(json.dumps({"benchmark": args.benchmark, "masking": args.masking, "seeds": args.seeds,
                                    "summary": summary, "runs": rows}, indent=2))
    for precision in args.precisions:
        cells = "; ".join(f"{shot}-shot mIoU {summary[precision][f'{shot}shot']['miou']}"
                          + (f", minus fp32 {summary[precision][f'{shot}shot']['minus_fp32']}"
                             if "minus_fp32" in summary[precision][f"{shot}shot"] else "")
                          for shot in args.shots)
        runs = [rows[f"{precision}/seed{s}"] for s in args.seeds]
        trained = (f"training {sum(r['train_seconds'] for r in runs) / len(runs):.0f} s per run "
                   f"({', '.join(str(r['epochs']) for r in runs)} epochs)" if "train_seconds" in runs[0] else "fp32-trained")
        print(f"{precision}: {trained}, {cells}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
