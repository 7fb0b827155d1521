"""The training loader: each epoch's order, each rank's share of it, and the place that checkpoints save.

The order of an epoch is a pure function of ``(seed, epoch)``, so a run knows where it stands from
two numbers: the epoch and how many indices of its order were delivered as batches.
:class:`ResumableLoader` reports them through ``state_dict``/``load_state_dict``, which Lightning's
fit loop saves with every checkpoint and restores before it iterates again, so a run resumed
mid-epoch sees exactly the batches an uninterrupted run would have seen next. The loader keeps the
count, not the sampler: worker processes draw indices from the sampler ahead of training. Under
data parallelism every rank takes an equally long share of the order (:class:`EpochSampler`), so the
one state a checkpoint holds (rank 0's) resumes every rank, given the same number of processes.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

import torch.distributed as dist
from lightning.fabric.utilities import rank_zero_warn
from torch.utils.data import DataLoader, DistributedSampler


class EpochSampler(DistributedSampler):
    """Yields ``(epoch, index)`` in a seeded shuffled order, so workers read the current epoch's pairs.

    ``resume(epoch, start)`` makes the next pass over ``epoch`` begin at position ``start`` of this
    rank's share; a pass over any other epoch, or any later pass, starts at 0. With ``num_replicas``
    W > 1, rank r takes positions r, r + W, r + 2W, ... of the epoch's order, first padded to a
    multiple of W by repeating its first items, as torch's ``DistributedSampler`` does: every rank
    runs the same number of steps (a collective waiting for a rank with one batch fewer would hang),
    at the cost of at most W - 1 items seen twice. It is a ``DistributedSampler`` so that Lightning
    uses it as it is, instead of wrapping it in a sampler that would shard the order a second time
    and keep the resume position from reaching it.

    Args:
        n: Number of items.
        seed: Seed of the order.
        num_replicas: Ranks sharing each epoch; default: the ``torch.distributed`` world size when a
            process group is initialised (Lightning sets it up before it asks for the loader), else 1.
        rank: This process's rank among them; default: the ``torch.distributed`` rank, else 0.
    """

    def __init__(self, n: int, seed: int, num_replicas: int | None = None, rank: int | None = None):
        grouped = dist.is_available() and dist.is_initialized()
        if num_replicas is None:
            num_replicas = dist.get_world_size() if grouped else 1
        if rank is None:
            rank = dist.get_rank() if grouped else 0
        super().__init__(range(n), num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.n, self.start = n, 0

    def order(self, epoch: int) -> list[int]:
        """The shuffled indices of ``epoch`` (all ranks'): depends on ``(seed, epoch)`` only."""
        order = list(range(self.n))
        random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
        return order

    def share(self, epoch: int) -> list[int]:
        """This rank's indices of ``epoch``: every ``num_replicas``-th of the padded order."""
        order = self.order(epoch)
        if order:
            order *= math.ceil(self.total_size / len(order))  # pad by repeating from the start
        return order[: self.total_size][self.rank :: self.num_replicas]

    def set_epoch(self, epoch: int) -> None:
        """The epoch of the next pass (Lightning calls it as each epoch starts)."""
        if epoch != self.epoch:
            self.start = 0  # a resume position belongs to the epoch it was saved in
        self.epoch = epoch

    def resume(self, epoch: int, start: int) -> None:
        """Make the next pass the rest of ``epoch``, from position ``start`` of this rank's share."""
        self.epoch, self.start = epoch, start

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, start, self.start = self.epoch, self.start, 0
        return iter([(epoch, i) for i in self.share(epoch)[start:]])


class ResumableLoader(DataLoader):
    """A ``DataLoader`` over an :class:`EpochSampler` whose place in the epoch Lightning saves.

    Takes ``DataLoader``'s arguments unchanged (batches are not dropped), so Lightning can re-create
    it like any loader. Its position is exact with an ``EpochSampler``; when Lightning replaced the
    sampler (``overfit_batches``) or the number of processes changed, a resumed epoch restarts (warned).
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if self.drop_last:
            raise ValueError("ResumableLoader counts every index: drop_last must be False")
        self._epoch, self._consumed = 0, 0

    def __iter__(self) -> Iterator[Any]:
        sampler = self.sampler
        if isinstance(sampler, EpochSampler):  # now, not at the first batch
            self._epoch, self._consumed = sampler.epoch, sampler.start
        else:
            self._epoch, self._consumed = getattr(sampler, "epoch", 0), 0
        return self._counted(super().__iter__())

    def _counted(self, batches: Iterator[Any]) -> Iterator[Any]:
        for batch in batches:
            # batches arrive in sampler order, each one batch_size indices but the epoch's last
            self._consumed = min(self._consumed + self.batch_size, len(self.sampler))
            yield batch

    def state_dict(self) -> dict[str, int]:
        """The epoch of the current pass, the indices of this rank's share delivered so far, and
        the number of ranks sharing the epoch."""
        replicas = self.sampler.num_replicas if isinstance(self.sampler, EpochSampler) else 1
        return {"epoch": self._epoch, "consumed": self._consumed, "replicas": replicas}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue from ``state``: the rest of its epoch, or the next epoch if it was complete. A state
        without ``replicas`` (saved before runs were sharded) counts as one process."""
        if not {"epoch", "consumed"} <= set(state) <= {"epoch", "consumed", "replicas"}:
            raise ValueError(f"not a ResumableLoader state (keys epoch, consumed, replicas): {sorted(state)}")
        epoch, consumed, replicas = int(state["epoch"]), int(state["consumed"]), int(state.get("replicas", 1))
        sampler = self.sampler
        if not isinstance(sampler, EpochSampler):  # Lightning swapped it in (overfit_batches)
            if 0 < consumed < len(sampler):
                self._restart_warning(f"{type(sampler).__name__} replaced the EpochSampler", epoch, consumed)
            return
        if consumed >= math.ceil(sampler.n / replicas):  # saved as the epoch ended
            epoch, consumed = epoch + 1, 0
        if consumed and replicas != sampler.num_replicas:
            # another number of ranks cuts the order into other shares: a position in the old
            # share names no position in the new one
            self._restart_warning(f"saved with {replicas} process(es), resumed with {sampler.num_replicas}",
                                  epoch, consumed)
            consumed = 0
        sampler.resume(epoch, consumed)
        self._epoch, self._consumed = epoch, consumed

    @staticmethod
    def _restart_warning(reason: str, epoch: int, consumed: int) -> None:
        rank_zero_warn(f"{reason}: epoch {epoch} restarts from its beginning instead of after {consumed} indices")
