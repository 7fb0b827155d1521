"""EpochSampler and ResumableLoader: the epoch order and the place in it that Lightning saves."""

import pytest
from torch.utils.data import Dataset, SequentialSampler

from c2s_lightning.data.loader import EpochSampler, ResumableLoader

N, BATCH = 22, 4  # 6 batches per epoch, the last one of 2


class Indices(Dataset):
    """Items are the ``(epoch, index)`` keys themselves, so batches show what was read."""

    def __len__(self):
        return N

    def __getitem__(self, key):
        return key


def loader(num_workers=0, seed=5):
    return ResumableLoader(Indices(), batch_size=BATCH, sampler=EpochSampler(N, seed),
                           collate_fn=list, num_workers=num_workers)


def epoch_batches(dl, epoch):
    dl.sampler.set_epoch(epoch)
    return list(dl)


def test_order_is_a_seeded_permutation_per_epoch():
    sampler = EpochSampler(N, seed=5)
    orders = [sampler.order(e) for e in range(3)]
    assert all(sorted(o) == list(range(N)) for o in orders)
    assert orders[0] != orders[1] != orders[2]
    assert EpochSampler(N, seed=5).order(1) == orders[1] != EpochSampler(N, seed=6).order(1)
    sampler.set_epoch(2)
    assert list(sampler) == [(2, i) for i in orders[2]]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_resumed_loader_continues_with_the_batches_an_uninterrupted_run_sees(num_workers):
    straight = loader(num_workers)
    expected = {e: epoch_batches(straight, e) for e in (0, 1)}
    assert [len(b) for b in expected[1]] == [4, 4, 4, 4, 4, 2]

    interrupted = loader(num_workers)
    interrupted.sampler.set_epoch(1)
    batches = iter(interrupted)
    seen = [next(batches) for _ in range(3)]
    state = interrupted.state_dict()
    assert seen == expected[1][:3]
    assert state == {"epoch": 1, "consumed": 12, "replicas": 1}  # 3 batches of 4, one process

    resumed = loader(num_workers)
    resumed.load_state_dict(state)  # Lightning: load, iterate, then set_epoch of the current epoch
    rest = iter(resumed)
    resumed.sampler.set_epoch(1)
    assert list(rest) == expected[1][3:]
    assert resumed.state_dict() == {"epoch": 1, "consumed": N, "replicas": 1}
    assert epoch_batches(resumed, 2) == epoch_batches(loader(num_workers), 2)  # later epochs start at 0


def test_state_saved_at_the_end_of_an_epoch_resumes_at_the_next_one():
    resumed = loader()
    resumed.load_state_dict({"epoch": 0, "consumed": N})
    assert resumed.state_dict() == {"epoch": 1, "consumed": 0, "replicas": 1}
    assert list(resumed) == epoch_batches(loader(), 1)


def test_resume_position_belongs_to_its_epoch():
    dl = loader()
    dl.load_state_dict({"epoch": 3, "consumed": 8})
    dl.sampler.set_epoch(4)  # e.g. the run's epoch count says otherwise: start that epoch whole
    assert list(dl) == epoch_batches(loader(), 4)


def test_rejects_foreign_state():
    with pytest.raises(ValueError, match="epoch, consumed, replicas"):
        loader().load_state_dict({"batches": 3})
    with pytest.raises(ValueError, match="drop_last"):
        ResumableLoader(Indices(), batch_size=BATCH, sampler=EpochSampler(N, 0), drop_last=True)


def test_a_sampler_lightning_swapped_in_restarts_the_epoch_with_a_warning():
    # what overfit_batches leaves: no EpochSampler to resume
    dl = ResumableLoader(Indices(), batch_size=BATCH, sampler=SequentialSampler(range(N)), collate_fn=list)
    with pytest.warns(UserWarning, match="epoch 2 restarts from its beginning instead of after 8"):
        dl.load_state_dict({"epoch": 2, "consumed": 8})
    assert [i for batch in dl for i in batch] == list(range(N))


def shard_loader(rank, world, n=N, seed=5):
    return ResumableLoader(Indices(), batch_size=BATCH, sampler=EpochSampler(n, seed, num_replicas=world, rank=rank),
                           collate_fn=list)


@pytest.mark.parametrize("world", [2, 3, 4])
def test_ranks_take_strided_shares_of_one_order_padded_from_its_start(world):
    order = EpochSampler(N, seed=5).order(1)  # the one-process order
    padded = order + order[: -N % world]  # hand-worked: 22 -> 22, 24, 24 items
    shares = []
    for rank in range(world):
        dl = shard_loader(rank, world)
        shares.append([i for batch in epoch_batches(dl, 1) for _, i in batch])
        assert len(dl.sampler) == len(padded) // world  # every rank the same number of items and steps
    assert shares == [padded[r::world] for r in range(world)]
    assert sorted(i for share in shares for i in share) == sorted(padded)  # together: the epoch, padding once


def test_each_rank_resumes_its_own_share():
    world, expected = 2, [epoch_batches(shard_loader(r, 2), 1) for r in range(2)]
    for rank in range(world):
        dl = shard_loader(rank, world)
        dl.sampler.set_epoch(1)
        batches = iter(dl)
        seen = [next(batches), next(batches)]
        state = dl.state_dict()
        assert seen == expected[rank][:2] and state == {"epoch": 1, "consumed": 8, "replicas": 2}
        resumed = shard_loader(rank, world)
        resumed.load_state_dict(state)
        assert list(resumed) == expected[rank][2:]


def test_another_number_of_processes_restarts_the_epoch_with_a_warning():
    dl = shard_loader(0, 2)
    with pytest.warns(UserWarning, match="saved with 1 process.*resumed with 2: epoch 3 restarts .* after 8"):
        dl.load_state_dict({"epoch": 3, "consumed": 8, "replicas": 1})
    assert list(dl) == epoch_batches(shard_loader(0, 2), 3)
    dl.load_state_dict({"epoch": 3, "consumed": N, "replicas": 1})  # epoch 3 was complete: next one, no warning
    assert dl.state_dict() == {"epoch": 4, "consumed": 0, "replicas": 2}
