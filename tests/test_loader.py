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
    assert state == {"epoch": 1, "consumed": 12}  # 3 batches of 4

    resumed = loader(num_workers)
    resumed.load_state_dict(state)  # Lightning: load, iterate, then set_epoch of the current epoch
    rest = iter(resumed)
    resumed.sampler.set_epoch(1)
    assert list(rest) == expected[1][3:]
    assert resumed.state_dict() == {"epoch": 1, "consumed": N}
    assert epoch_batches(resumed, 2) == epoch_batches(loader(num_workers), 2)  # later epochs start at 0


def test_state_saved_at_the_end_of_an_epoch_resumes_at_the_next_one():
    resumed = loader()
    resumed.load_state_dict({"epoch": 0, "consumed": N})
    assert resumed.state_dict() == {"epoch": 1, "consumed": 0}
    assert list(resumed) == epoch_batches(loader(), 1)


def test_resume_position_belongs_to_its_epoch():
    dl = loader()
    dl.load_state_dict({"epoch": 3, "consumed": 8})
    dl.sampler.set_epoch(4)  # e.g. the run's epoch count says otherwise: start that epoch whole
    assert list(dl) == epoch_batches(loader(), 4)


def test_rejects_foreign_state():
    with pytest.raises(ValueError, match="epoch, consumed"):
        loader().load_state_dict({"batches": 3})
    with pytest.raises(ValueError, match="drop_last"):
        ResumableLoader(Indices(), batch_size=BATCH, sampler=EpochSampler(N, 0), drop_last=True)


def test_a_sampler_lightning_swapped_in_restarts_the_epoch_with_a_warning():
    # what DDP's sampler wrapper or overfit_batches leave: no EpochSampler to resume
    dl = ResumableLoader(Indices(), batch_size=BATCH, sampler=SequentialSampler(range(N)), collate_fn=list)
    with pytest.warns(UserWarning, match="epoch 2 restarts from its beginning instead of after 8"):
        dl.load_state_dict({"epoch": 2, "consumed": 8})
    assert [i for batch in dl for i in batch] == list(range(N))
