"""When a training run stops: the epoch cap, or no better validation mIoU for `patience` epochs after `min_epochs`.

HSNet trains for up to `niter` = 2000 epochs and keeps the epoch of the best validation mIoU; its
authors stopped by hand "when the validation (mIoU) curve starts to saturate" (docs/protocol.md,
"Stopping"). The rule below is that hand rule written down, so that a run ends by itself and the
plan can bound its length. The best epoch is HSNet's (strictly better mIoU; the earliest wins), so
stopping never changes which epoch `best.pt` holds among the epochs trained.
"""

from __future__ import annotations

from typing import Sequence


def check_stopping(epochs: int, patience: int | None, min_epochs: int) -> None:
    """Clear errors for an impossible rule (named as the config keys and flags name them)."""
    if patience is not None and patience < 1:
        raise ValueError(f"patience must be >= 1 epoch, or None for no rule (train to the epoch cap), got {patience}")
    if min_epochs < 0:
        raise ValueError(f"min_epochs must be >= 0, got {min_epochs}")
    if patience is not None and min_epochs > epochs:
        raise ValueError(f"min_epochs ({min_epochs}) is larger than the epoch cap ({epochs}): the patience rule "
                         "could never stop a run; lower min_epochs or raise epochs")


def stop_reason(history: Sequence[dict], epochs: int, patience: int | None, min_epochs: int = 0) -> dict | None:
    """Why a run with this per-epoch `history` (records with `best_epoch`) stops now, or None to train on.

    Returns {"rule": "epochs" | "patience", "epochs_trained", "best_epoch", "detail"}.
    """
    done = len(history)
    best = history[-1]["best_epoch"] if history else None
    if done >= epochs:
        return {"rule": "epochs", "epochs_trained": done, "best_epoch": best,
                "detail": f"reached the cap of {epochs} epochs"}
    if patience is None or done < max(min_epochs, 1) or best is None:
        return None
    since = (done - 1) - best
    if since < patience:
        return None
    return {"rule": "patience", "epochs_trained": done, "best_epoch": best,
            "detail": f"no better validation mIoU in the {since} epochs after epoch {best} (patience {patience}, "
                      f"at least {min_epochs} epochs)"}


def earliest_stop(epochs: int, patience: int | None, min_epochs: int) -> int:
    """The fewest epochs a run can train under the rule (the plan's lower bound)."""
    if patience is None:
        return epochs
    return min(epochs, max(min_epochs, patience + 1))


def assumed_stop(epochs: int, patience: int | None, min_epochs: int) -> int:
    """The plan's middle case, an assumption: the run's best epoch comes by `min_epochs`, and it stops `patience` later."""
    if patience is None:
        return epochs
    return min(epochs, max(min_epochs, 1) + patience)


def stop_without_better(epochs: int, patience: int | None, min_epochs: int, best_epoch: int | None) -> int:
    """The epochs a run trains in all if no epoch after `best_epoch` beats it (the status's shortest time left)."""
    if patience is None or best_epoch is None:
        return epochs
    return min(epochs, max(min_epochs, 1, best_epoch + 1 + patience))
