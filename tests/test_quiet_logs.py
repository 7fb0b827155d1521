"""A normal run says what it does and nothing the user cannot act on (one subprocess: real stderr)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from test_cli import QUICKSTART, override, synth  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[1]


def test_a_short_quickstart_fit_prints_no_warning_or_tip(tmp_path, synth):  # noqa: F811
    config = override(tmp_path, synth, max_steps=2, enable_progress_bar=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "c2s_lightning", "fit", "--config", QUICKSTART, "--config", config],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    text = (done.stdout + done.stderr).replace("\r", "\n")
    noisy = [line for line in text.splitlines()
             if "warning" in line.lower() or "Tip:" in line or "/-2" in line or "/-1" in line]
    assert noisy == []
    assert "exported the model to" in text  # and it says where the result went
