"""fp32 against bf16 and fp16 on the synthetic stand-in: train one run per precision, evaluate each on the same
test episodes, and print mIoU with 95 % intervals, the paired difference to fp32, and the times; not run by pytest.

Needs a finished `make synthetic` (its prepared data and pretrained backbone) in RESULTS:

    python tools/precision_study.py results/synthetic --benchmark pascal --masking fm --out precision.json

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

from hmfs.report.stats import bootstrap, load_episodes, paired_difference

REPO = Path(__file__).resolve().parents[1]


def interval(estimate) -> str:
    """`point [low, high]` of a bootstrap estimate, in mIoU points."""
    return f"{estimate.point:.2f} [{estimate.low:.2f}, {estimate.high:.2f}]"


def relative_difference(a: Path, b: Path) -> float:
    """||a - b|| / ||b|| over all learner weights of two checkpoints."""
    x, y = (torch.load(path, weights_only=True)["learner"] for path in (a, b))
    keys = [k for k in y if y[k].is_floating_point()]
    difference = sum(float((x[k] - y[k]).double().pow(2).sum()) for k in keys) ** 0.5
    return difference / sum(float(y[k].double().pow(2).sum()) for k in keys) ** 0.5


def run(command: list[str]) -> float:
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "hmfs", "--threads", "1", *command], check=True, capture_output=True, text=True)
    return time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, help="a synthetic run's output_dir (data/ and weights/ below it)")
    parser.add_argument("--benchmark", default="pascal")
    parser.add_argument("--masking", default="fm")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16", "fp16"])
    parser.add_argument("--shots", nargs="+", type=int, default=[1, 5])
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
        print(precision, json.dumps(row), flush=True)

    for precision in args.precisions:
        out = work / precision
        if args.trained:
            fold = "all" if args.benchmark == "fss" else "fold0"
            checkpoint = args.results / args.benchmark / "resnet18" / (args.variant or args.masking) / fold / "seed0" / "best.pt"
            rows[precision] = {"checkpoint": str(checkpoint), "trained_in": "fp32"}
            evaluate_shots(checkpoint, out, precision, rows[precision])
            continue
        flags = ["--batch-size", str(schedule["batch_size"]), "--lr", str(schedule["lr"]), "--epochs",
                 str(schedule["epochs"]), "--train-episodes", str(schedule["train_episodes"]), "--val-episodes",
                 str(schedule["val_episodes"]), "--precision", precision, "--out", str(out)]
        if schedule.get("patience"):
            flags += ["--patience", str(schedule["patience"]), "--min-epochs", str(schedule.get("min_epochs", 0))]
        if config["train"].get("cache_features"):
            flags.append("--cache-features")
        seconds = run(["train", *common, *flags])
        summary = json.loads((out / "train_summary.json").read_text())
        last = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()][-1]
        rows[precision] = {"train_seconds": seconds, "epochs": summary["epochs"], "best_epoch": summary["best_epoch"],
                           "train_seconds_per_epoch": summary["seconds"] / summary["epochs"],
                           "last_train_loss": last["train_loss"], "last_val_loss": last["val_loss"],
                           "last_val_miou": last["val_miou"]}
        if precision != "fp32" and (work / "fp32" / "last.pt").is_file():
            rows[precision]["weights_vs_fp32"] = relative_difference(out / "last.pt", work / "fp32" / "last.pt")
        evaluate_shots(out / "best.pt", out, precision, rows[precision])
    for precision in args.precisions:
        for shot in args.shots:
            records = load_episodes(work / precision / f"eval_{shot}shot.json")
            cell = rows[precision][f"{shot}shot"]
            cell["miou"] = interval(bootstrap(records).miou)
            if precision != "fp32" and "fp32" in args.precisions:
                reference = load_episodes(work / "fp32" / f"eval_{shot}shot.json")
                cell["minus_fp32"] = interval(paired_difference(reference, records).miou)  # this - fp32
    args.out.write_text(json.dumps({"benchmark": args.benchmark, "masking": args.masking, "rows": rows}, indent=2))
    for precision, row in rows.items():
        cells = "; ".join(f"{shot}-shot mIoU {row[f'{shot}shot']['miou']}"
                          + (f", minus fp32 {row[f'{shot}shot']['minus_fp32']}" if 'minus_fp32' in row[f'{shot}shot'] else "")
                          for shot in args.shots)
        trained = f"training {row['train_seconds']:.0f} s ({row['epochs']} epochs)" if "train_seconds" in row else "fp32-trained"
        print(f"{precision}: {trained}, {cells}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
