"""benchmarks/gpu_suite.sh: syntax, the figures read from each script's output, one JSON file that is
never overwritten silently, and (slow) the whole CPU dry run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "benchmarks" / "gpu_suite.sh"
sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_suite_record as record  # noqa: E402

# What gpu_check.py prints at the end (its own format strings, two strategies shown).
GPU_CHECK_OUTPUT = """Seed set to 0
NVIDIA H200; 8 steps of batch 16 pairs
strategy                           params (M)  peak GiB  ratio  s/step (median)    loss
single-device bf16 (baseline)           101.2      3.10   1.00            0.210   4.812
deepspeed_zero3                         101.2      1.40   0.45            0.530   4.790
"""
SCORING_OUTPUT = """llava-1.5-7b-shaped@random[32L], cuda, torch.bfloat16, 16 threads; 5 anchors, 64 test images (release path on 16)
  release (1 pair per forward):    612.50 ms/image, peak +  1024.0 MiB
  ours (batch 20 pairs):            88.25 ms/image, peak + 25000.5 MiB (incl. one-off anchor work)
speedup=6.94 max_abs_diff=0.00781
"""


def _env(tmp_path: Path, **extra) -> dict:
    return os.environ | {"OUT": str(tmp_path / "out"), "GPU_SUITE_WORK": str(tmp_path / "work"),
                         "PY": sys.executable} | extra


def test_suite_is_valid_bash():
    subprocess.run(["bash", "-n", str(SUITE)], check=True)


def test_parsers_read_the_scripts_figures():
    check = record.parse_gpu_check(GPU_CHECK_OUTPUT)
    assert check["device"] == "NVIDIA H200; 8 steps of batch 16 pairs"
    assert [s["strategy"] for s in check["strategies"]] == ["single-device bf16 (baseline)", "deepspeed_zero3"]
    assert check["strategies"][1] == {"strategy": "deepspeed_zero3", "params_m": 101.2, "peak_gib": 1.4,
                                      "peak_ratio_to_baseline": 0.45, "s_per_step": 0.53, "loss": 4.79}
    scoring = record.parse_scoring(SCORING_OUTPUT)
    assert scoring["release"] == {"ms_per_image": 612.5, "peak_mib": 1024.0}
    assert scoring["ours"] == {"ms_per_image": 88.25, "peak_mib": 25000.5}
    assert (scoring["speedup"], scoring["max_abs_diff"]) == (6.94, 0.00781)
    assert scoring["device"] == "cuda" and scoring["dtype"] == "torch.bfloat16"


def test_steps_accumulate_in_one_file_and_a_failure_keeps_its_log(tmp_path):
    suite, log = tmp_path / "suite.json", tmp_path / "step.log"
    log.write_text(SCORING_OUTPUT)
    record.main([str(suite), "scoring_7b", "--rc", "0", "--seconds", "61.5", "--log", str(log), "--parse", "scoring"])
    log.write_text("Traceback (most recent call last):\nRuntimeError: CUDA out of memory\n")
    record.main([str(suite), "zero_steps", "--rc", "1", "--seconds", "3", "--log", str(log), "--parse", "gpu_check"])
    record.main([str(suite), "ddp_eval", "--note", "needs 2 GPUs, found 1"])
    steps = json.loads(suite.read_text())["steps"]
    assert steps["scoring_7b"]["status"] == "ok" and steps["scoring_7b"]["figures"]["speedup"] == 6.94
    assert steps["zero_steps"]["status"] == "failed"
    assert steps["zero_steps"]["log_tail"][-1] == "RuntimeError: CUDA out of memory"
    assert steps["ddp_eval"] == {"status": "skipped", "rc": None, "seconds": None, "note": "needs 2 GPUs, found 1"}


def test_without_two_gpus_ddp_eval_is_skipped_and_earlier_results_are_kept(tmp_path):
    earlier = tmp_path / "out" / "gpu_suite.json"
    earlier.parent.mkdir()
    earlier.write_text('{"steps": {"env": "from an earlier run"}}')
    done = subprocess.run(["bash", str(SUITE)], env=_env(tmp_path, GPU_SUITE_STEPS="ddp_eval"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    kept = [p for p in earlier.parent.iterdir() if p.name.startswith("gpu_suite.json.")]
    assert len(kept) == 1 and "from an earlier run" in kept[0].read_text()
    steps = json.loads(earlier.read_text())["steps"]
    assert list(steps) == ["ddp_eval"] and steps["ddp_eval"]["status"] == "skipped"


def test_dry_run_records_the_scoring_steps_as_ok_with_true_figures(tmp_path):
    """Issue 22's step on the transformers that runs the tests (5.17 in the floor run): a wrong
    figure fails the step (benchmarks/scoring.py checks its own logits) instead of reading ok."""
    import transformers

    done = subprocess.run(["bash", str(SUITE)], capture_output=True, text=True, timeout=300, env=_env(
        tmp_path, GPU_SUITE_DRY_RUN="1", GPU_SUITE_STEPS="env scoring_7b"))
    assert done.returncode == 0, done.stderr
    steps = json.loads((tmp_path / "out" / "gpu_suite.json").read_text())["steps"]
    assert {name: s["status"] for name, s in steps.items()} == dict.fromkeys(["env", "scoring_7b"], "ok")
    assert steps["env"]["figures"]["transformers"] == transformers.__version__
    assert steps["scoring_7b"]["figures"]["max_abs_diff"] < 1e-4


@pytest.mark.slow
def test_cpu_dry_run_runs_every_step(tmp_path):
    """About 2.5 minutes on 2 cores: every script at tiny sizes, DDP evaluation on 2 CPU processes."""
    done = subprocess.run(["bash", str(SUITE)], env=_env(tmp_path, GPU_SUITE_DRY_RUN="1"),
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    steps = json.loads((tmp_path / "out" / "gpu_suite.json").read_text())["steps"]
    assert {name: s["status"] for name, s in steps.items()} == dict.fromkeys(
        ["env", "zero_steps", "scoring_7b", "mplug_owl2", "score_loading_7b", "ddp_eval"], "ok")
    assert steps["zero_steps"]["figures"]["strategies"][0]["s_per_step"] > 0
    assert steps["scoring_7b"]["figures"]["max_abs_diff"] < 1e-4
    assert steps["mplug_owl2"]["figures"]["lora_step"]["loss"] > 0
    assert all(0 <= run["wait_share"] <= 1 for run in steps["score_loading_7b"]["figures"]["runs"].values())
    assert steps["ddp_eval"]["figures"]["equal_1e-6"] is True
