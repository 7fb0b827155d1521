"""Training progress as plain lines, for output that is not a terminal (CI, nohup, SLURM logs).

Lightning's bars redraw one line in place; written to a file or a pipe they show nothing until the
end (rich) or a wall of carriage returns (tqdm). ``fit`` uses ``ProgressLines`` instead when stdout
is not a terminal (``use_line_progress``); to choose its rhythm, name it in a config's
``trainer.callbacks`` with ``init_args``.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import torch
from lightning.pytorch.callbacks import ProgressBar, RichProgressBar, TQDMProgressBar


def duration(seconds: float) -> str:
    """``"1h02m"``, ``"9m45s"``, ``"12s"``; ``"?"`` when unknown."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class ProgressLines(ProgressBar):
    """A progress "bar" that prints ``step 120/2000 | loss 0.4123 | 3.21 it/s | ETA 9m45s`` every
    ``every_n_steps`` steps or every ``every_seconds``, whichever comes first.

    Args:
        every_n_steps: Steps between two lines (optimizer steps, ``trainer.global_step``).
        every_seconds: Longest time without a line while steps complete.
    """

    def __init__(self, every_n_steps: int = 50, every_seconds: float = 60.0):
        super().__init__()
        if every_n_steps < 1 or every_seconds < 0:
            raise ValueError(f"every_n_steps must be >= 1 and every_seconds >= 0, got {every_n_steps}, {every_seconds}")
        self.every_n_steps, self.every_seconds = every_n_steps, every_seconds
        self._enabled = True
        self._start = self._last_time = 0.0
        self._first_step = self._last_step = 0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    @property
    def is_enabled(self) -> bool:
        return self._enabled and self.trainer.is_global_zero

    def on_train_start(self, trainer, pl_module) -> None:
        self._start = self._last_time = time.monotonic()
        self._first_step = self._last_step = trainer.global_step
        if self.is_enabled:
            print(f"training: {self._total(trainer) or '?'} steps from step {trainer.global_step}", flush=True)

    def on_train_batch_end(self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int) -> None:
        step, now = trainer.global_step, time.monotonic()
        if not self.is_enabled or step == self._last_step:
            return
        if step - self._last_step < self.every_n_steps and now - self._last_time < self.every_seconds:
            return
        self._last_step, self._last_time = step, now
        rate = (step - self._first_step) / (now - self._start)
        print(self.line(step, self._total(trainer), _loss(outputs), rate), flush=True)

    def on_train_end(self, trainer, pl_module) -> None:
        if self.is_enabled:
            took = duration(time.monotonic() - self._start)
            print(f"training done: step {trainer.global_step} in {took}", flush=True)

    @staticmethod
    def line(step: int, total: int | None, loss: float | None, rate: float) -> str:
        """``step 120/2000 | loss 0.4123 | 3.21 it/s | ETA 9m45s`` (parts unknown are left out or ``?``)."""
        parts = [f"step {step}/{total}" if total else f"step {step}"]
        if loss is not None:
            parts.append(f"loss {loss:.4f}")
        parts.append(f"{rate:.2f} it/s")
        if total:
            parts.append(f"ETA {duration((total - step) / rate) if rate > 0 else '?'}")
        return " | ".join(parts)

    @staticmethod
    def _total(trainer) -> int | None:
        total = trainer.estimated_stepping_batches
        return int(total) if math.isfinite(total) else None


def _loss(outputs: Any) -> float | None:
    loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
    return float(loss.detach()) if isinstance(loss, torch.Tensor) else None


def use_line_progress(trainer, stream=None) -> bool:
    """Swap Lightning's redrawing bar (rich or tqdm) for ``ProgressLines`` when ``stream`` (default
    stdout) is not a terminal; returns whether it swapped (any other bar, or none, stays)."""
    stream = stream or sys.stdout
    bar = trainer.progress_bar_callback
    if type(bar) not in (RichProgressBar, TQDMProgressBar) or (hasattr(stream, "isatty") and stream.isatty()):
        return False
    trainer.callbacks[trainer.callbacks.index(bar)] = ProgressLines()
    return True
