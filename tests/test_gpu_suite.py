"""benchmarks/gpu_suite.sh: syntax, the figures read from each script's output and their checks (a wrong
figure is FAILED, never ok), one JSON file that is never overwritten silently, the Python it picks and
the wheelhouse it installs, a planted wrong score caught in a dry run, and (slow) the whole CPU dry run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "benchmarks" / "gpu_suite.sh"
sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_suite_record as record  # noqa: E402

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


def test_parsers_read_the_scripts_figures(tmp_path):
    scoring = record.parse_scoring(SCORING_OUTPUT)
    assert scoring["release"] == {"ms_per_image": 612.5, "peak_mib": 1024.0}
    assert scoring["ours"] == {"ms_per_image": 88.25, "peak_mib": 25000.5}
    assert (scoring["speedup"], scoring["max_abs_diff"]) == (6.94, 0.00781)
    assert scoring["device"] == "cuda" and scoring["dtype"] == "torch.bfloat16"
    one, two = tmp_path / "1.json", tmp_path / "2.json"
    one.write_text(json.dumps({"metrics": {"test/a/srcc": 0.5, "test/a/plcc": 0.25}}))
    two.write_text(json.dumps({"metrics": {"test/a/srcc": 0.5, "test/a/plcc": 0.2500005}}))
    ddp = record.parse_ddp_eval([str(one), str(two)])
    assert ddp["max_abs_diff"] == pytest.approx(5e-7) and ddp["equal_1e-6"] is True


def test_steps_accumulate_in_one_file_and_a_failure_keeps_its_log(tmp_path):
    suite, log = tmp_path / "suite.json", tmp_path / "step.log"
    log.write_text(SCORING_OUTPUT)
    record.main([str(suite), "scoring_7b", "--rc", "0", "--seconds", "61.5", "--log", str(log), "--parse", "scoring"])
    log.write_text("Traceback (most recent call last):\nRuntimeError: CUDA out of memory\n")
    record.main([str(suite), "zero_steps", "--rc", "1", "--seconds", "3", "--log", str(log), "--parse", "json"])
    record.main([str(suite), "ddp_eval", "--note", "needs 2 GPUs, found 1"])
    steps = json.loads(suite.read_text())["steps"]
    assert steps["scoring_7b"]["status"] == "ok" and steps["scoring_7b"]["figures"]["speedup"] == 6.94
    assert steps["zero_steps"]["status"] == "FAILED" and "exit code 1" in steps["zero_steps"]["problems"]
    assert steps["zero_steps"]["log_tail"][-1] == "RuntimeError: CUDA out of memory"
    assert steps["ddp_eval"] == {"status": "skipped", "rc": None, "seconds": None, "note": "needs 2 GPUs, found 1"}
    assert record.main([str(suite), "--summary"]) == 1  # the suite's exit code: a step FAILED


NAN = float("nan")
ROW = {"strategy": "single-device bf16 (baseline)", "params_m": 101.2, "peak_gib": 3.1, "s_per_step": 0.21, "loss": 4.8}
ZERO = {"expected": ["single-device bf16 (baseline)", "deepspeed_zero3"],
        "strategies": [ROW, ROW | {"strategy": "deepspeed_zero3", "peak_gib": 1.4}]}
SCORING = record.parse_scoring(SCORING_OUTPUT)  # bf16, max_abs_diff 0.00781
MPLUG = {"forward": {"median_s": 0.8}, "lora_step": {"loss": 10.4}}
LOADING = {"runs": {"0 workers": {"images_per_s": 3.0, "wait_share": 0.4},
                    "8 workers": {"images_per_s": 5.0, "wait_share": 0.05}}, "ratio": 1.67}
DDP = {"one_process": {"test/a/srcc": 0.5}, "n_processes": {"test/a/srcc": 0.5}, "max_abs_diff": 0.0,
       "equal_1e-6": True}
ENV = {"python": "python3", "torch": "2.11.0", "cuda": "13.0", "gpus": ["NVIDIA H100"],
       "packages": {"jsonargparse": {"version": "4.53.0"}, "deepspeed": {"version": "0.19.8"}, "wandb": None}}
RIGHT = {"env": ENV, "zero_steps": ZERO, "scoring_7b": SCORING, "mplug_owl2": MPLUG, "score_loading_7b": LOADING,
         "ddp_eval": DDP}
WRONG = {  # (step, figures, words of the problem): figures the suite recorded as ok before, and their kin
    "bf16 scores off the plain path": ("scoring_7b", SCORING | {"max_abs_diff": 0.0186}, "beyond torch.bfloat16"),
    "float32 scores off": ("scoring_7b", SCORING | {"dtype": "torch.float32", "max_abs_diff": 3e-4}, "beyond"),
    "no difference figure": ("scoring_7b", {k: v for k, v in SCORING.items() if k != "max_abs_diff"}, "missing"),
    "NaN metric, 1 vs 2 unequal": ("ddp_eval", {"one_process": {"test/a/srcc": NAN}, "n_processes": {"test/a/srcc": NAN},
                                                "max_abs_diff": None, "equal_1e-6": False}, "is nan"),
    "1 vs 2 processes differ": ("ddp_eval", DDP | {"n_processes": {"test/a/srcc": 0.49}, "max_abs_diff": 0.01,
                                                   "equal_1e-6": False}, "differ by 0.01"),
    "no metrics": ("ddp_eval", {"one_process": {}, "n_processes": {}, "equal_1e-6": False}, "no SRCC"),
    "loss not finite": ("zero_steps", ZERO | {"strategies": [ROW, ROW | {"strategy": "deepspeed_zero3",
                                                                            "loss": float("inf")}]}, "loss is inf"),
    "a strategy lost": ("zero_steps", ZERO | {"strategies": [ROW]}, "deepspeed_zero3: no row"),
    "a strategy failed": ("zero_steps", ZERO | {"strategies": [ROW, {"strategy": "deepspeed_zero3",
                                                                     "error": "ImportError: deepspeed"}]}, "ImportError"),
    "LoRA loss NaN": ("mplug_owl2", MPLUG | {"lora_step": {"loss": NAN}}, "lora_step.loss is nan"),
    "wait share above 1": ("score_loading_7b", LOADING | {"runs": {"0 workers": {"images_per_s": 3.0,
                                                                                 "wait_share": 1.5}}}, "outside"),
    "no CUDA": ("env", ENV | {"cuda": None, "gpus": []}, "no CUDA GPU"),
    "a dependency missing": ("env", ENV | {"packages": {"jsonargparse": None}}, "jsonargparse is not installed"),
}


def _record(tmp_path, step: str, figures: dict, *options: str) -> dict:
    (tmp_path / "figures.json").write_text(json.dumps(figures))
    record.main([str(tmp_path / "suite.json"), step, "--rc", "0", "--seconds", "1", "--parse", "json",
                 "--json", str(tmp_path / "figures.json"), *options])
    return json.loads((tmp_path / "suite.json").read_text())["steps"][step]


@pytest.mark.parametrize("step", RIGHT)
def test_right_figures_are_ok(tmp_path, step):
    assert _record(tmp_path, step, RIGHT[step])["status"] == "ok"


@pytest.mark.parametrize("case", WRONG)
def test_a_wrong_figure_fails_its_step_even_in_a_dry_run(tmp_path, case):
    step, figures, words = WRONG[case]
    for options in ((), ("--dry-run",)):
        if case == "no CUDA" and options:
            continue  # a dry run runs on a CPU
        entry = _record(tmp_path, step, figures, *options)
        assert entry["status"] == "FAILED", entry
        assert any(words in problem for problem in entry["problems"]), entry["problems"]
    # the file is standard JSON: a NaN is written as a string, never as a bare NaN
    json.loads((tmp_path / "suite.json").read_text(), parse_constant=lambda name: pytest.fail(name))


def test_gpu_check_keeps_the_baseline_row_when_a_strategy_fails(tmp_path, monkeypatch):
    """DeepSpeed refuses a CPU: the real failure of a strategy, after the baseline ran."""
    import gpu_check
    from launcher_env import LAUNCHER_ENV

    monkeypatch.chdir(tmp_path)  # the quickstart writes its synthetic data under ./data
    for name in LAUNCHER_ENV:  # the strategies run in this process and export these: put back afterwards
        monkeypatch.delenv(name, raising=False)
    rows = tmp_path / "rows.json"
    rc = gpu_check.main_cli(["--accelerator", "cpu", "--strategies", "deepspeed_zero2", "--steps", "2",
                             "--out", str(tmp_path / "out"), "--json", str(rows)])
    report = json.loads(rows.read_text())
    baseline, zero2 = report["strategies"]
    assert rc == 1 and baseline["strategy"] == "single-device bf16 (baseline)"
    assert baseline["loss"] > 0 and baseline["s_per_step"] > 0 and baseline["peak_gib"] is None  # no CUDA memory
    assert zero2["strategy"] == "deepspeed_zero2" and "CUDA" in zero2["error"]
    entry = _record(tmp_path, "zero_steps", report, "--dry-run")
    assert entry["status"] == "FAILED" and entry["problems"] == [f"deepspeed_zero2: {zero2['error']}"]


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


# Loaded by every Python the suite starts (sitecustomize on PYTHONPATH); in scoring.py only, our fast
# scoring path gets a bug: the first level's logit raised by 2 (the release's path stays right).
PLANT = """
import sys
if sys.argv and sys.argv[0].endswith("scoring.py"):
    from c2s_lightning.models.fast_comparator import FastComparator

    right = FastComparator.anchor_rows

    def planted(self, *args, **kwargs):
        rows = right(self, *args, **kwargs).clone()
        rows[..., 0] += 2.0
        return rows

    FastComparator.anchor_rows = planted
"""


def test_a_planted_wrong_score_fails_the_dry_runs_scoring_step(tmp_path):
    (tmp_path / "plant").mkdir()
    (tmp_path / "plant" / "sitecustomize.py").write_text(PLANT)
    env = _env(tmp_path, GPU_SUITE_DRY_RUN="1", GPU_SUITE_STEPS="scoring_7b", PYTHONPATH=str(tmp_path / "plant"),
               OMP_NUM_THREADS="1")
    done = subprocess.run(["bash", str(SUITE)], env=env, capture_output=True, text=True, timeout=300)
    step = json.loads((tmp_path / "out" / "gpu_suite.json").read_text())["steps"]["scoring_7b"]
    # scoring.py measures, then refuses its own figure (exit 1); the record says why from the figures too
    assert step["rc"] == 1 and step["figures"]["dtype"] == "torch.float32"
    assert step["status"] == "FAILED" and any("beyond torch.float32's tolerance" in p for p in step["problems"]), step
    assert done.returncode == 1 and "scoring_7b        FAILED" in done.stdout


def _wheel(folder: Path, name: str, version: str) -> Path:
    """A wheel holding only its metadata: enough for pip to install it and for importlib to find it."""
    info = f"{name}-{version}.dist-info"
    files = {f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    files[f"{info}/RECORD"] = "".join(f"{path},,\n" for path in files) + f"{info}/RECORD,,\n"
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in files.items():
            archive.writestr(member, text)
    return path


def test_the_python_that_sees_cuda_runs_with_the_wheelhouse_first_on_its_path(tmp_path):
    """Two candidate Pythons, the first without CUDA (a CPU venv), the second reporting CUDA (a GPU
    node's python3, imitated): the second runs the suite, with the wheelhouse's jsonargparse ahead of
    its own. The machine has no GPU, so the env step is FAILED, and says why."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "wheels").mkdir()
    cpu, cuda = tmp_path / "bin" / "cpu-python", tmp_path / "bin" / "cuda-python"
    cpu.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    cuda.write_text(f'#!/bin/sh\ncase "$*" in *cuda.is_available*) exit 0;; esac\nexec "{sys.executable}" "$@"\n')
    for path in (cpu, cuda):
        path.chmod(0o755)
    _wheel(tmp_path / "wheels", "jsonargparse", "99.0")
    env = {k: v for k, v in _env(tmp_path, GPU_SUITE_STEPS="env").items() if k != "PY"}
    done = subprocess.run(["bash", str(SUITE), str(tmp_path / "wheels")], timeout=300, capture_output=True, text=True,
                          env=env | {"GPU_SUITE_PYTHONS": f"{cpu} {cuda}"})
    assert f"[gpu_suite] python: {cuda}" in done.stdout
    steps = json.loads((tmp_path / "out" / "gpu_suite.json").read_text())["steps"]
    assert steps["wheelhouse"]["status"] == "ok", steps["wheelhouse"]
    found = steps["env"]["figures"]["packages"]["jsonargparse"]
    assert found == {"version": "99.0", "location": str((tmp_path / "work" / "site").resolve())}
    assert steps["env"]["status"] == "FAILED" and any("no CUDA GPU" in p for p in steps["env"]["problems"])
    assert done.returncode == 1


def test_dry_run_records_the_scoring_steps_as_ok_with_true_figures(tmp_path):
    """Issue 22's step on the transformers that runs the tests (5.17 in the floor run): a wrong
    figure fails the step (benchmarks/scoring.py checks its own logits) instead of reading ok."""
    import transformers

    done = subprocess.run(["bash", str(SUITE)], capture_output=True, text=True, timeout=300, env=_env(
        tmp_path, GPU_SUITE_DRY_RUN="1", GPU_SUITE_STEPS="env scoring_7b"))
    assert done.returncode == 0, done.stderr
    steps = json.loads((tmp_path / "out" / "gpu_suite.json").read_text())["steps"]
    assert {name: s["status"] for name, s in steps.items()} == dict.fromkeys(["env", "scoring_7b"], "ok")
    assert steps["env"]["figures"]["packages"]["transformers"]["version"] == transformers.__version__
    assert steps["scoring_7b"]["figures"]["max_abs_diff"] < 1e-4


@pytest.mark.slow
def test_cpu_dry_run_runs_every_step(tmp_path):
    """About 3 minutes on 2 cores: every script at tiny sizes, DDP evaluation on 2 CPU processes; every
    figure passes its check (a wrong one would be FAILED)."""
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
