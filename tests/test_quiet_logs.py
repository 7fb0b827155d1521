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
    assert "Writing model shards" not in text  # transformers' bar while the export is saved
    assert "exported the model to" in text  # and it says where the result went


def test_saving_and_loading_an_export_shows_no_transformers_bar_and_leaves_the_users_bars_on(
        tiny_llava, tmp_path, capsys):
    from huggingface_hub.utils import are_progress_bars_disabled
    from transformers.utils import logging as hf_logging

    from c2s_lightning.models.export import export_pretrained, load_backbone

    hub_before = are_progress_bars_disabled()
    export_pretrained(tiny_llava, out_dir=tmp_path / "export")
    load_backbone(tmp_path / "export")
    shown = capsys.readouterr().err
    assert "Writing model shards" not in shown and "Loading weights" not in shown
    with hf_logging.tqdm(total=1, desc="the user's own bar") as bar:  # transformers' bars are back
        bar.update()
    assert "the user's own bar" in capsys.readouterr().err
    assert are_progress_bars_disabled() == hub_before  # huggingface_hub's download bars untouched
