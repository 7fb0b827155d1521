"""GPU check of the DeepSpeed strategies: a real ZeRO-2 and ZeRO-3 training run of a small model.

Needs a CUDA GPU and the extra: pip install -e ".[deepspeed]". For each strategy file it runs
`fit` in-process for a few steps on the quickstart data (a small LLaVA-style model with random
weights, ~100M parameters, bf16), then prints the peak GPU memory and the time per step, with
plain single-device bf16 training as the baseline measured in the same run. Each row is printed and
(``--json``) written as its strategy finishes; a strategy that fails (DeepSpeed missing, out of
memory) gets its error in its row and the next one runs. No logger (no W&B). Exit code 1 if any failed.

    python benchmarks/gpu_check.py [--steps 8] [--strategies deepspeed_zero2 deepspeed_zero3] [--json rows.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
import traceback
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback

from c2s_lightning.cli import main

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "single-device bf16 (baseline)"
SMALL = {"hidden_size": 1024, "intermediate_size": 2816, "num_layers": 8, "num_heads": 16, "num_kv_heads": 8,
         "vision_hidden_size": 256, "vision_layers": 4, "vision_heads": 8, "image_size": 64}


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _peak_gib() -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None


class StepTimer(Callback):
    def __init__(self):
        self.times: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        _sync()
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        _sync()
        self.times.append(time.perf_counter() - self._start)


def run(strategy: str | None, steps: int, out: Path, accelerator: str) -> tuple[float | None, float, float, float]:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    args = ["fit", "--config", str(ROOT / "experiments" / "quickstart.yaml")]
    if strategy:
        args += ["--config", str(ROOT / "experiments" / "strategies" / f"{strategy}.yaml")]
    args += ["--trainer.accelerator", accelerator, "--trainer.devices", "1", "--trainer.precision", "bf16-mixed",
             "--trainer.max_steps", str(steps), "--trainer.val_check_interval", str(steps),
             "--trainer.default_root_dir", str(out), "--trainer.logger", "false",
             "--checkpoint.dirpath", str(out / "checkpoints"), "--export.enabled", "false",
             "--evaluator.max_images", "8", "--evaluator.before_training", "false",
             "--data.batch_size", "16"]
    if accelerator == "gpu":  # the CPU smoke test keeps the default tiny sizes
        args += ["--model.backbone_options", str(SMALL).replace("'", '"')]
    # this script's folder is on sys.path, so the timer is importable as gpu_check.StepTimer
    cli = main(args + ["--trainer.callbacks+=gpu_check.StepTimer"])
    timer = next(c for c in cli.trainer.callbacks if type(c).__name__ == "StepTimer")
    step = sorted(timer.times[1:] or timer.times)[len(timer.times[1:] or timer.times) // 2]  # median, warm
    params = sum(getattr(p, "ds_numel", p.numel()) for p in cli.model.parameters())  # ZeRO-3 partitions
    loss = float(cli.trainer.callback_metrics.get("train/loss", float("nan")))
    return _peak_gib(), params / 1e6, loss, step


def write_json(path: Path | None, report: dict) -> None:
    """Atomically (a temporary file, then ``os.replace``): a killed run leaves the rows written so far."""
    if path is not None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(report, indent=1))
        os.replace(tmp, path)


def measure(strategy: str | None, steps: int, out: Path, accelerator: str, baseline: dict | None) -> dict:
    """One strategy's row; its error instead of figures when it fails."""
    name = strategy or BASELINE
    try:
        peak, params, loss, seconds = run(strategy, steps, out / (strategy or "baseline"), accelerator)
    except (Exception, SystemExit) as err:  # noqa: BLE001  one strategy failing must not lose the others
        traceback.print_exc()
        return {"strategy": name, "error": f"{type(err).__name__}: {err}"}
    ratio = peak / baseline["peak_gib"] if peak is not None and (baseline or {}).get("peak_gib") else None
    return {"strategy": name, "params_m": params, "peak_gib": peak,
            "peak_ratio_to_baseline": ratio, "s_per_step": seconds, "loss": loss}


def main_cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--strategies", nargs="*", default=["deepspeed_zero2", "deepspeed_zero3"])
    parser.add_argument("--out", type=Path, default=Path("outputs/gpu_check"))
    parser.add_argument("--json", type=Path, help="the rows as JSON, rewritten as each strategy finishes")
    parser.add_argument("--accelerator", default="gpu", help="cpu only smoke-tests the script (no DeepSpeed)")
    ns = parser.parse_args(argv)
    if ns.accelerator == "gpu" and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU: this check runs real DeepSpeed steps and needs one")
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    report = {"device": device, "steps": ns.steps, "batch_pairs": 16,
              "expected": [BASELINE, *ns.strategies], "strategies": []}
    write_json(ns.json, report)
    for strategy in [None, *ns.strategies]:
        row = measure(strategy, ns.steps, ns.out, ns.accelerator, (report["strategies"] or [None])[0])
        report["strategies"].append(row)
        write_json(ns.json, report)
        print(f"[gpu_check] {json.dumps(row)}", flush=True)
    print(f"\n{device}; {ns.steps} steps of batch 16 pairs")
    print(f"{'strategy':34} {'params (M)':>10} {'peak GiB':>9} {'ratio':>6} {'s/step (median)':>16} {'loss':>7}")
    for row in report["strategies"]:
        if "error" in row:
            print(f"{row['strategy']:34} FAILED: {row['error']}")
            continue
        peak, ratio = (f"{row[k]:.2f}" if row[k] is not None else "-" for k in ("peak_gib", "peak_ratio_to_baseline"))
        print(f"{row['strategy']:34} {row['params_m']:10.1f} {peak:>9} {ratio:>6} {row['s_per_step']:16.3f} "
              f"{row['loss']:7.3f}")
    return 1 if any("error" in row for row in report["strategies"]) else 0


if __name__ == "__main__":
    raise SystemExit(main_cli())
