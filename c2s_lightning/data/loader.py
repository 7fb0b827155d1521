"""The training loader: each epoch's order, and the place in it that checkpoints save.

The order of an epoch is a pure function of ``(seed, epoch)``, so a run knows where it stands from
two numbers: the epoch and how many indices of that epoch's order were already delivered as
batches. :class:`ResumableLoader` reports them through ``state_dict``/``load_state_dict``, the
interface Lightning's fit loop saves with every checkpoint and restores before it iterates again,
so a run resumed mid-epoch sees exactly the batches an uninterrupted run would have seen next.
The count is kept by the loader, not the sampler: worker processes draw indices from the sampler
ahead of the batches training has consumed. Under DDP each rank would count its own shard's
indices; the order stays the same pure function for every rank to shard.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from lightning.fabric.utilities import rank_zero_warn
from torch.utils.data import DataLoader, Sampler


class EpochSampler(Sampler):
    """Yields ``(epoch, index)`` in a seeded shuffled order, so workers read the current epoch's pairs.

    Lightning calls ``set_epoch`` at every epoch start. ``resume(epoch, start)`` makes the next pass
    over ``epoch`` begin at position ``start`` of its order; a pass over any other epoch, or any
    later pass, starts at 0.

    Args:
        n: Number of items.
        seed: Seed of the order.
    """

    def __init__(self, n: int, seed: int):
        self.n, self.seed = n, seed
        self.epoch, self.start = 0, 0

    def order(self, epoch: int) -> list[int]:
        """The shuffled indices of ``epoch``: depends on ``(seed, epoch)`` only."""
        order = list(range(self.n))
        random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
        return order

    def set_epoch(self, epoch: int) -> None:
        """The epoch of the next pass (Lightning calls it as each epoch starts)."""
        if epoch != self.epoch:
            self.start = 0  # a resume position belongs to the epoch it was saved in
        self.epoch = epoch

    def resume(self, epoch: int, start: int) -> None:
        """Make the next pass the rest of ``epoch``, from position ``start`` of its order."""
        self.epoch, self.start = epoch, start

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, start, self.start = self.epoch, self.start, 0
        return iter([(epoch, i) for i in self.order(epoch)[start:]])


class ResumableLoader(DataLoader):
    """A ``DataLoader`` over an :class:`EpochSampler` whose place in the epoch Lightning saves.

    Takes ``DataLoader``'s arguments unchanged (batches are not dropped), so Lightning can
    re-create it like any loader. Its position is exact with an ``EpochSampler``; when Lightning
    replaced the sampler (a DDP wrapper, ``overfit_batches``), a resumed epoch restarts whole, with
    a warning.
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
        """The epoch of the current pass and the indices of its order delivered so far."""
        return {"epoch": self._epoch, "consumed": self._consumed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue from ``state``: the rest of its epoch, or the next epoch if it was complete."""
        if set(state) != {"epoch", "consumed"}:
            raise ValueError(f"not a ResumableLoader state (keys epoch, consumed): {sorted(state)}")
        epoch, consumed = int(state["epoch"]), int(state["consumed"])
        if consumed >= len(self.sampler):  # saved as the epoch ended
            epoch, consumed = epoch + 1, 0
        if not isinstance(self.sampler, EpochSampler):
            # Lightning swaps the sampler for DDP (a wrapper that shards it) or overfit_batches;
            # resuming a shard exactly needs a sampler that knows its rank (not written yet)
            if consumed:
                rank_zero_warn(f"{type(self.sampler).__name__} replaced the EpochSampler: epoch {epoch} "
                               f"restarts from its beginning instead of after {consumed} indices")
            return
        self.sampler.resume(epoch, consumed)
        self._epoch, self._consumed = epoch, consumed
