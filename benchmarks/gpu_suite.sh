#!/usr/bin/env bash
# Every GPU check of the project in one run (< 8 minutes on one H200); all figures go to ONE JSON file,
# $OUT/gpu_suite.json (or outputs/gpu_suite.json when $OUT is unset).
#   bash benchmarks/gpu_suite.sh                       # on a GPU machine
#   GPU_SUITE_DRY_RUN=1 bash benchmarks/gpu_suite.sh   # on a CPU: every step at tiny sizes, to check the suite
# Steps, in order; each has its own timeout, is skipped when the suite's budget (GPU_SUITE_BUDGET_S, 450 s)
# cannot hold it, and writes one entry of the JSON file (status, exit code, seconds, figures, or the log's
# tail when it failed). GPU_SUITE_STEPS="env scoring_7b" runs a subset.
#   env          torch, transformers, CUDA, GPUs, deepspeed versions
#   zero_steps   benchmarks/gpu_check.py: ZeRO-2 and ZeRO-3 training steps of a ~100M model vs plain bf16
#                (dry run: the plain CPU baseline only; DeepSpeed needs CUDA)
#   scoring_7b   benchmarks/scoring.py --gpu: our scoring vs the release's path, LLaVA-1.5-7B-shaped, bf16
#   mplug_owl2   benchmarks/gpu_mplug_owl2.py: full-size mPLUG-Owl2 comparison forward and LoRA step, bf16
#   score_loading_7b  benchmarks/score_loading.py --gpu: `score` on SPAQ-size JPEGs with the 7B-shaped model,
#                images/s with 0 and 8 loader threads (and full-resolution loading) and the share of
#                time the GPU waits for data (dry run: the tiny model on CPU)
#   ddp_eval     validate on 1 and on 2 GPUs (DDP, 99 test images: an odd count): same SRCC/PLCC?
#                only where 2 GPUs exist (dry run: 1 and 2 CPU processes)
# Checkpoints, data and logs go to a scratch folder (GPU_SUITE_WORK, default a new temp folder), not to $OUT.
set -uo pipefail  # no -e: a failed step is recorded and the next one runs
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-$( [ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python )}
DRY=${GPU_SUITE_DRY_RUN:-0}
BUDGET=${GPU_SUITE_BUDGET_S:-450}
STEPS=${GPU_SUITE_STEPS:-env zero_steps scoring_7b mplug_owl2 score_loading_7b ddp_eval}
OUTDIR=${OUT:-$ROOT/outputs}
JSON=$OUTDIR/gpu_suite.json
WORK=${GPU_SUITE_WORK:-$(mktemp -d -t gpu_suite.XXXXXX)}
mkdir -p "$OUTDIR" "$WORK"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" WANDB_MODE=offline WANDB_SILENT=true
cd "$WORK" || exit 1  # relative paths of the configs (data/, outputs/) land in the scratch folder
if [ -e "$JSON" ]; then  # keep an earlier result, never overwrite it silently
  kept="$JSON.$(date -r "$JSON" +%Y%m%d-%H%M%S)"
  mv "$JSON" "$kept" && echo "[gpu_suite] earlier results kept as $kept"
fi
START=$(date +%s)
record() { "$PY" "$ROOT/benchmarks/gpu_suite_record.py" "$JSON" "$@"; }
wanted() { [[ " $STEPS " == *" $1 "* ]]; }

# run_step NAME TIMEOUT_S PARSE [recorder options] -- COMMAND...: run with a timeout, record the result
run_step() {
  local name=$1 limit=$2 parse=$3; shift 3
  local extra=()
  while [ "$1" != "--" ]; do extra+=("$1"); shift; done; shift
  wanted "$name" || return 0
  local left=$(( BUDGET - ($(date +%s) - START) ))
  if [ "$left" -lt 30 ]; then
    record "$name" --note "suite budget of $BUDGET s spent"; return 0
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "[gpu_suite] $name (timeout $limit s): $*"
  local t0=$(date +%s%N) rc
  timeout --kill-after=15 "$limit" "$@" > "$WORK/$name.log" 2>&1; rc=$?
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  local seconds=$(printf '%d.%03d' $(( ms / 1000 )) $(( ms % 1000 )))
  [ "$rc" -eq 124 ] && extra+=(--note "killed at its timeout of $limit s")
  record "$name" --rc "$rc" --seconds "$seconds" --log "$WORK/$name.log" --parse "$parse" "${extra[@]}"
}

# -- env ----------------------------------------------------------------------------------------------
run_step env 60 env --json "$WORK/env.json" -- "$PY" -c '
import json, sys, torch, transformers
info = {"dry_run": sys.argv[2] == "1", "torch": torch.__version__, "cuda": torch.version.cuda,
        "transformers": transformers.__version__,
        "gpus": [torch.cuda.get_device_name(k) for k in range(torch.cuda.device_count())]}
try:
    import deepspeed
    info["deepspeed"] = deepspeed.__version__
except ImportError:
    info["deepspeed"] = None
open(sys.argv[1], "w").write(json.dumps(info))
print(info)' "$WORK/env.json" "$DRY"
GPUS=$("$PY" -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null || echo 0)

# -- zero_steps -----------------------------------------------------------------------------------------
if [ "$DRY" = 1 ]; then
  run_step zero_steps 240 gpu_check -- "$PY" "$ROOT/benchmarks/gpu_check.py" --accelerator cpu --strategies \
    --steps 2 --out "$WORK/gpu_check"
else
  run_step zero_steps 210 gpu_check -- "$PY" "$ROOT/benchmarks/gpu_check.py" --steps 8 --out "$WORK/gpu_check"
fi

# -- scoring_7b -----------------------------------------------------------------------------------------
if [ "$DRY" = 1 ]; then
  run_step scoring_7b 180 scoring -- "$PY" "$ROOT/benchmarks/scoring.py" --quick --images 4 --naive-images 2
else
  run_step scoring_7b 120 scoring -- "$PY" "$ROOT/benchmarks/scoring.py" --gpu
fi

# -- mplug_owl2 -----------------------------------------------------------------------------------------
if [ "$DRY" = 1 ]; then
  run_step mplug_owl2 180 json --json "$WORK/mplug_owl2.json" -- "$PY" "$ROOT/benchmarks/gpu_mplug_owl2.py" \
    --size tiny --device cpu --dtype float32 --pairs 2 --repeats 1 --out "$WORK/mplug_owl2.json"
else
  run_step mplug_owl2 120 json --json "$WORK/mplug_owl2.json" -- "$PY" "$ROOT/benchmarks/gpu_mplug_owl2.py" \
    --out "$WORK/mplug_owl2.json"
fi

# -- score_loading_7b -----------------------------------------------------------------------------------
if [ "$DRY" = 1 ]; then
  run_step score_loading_7b 180 json --json "$WORK/score_loading.json" -- "$PY" "$ROOT/benchmarks/score_loading.py" \
    --quick --images 16 --rounds 1 --out "$WORK/score_loading.json"
else
  run_step score_loading_7b 150 json --json "$WORK/score_loading.json" -- "$PY" "$ROOT/benchmarks/score_loading.py" \
    --gpu --out "$WORK/score_loading.json"
fi

# -- ddp_eval -------------------------------------------------------------------------------------------
# Plots stay on: the rank-0 plot must not hang the other rank (every rank asks for the log folder).
validate() {  # validate DEVICES ACCELERATOR IMAGES FOLDER
  echo "$PY -m c2s_lightning validate --config $ROOT/experiments/quickstart.yaml --trainer.accelerator $2" \
    "--trainer.devices $1 --trainer.strategy $([ "$1" -gt 1 ] && echo ddp || echo auto)" \
    "--trainer.default_root_dir $4 --trainer.logger.init_args.save_dir $4 --export.enabled false" \
    "--evaluator.max_images $3 --trainer.enable_progress_bar false"
}
if [ "$DRY" = 1 ]; then
  run_step ddp_eval 240 ddp_eval --runs "$WORK/ddp1" "$WORK/ddp2" --note "dry run: 1 and 2 CPU processes (gloo)" \
    -- bash -c "$(validate 1 cpu 9 "$WORK/ddp1") && $(validate 2 cpu 9 "$WORK/ddp2")"
elif [ "$GPUS" -ge 2 ]; then
  run_step ddp_eval 150 ddp_eval --runs "$WORK/ddp1" "$WORK/ddp2" \
    -- bash -c "$(validate 1 gpu 99 "$WORK/ddp1") && $(validate 2 gpu 99 "$WORK/ddp2")"
elif wanted ddp_eval; then
  record ddp_eval --note "needs 2 GPUs, found $GPUS"
fi

echo "[gpu_suite] done in $(( $(date +%s) - START )) s: $JSON (scratch: $WORK)"
