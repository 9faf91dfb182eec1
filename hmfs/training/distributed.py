"""Data-parallel training over torch.distributed: the ranks, each rank's share of a global batch, and the reductions.

One process per GPU (or per CPU share with the gloo backend), started by `torchrun`, which sets
RANK, WORLD_SIZE and LOCAL_RANK. The global batch stays the configured one: every global batch of
the single-process episode stream is split into one contiguous share per rank, and each rank's loss
is weighted so that DistributedDataParallel's gradient average over the ranks equals the gradient of
the global batch's mean loss, also for a short last batch. Validation episodes are sharded and the
IoU sums (integer pixel counts) are added over the ranks, so the validation mIoU is exactly the
single-process one. Without torchrun's variables everything here is the single-process identity.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
import torch.distributed as dist

from hmfs.metrics import IoUAccumulator

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ranks:
    """This process's place among the training processes (rank 0 writes every file)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def ranks_from_environment(env: Mapping[str, str] | None = None) -> Ranks:
    """torchrun's RANK, WORLD_SIZE and LOCAL_RANK; one process (rank 0 of 1) without them."""
    env = os.environ if env is None else env
    if "WORLD_SIZE" not in env:
        return Ranks()
    try:
        ranks = Ranks(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", env["RANK"])))
    except (KeyError, ValueError) as error:
        raise ValueError(f"WORLD_SIZE is set ({env['WORLD_SIZE']!r}) but RANK/LOCAL_RANK are missing or not numbers "
                         f"({error}); start several processes with torchrun, or unset WORLD_SIZE") from None
    if not 0 <= ranks.rank < ranks.world or ranks.world < 1:
        raise ValueError(f"RANK {ranks.rank} outside 0..WORLD_SIZE-1 (WORLD_SIZE {ranks.world})")
    return ranks


def rank_device(name: str, ranks: Ranks) -> str:
    """The device of this rank: `cuda` becomes `cuda:<LOCAL_RANK>` (one GPU per process); cpu stays cpu."""
    if ranks.distributed and name == "cuda":
        return f"cuda:{ranks.local_rank}"
    return name


@contextlib.contextmanager
def process_group(ranks: Ranks, device: torch.device, timeout_minutes: int = 30):
    """Join the ranks' process group (NCCL on GPUs, gloo on the CPU) for the duration; nothing for one process."""
    if not ranks.distributed:
        yield
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, rank=ranks.rank, world_size=ranks.world,
                            timeout=datetime.timedelta(minutes=timeout_minutes))
    log.info("rank %d of %d joined the %s process group on %s", ranks.rank, ranks.world, backend, device)
    try:
        yield
    finally:
        dist.destroy_process_group()


@dataclass(frozen=True)
class Share:
    """One rank's part of one global batch: the episodes it computes and the weight of its mean loss.

    `weight` = episodes here x ranks / episodes in the global batch (1 for a single process), so that
    the ranks' averaged gradients are the gradient of the global batch's mean loss; the reported loss
    adds `weight / ranks` of this rank's mean loss, and rank 0 alone counts the batch (`counts_batch`),
    so that the summed train loss is the one-process mean over global batches. A rank whose part of
    a short last batch is empty computes on a stand-in episode with weight 0 (`counted` False):
    DistributedDataParallel needs every rank in every step.
    """

    indices: list[int]
    weight: float
    counted: bool = True
    loss_share: float = 1.0
    counts_batch: bool = True


def split_batches(order: Sequence[int], batch_size: int, ranks: Ranks) -> list[Share]:
    """This rank's share of each global batch of `order` (batches of `batch_size`, the last one possibly short)."""
    shares = []
    for start in range(0, len(order), batch_size):
        batch = list(order[start:start + batch_size])
        if not ranks.distributed:
            shares.append(Share(batch, 1.0))
            continue
        base, extra = divmod(len(batch), ranks.world)  # the first `extra` ranks take one more
        begin = ranks.rank * base + min(ranks.rank, extra)
        mine = batch[begin:begin + base + (ranks.rank < extra)]
        if mine:
            shares.append(Share(mine, len(mine) * ranks.world / len(batch), loss_share=len(mine) / len(batch),
                                counts_batch=ranks.main))
        else:
            shares.append(Share(batch[:1], 0.0, counted=False, loss_share=0.0, counts_batch=ranks.main))
    return shares


def shard(indices: Sequence[int], ranks: Ranks) -> list[int]:
    """This rank's part of `indices` for a pass whose results are summed over ranks (validation)."""
    return list(indices[ranks.rank::ranks.world])


def _all_reduce(tensor: torch.Tensor, op=dist.ReduceOp.SUM) -> torch.Tensor:
    """all_reduce a CPU tensor (through the GPU under NCCL, which reduces device tensors only); returns it on the CPU."""
    if dist.get_backend() == "nccl":
        on_device = tensor.to(torch.device("cuda", torch.cuda.current_device()))
        dist.all_reduce(on_device, op=op)
        return on_device.cpu()
    tensor = tensor.clone()
    dist.all_reduce(tensor, op=op)
    return tensor


def reduce_accumulator(meter: IoUAccumulator, ranks: Ranks) -> None:
    """Add every rank's sums into `meter` on every rank (integer IoU sums: exact)."""
    if not ranks.distributed:
        return
    for name in ("intersection", "union", "episodes"):
        setattr(meter, name, _all_reduce(getattr(meter, name)))
    loss = _all_reduce(torch.tensor([meter.loss_sum, float(meter.loss_count)], dtype=torch.float64))
    meter.loss_sum, meter.loss_count = float(loss[0]), int(round(float(loss[1])))


def summed_state(meter: IoUAccumulator, ranks: Ranks) -> dict:
    """`meter.state_dict()` with every rank's sums added (what rank 0 saves of a partial epoch); `meter` is left as is."""
    if not ranks.distributed:
        return meter.state_dict()
    summed = IoUAccumulator(meter.class_ids, meter.nclass)
    summed.load_state_dict(meter.state_dict())
    reduce_accumulator(summed, ranks)
    return summed.state_dict()


def agreed_signal(signal_number: int, ranks: Ranks) -> int:
    """The largest stop-signal number any rank has received (0: none): all ranks stop at the same step."""
    if not ranks.distributed:
        return signal_number
    return int(_all_reduce(torch.tensor([signal_number], dtype=torch.int64), dist.ReduceOp.MAX).item())


def barrier(ranks: Ranks) -> None:
    if ranks.distributed:
        dist.barrier()
