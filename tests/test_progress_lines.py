"""Training progress as lines when stdout is not a terminal: a real Trainer, the lines it prints."""

from __future__ import annotations

import io
import re

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import RichProgressBar, TQDMProgressBar

from c2s_lightning.training.progress_lines import ProgressLines, duration, use_line_progress

LINE = re.compile(r"^step (\d+)/(\d+) \| loss (\d+\.\d{4}) \| (\d+\.\d\d) it/s \| ETA (\S+)$")


class Regression(L.LightningModule):
    """A linear fit that records the loss of every step it returns."""

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.losses = []

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.losses.append(loss.item())
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(bar, steps, tmp_path):
    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(64, 4), torch.randn(64, 1))
    module = Regression()
    trainer = L.Trainer(max_steps=steps, callbacks=[bar], logger=False, enable_checkpointing=False,
                        default_root_dir=tmp_path, enable_model_summary=False)
    trainer.fit(module, torch.utils.data.DataLoader(data, batch_size=4))
    return module


def test_a_line_every_n_steps_with_the_step_loss_and_an_eta(tmp_path, capsys):
    module = _fit(ProgressLines(every_n_steps=3, every_seconds=3600), 7, tmp_path)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "training: 7 steps from step 0"
    lines = [LINE.match(line) for line in out[1:-1]]
    assert all(lines), out
    assert [int(m.group(1)) for m in lines] == [3, 6]
    assert {int(m.group(2)) for m in lines} == {7}
    # the loss shown is the loss of the step just taken (the module's own record, 1-based steps)
    assert [float(m.group(3)) for m in lines] == [round(module.losses[2], 4), round(module.losses[5], 4)]
    assert re.fullmatch(r"training done: step 7 in \d+s", out[-1])


def test_every_seconds_zero_prints_every_step(tmp_path, capsys):
    _fit(ProgressLines(every_n_steps=100, every_seconds=0), 4, tmp_path)
    steps = [int(m.group(1)) for m in map(LINE.match, capsys.readouterr().out.splitlines()) if m]
    assert steps == [1, 2, 3, 4]


@pytest.mark.parametrize("seconds, text", [(5, "5s"), (65, "1m05s"), (3725, "1h02m"), (float("inf"), "?")])
def test_duration(seconds, text):
    assert duration(seconds) == text


def test_eta_is_the_remaining_steps_at_the_rate_so_far():
    assert ProgressLines.line(100, 400, 0.5, 2.0) == "step 100/400 | loss 0.5000 | 2.00 it/s | ETA 2m30s"
    assert ProgressLines.line(5, None, None, 1.0) == "step 5 | 1.00 it/s"


class _Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


@pytest.mark.parametrize("bar", [RichProgressBar, TQDMProgressBar])
def test_the_default_bar_gives_way_only_off_a_terminal(bar, tmp_path):
    trainer = L.Trainer(callbacks=[bar()], logger=False, default_root_dir=tmp_path)
    assert not use_line_progress(trainer, _Stream(tty=True))
    assert type(trainer.progress_bar_callback) is bar
    assert use_line_progress(trainer, _Stream(tty=False))
    assert type(trainer.progress_bar_callback) is ProgressLines
    assert not use_line_progress(trainer, _Stream(tty=False))  # a ProgressLines stays as configured
