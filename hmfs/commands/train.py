"""`python -m hmfs train`: HSNet's training recipe for one run, seeded and resumable (hmfs.training.loop)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from hmfs.data.transforms import AUGMENT_OPS
from hmfs.files import DiskFull, UnreadableFile
from hmfs.options import add_common_model_args, resolve_splits_dir
from hmfs.training.attempts import EXIT_STOPPED, NO_PROGRESS_LIMIT, TrainingDiverged, TrainingStalled, TrainingStopped
from hmfs.training.config import TrainConfig
from hmfs.training.run import train
from hmfs.training.run_lock import RunLocked

log = logging.getLogger(__name__)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("train", help="train the HPN learner (HSNet's recipe), resumable",
                                   description=train.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_model_args(parser)
    parser.add_argument("--out", required=True, type=Path, help="output folder (best.pt, last.pt, history.jsonl, ...)")
    parser.add_argument("--state-dir", type=Path, default=None, help="resumable state (default: <out>.state)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--epochs", type=int, default=2000, help="the epoch cap (HSNet's niter)")
    parser.add_argument("--patience", type=int, default=None,
                        help="stop once the best validation mIoU is this many epochs old (default: train to --epochs)")
    parser.add_argument("--min-epochs", type=int, default=0, help="with --patience: never stop before this many epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-seed", type=int, default=0)
    parser.add_argument("--val-episodes", type=int, default=None,
                        help="validation episodes per epoch (default: PASCAL/COCO 1000, FSS-1000 every val image)")
    parser.add_argument("--train-episodes", type=int, default=None, help="episodes per epoch (default: the whole split)")
    parser.add_argument("--augment", action="store_true", help="photometric augmentation (the paper's * rows)")
    parser.add_argument("--augment-ops", nargs="+", choices=AUGMENT_OPS, default=None, metavar="OP",
                        help="with --augment: only these of the recipe's ops (default all: "
                             + ", ".join(AUGMENT_OPS) + "); the synthetic stand-in leaves out those that change colour")
    parser.add_argument("--log-every", type=int, default=50, help="log running train metrics every N steps")
    parser.add_argument("--cache-features", action="store_true",
                        help="compute the frozen backbone's maps of each un-augmented image once and keep them (up to "
                             "2 GiB): validation always, training without --augment; for small data (the synthetic "
                             "benchmark), where it halves a step's time")
    parser.add_argument("--no-tensorboard", dest="tensorboard", action="store_false",
                        help="write no TensorBoard event files (default: in <out>/tensorboard)")
    parser.add_argument("--checkpoint-every", type=int, default=0,
                        help="also save the resumable state every N training steps (long epochs, preemptible jobs)")
    parser.add_argument("--attempt", type=int, default=1,
                        help="Snakemake's attempt number of this job (1: first submission); a retry refuses to start "
                             f"after {NO_PROGRESS_LIMIT} attempts in a row stopped before finishing a step")
    parser.add_argument("--restart-finished", action="store_true",
                        help="train from scratch when the saved state is already finished (default: re-use it); "
                             "an unfinished state is always resumed")
    parser.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    config = TrainConfig(
        benchmark=args.benchmark, data_root=str(args.data_root), splits_dir=str(resolve_splits_dir(args.splits_dir)),
        fold=args.fold, backbone=args.backbone, masking=args.masking, out_dir=str(args.out),
        backbone_weights=str(args.backbone_weights) if args.backbone_weights else None,
        random_backbone=args.random_backbone, state_dir=str(args.state_dir) if args.state_dir else None,
        img_size=args.img_size, batch_size=args.batch_size, lr=args.lr, epochs=args.epochs, patience=args.patience, min_epochs=args.min_epochs,
        seed=args.seed,
        val_seed=args.val_seed, val_episodes=args.val_episodes, train_episodes=args.train_episodes,
        augment=args.augment, augment_ops=args.augment_ops, num_workers=args.num_workers, device=args.device, precision=args.precision,
        log_every=args.log_every, checkpoint_every=args.checkpoint_every, cache_features=args.cache_features,
        tensorboard=args.tensorboard,
    )
    try:
        train(config, restart_finished=args.restart_finished, attempt=args.attempt)
    except TrainingStopped:  # logged (in the run's train.log too) where it is raised
        return EXIT_STOPPED
    except (TrainingStalled, TrainingDiverged, UnreadableFile, DiskFull):  # one line, logged (in train.log too) there
        return 1
    except RunLocked as locked:  # another live trainer: this attempt leaves the run alone
        log.error("%s", locked)
        return 1
    return 0
