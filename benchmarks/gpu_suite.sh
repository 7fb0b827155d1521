#!/usr/bin/env bash
# Every GPU check of the project in one call, within GPU_SUITE_BUDGET_S (400 s: the suite ends within 420 s on one
# H100, kill grace and records included); all figures and each step's status go to ONE JSON file,
# $OUT/gpu_suite.json (or outputs/gpu_suite.json when $OUT is unset). Exit code 1 when a step FAILED.
#   bash benchmarks/gpu_suite.sh [WHEELHOUSE]          # on a GPU machine
#   GPU_SUITE_DRY_RUN=1 bash benchmarks/gpu_suite.sh   # on a CPU: every step at tiny sizes, to check the suite
# Python: $PY if set; else the first of GPU_SUITE_PYTHONS (default: the project's .venv/bin/python, python3,
# python) whose torch sees CUDA: a venv made on a CPU machine holds a CPU torch, a GPU node's own python3 the CUDA
# one. A dry run (or a machine where none sees CUDA) takes the first that imports torch.
# WHEELHOUSE (or GPU_SUITE_WHEELHOUSE): a folder of wheels (`make wheelhouse`, docs/gpu_offline.md), installed
# offline with pip --target into the scratch folder and put on PYTHONPATH ahead of the Python's own packages.
# No W&B: every step runs without a logger (WANDB_MODE=disabled).
# Each step has its own timeout, is skipped when the budget cannot hold it, and writes one entry of the JSON file:
# status ok, skipped (with a note) or FAILED with its problems: a non-zero exit, or a figure that is wrong (our
# scores off the release's path beyond the dtype's tolerance, a NaN metric, 1 and 2 processes that disagree, a
# loss that is not finite: benchmarks/gpu_suite_record.py). GPU_SUITE_STEPS="env scoring_7b" runs a subset.
#   env          the Python, torch, CUDA, GPUs, and where each dependency is loaded from (benchmarks/gpu_env.py)
#   zero_steps   benchmarks/gpu_check.py: ZeRO-2 and ZeRO-3 training steps of a ~100M model vs plain bf16, each row
#                written as it finishes (dry run: the plain CPU baseline only; DeepSpeed needs CUDA)
#   scoring_7b   benchmarks/scoring.py --gpu: our scoring vs the release's path, LLaVA-1.5-7B-shaped, bf16
#   mplug_owl2   benchmarks/gpu_mplug_owl2.py: full-size mPLUG-Owl2 comparison forward and LoRA step, bf16
#   score_loading_7b  benchmarks/score_loading.py --gpu: `score` on SPAQ-size JPEGs with the 7B-shaped model,
#                images/s with 0 and 8 loader threads (and full-resolution loading) and the share of
#                time the GPU waits for data (dry run: the tiny model on CPU)
#   ddp_eval     benchmarks/gpu_ddp_eval.py: validate on 1 and on 2 GPUs (DDP, 99 test images: an odd count),
#                same SRCC/PLCC? only where 2 GPUs exist (dry run: 1 and 2 CPU processes)
# Checkpoints, data and logs go to a scratch folder (GPU_SUITE_WORK, default a new temp folder), not to $OUT.
set -uo pipefail  # no -e: a failed step is recorded and the next one runs
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DRY=${GPU_SUITE_DRY_RUN:-0}
BUDGET=${GPU_SUITE_BUDGET_S:-$([ "$DRY" = 1 ] && echo 900 || echo 400)}
STEPS=${GPU_SUITE_STEPS:-env zero_steps scoring_7b mplug_owl2 score_loading_7b ddp_eval}
WHEELHOUSE=${1:-${GPU_SUITE_WHEELHOUSE:-}}
OUTDIR=${OUT:-$ROOT/outputs}
JSON=$OUTDIR/gpu_suite.json
WORK=${GPU_SUITE_WORK:-$(mktemp -d -t gpu_suite.XXXXXX)}
mkdir -p "$OUTDIR" "$WORK"
WORK=$(cd "$WORK" && pwd)

pick_python() {  # the first candidate whose torch sees CUDA (not in a dry run), else the first with torch
  local candidates p
  if [ -n "${GPU_SUITE_PYTHONS:-}" ]; then read -ra candidates <<< "$GPU_SUITE_PYTHONS"
  else candidates=("$ROOT/.venv/bin/python" python3 python); fi
  if [ "$DRY" != 1 ]; then
    for p in "${candidates[@]}"; do
      command -v "$p" > /dev/null && "$p" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' \
        > /dev/null 2>&1 && { echo "$p"; return; }
    done
  fi
  for p in "${candidates[@]}"; do
    command -v "$p" > /dev/null && "$p" -c 'import torch' > /dev/null 2>&1 && { echo "$p"; return; }
  done
  echo "${candidates[0]}"
}
PY=${PY:-$(pick_python)}
echo "[gpu_suite] python: $PY"
export WANDB_MODE=disabled WANDB_SILENT=true
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
cd "$WORK" || exit 1  # relative paths of the configs (data/, outputs/) land in the scratch folder
if [ -e "$JSON" ]; then  # keep an earlier result, never overwrite it silently
  kept="$JSON.$(date -r "$JSON" +%Y%m%d-%H%M%S)"
  mv "$JSON" "$kept" && echo "[gpu_suite] earlier results kept as $kept"
fi
START=$(date +%s)
DRY_FLAG=(); [ "$DRY" = 1 ] && DRY_FLAG=(--dry-run)
record() { "$PY" "$ROOT/benchmarks/gpu_suite_record.py" "$JSON" "$@" "${DRY_FLAG[@]}"; }
wanted() { [[ " $STEPS " == *" $1 "* ]]; }

# run_step NAME TIMEOUT_S PARSE [recorder options] -- COMMAND...: run with a timeout, record and check the result
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
  timeout --kill-after=10 "$limit" "$@" > "$WORK/$name.log" 2>&1; rc=$?
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  local seconds=$(printf '%d.%03d' $(( ms / 1000 )) $(( ms % 1000 )))
  [ "$rc" -eq 124 ] && extra+=(--note "killed at its timeout of $limit s")
  [ "$parse" != none ] && extra+=(--parse "$parse")
  record "$name" --rc "$rc" --seconds "$seconds" --log "$WORK/$name.log" "${extra[@]}"
}

# -- wheelhouse (when given): what the Python lacks, installed offline beside the checkout ------------------
if [ -n "$WHEELHOUSE" ]; then
  STEPS="wheelhouse $STEPS"
  # --no-compile: byte-compiling 5,400 .py files (2,900 transformers') is most of an install's time
  run_step wheelhouse 120 none --note "$WHEELHOUSE" -- \
    "$PY" -m pip install --quiet --no-compile --no-index --no-deps --target "$WORK/site" "$WHEELHOUSE"/*.whl
  export PYTHONPATH="$ROOT:$WORK/site${PYTHONPATH#"$ROOT"}"
fi

# -- env ----------------------------------------------------------------------------------------------
run_step env 60 json --json "$WORK/env.json" -- "$PY" "$ROOT/benchmarks/gpu_env.py" "$WORK/env.json" "${DRY_FLAG[@]}"
GPUS=$("$PY" -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null || echo 0)

# -- zero_steps -----------------------------------------------------------------------------------------
if [ "$DRY" = 1 ]; then
  run_step zero_steps 240 json --json "$WORK/gpu_check.json" -- "$PY" "$ROOT/benchmarks/gpu_check.py" \
    --accelerator cpu --strategies --steps 2 --out "$WORK/gpu_check" --json "$WORK/gpu_check.json"
else
  run_step zero_steps 150 json --json "$WORK/gpu_check.json" -- "$PY" "$ROOT/benchmarks/gpu_check.py" \
    --steps 6 --out "$WORK/gpu_check" --json "$WORK/gpu_check.json"
fi

# -- scoring_7b -----------------------------------------------------------------------------------------
if [ "$DRY" = 1 ]; then
  run_step scoring_7b 180 scoring -- "$PY" "$ROOT/benchmarks/scoring.py" --quick --images 4 --naive-images 2
else
  run_step scoring_7b 100 scoring -- "$PY" "$ROOT/benchmarks/scoring.py" --gpu
fi

# -- mplug_owl2 -----------------------------------------------------------------------------------------
if [ "$DRY" = 1 ]; then
  run_step mplug_owl2 180 json --json "$WORK/mplug_owl2.json" -- "$PY" "$ROOT/benchmarks/gpu_mplug_owl2.py" \
    --size tiny --device cpu --dtype float32 --pairs 2 --repeats 1 --out "$WORK/mplug_owl2.json"
else
  run_step mplug_owl2 100 json --json "$WORK/mplug_owl2.json" -- "$PY" "$ROOT/benchmarks/gpu_mplug_owl2.py" \
    --out "$WORK/mplug_owl2.json"
fi

# -- score_loading_7b -----------------------------------------------------------------------------------
if [ "$DRY" = 1 ]; then
  run_step score_loading_7b 180 json --json "$WORK/score_loading.json" -- "$PY" "$ROOT/benchmarks/score_loading.py" \
    --quick --images 16 --rounds 1 --out "$WORK/score_loading.json"
else
  run_step score_loading_7b 120 json --json "$WORK/score_loading.json" -- "$PY" "$ROOT/benchmarks/score_loading.py" \
    --gpu --out "$WORK/score_loading.json"
fi

# -- ddp_eval -------------------------------------------------------------------------------------------
# Plots stay on: the rank-0 plot must not hang the other rank (every rank asks for the log folder).
ONE_THEN_TWO='"$1" "$2" --devices 1 --accelerator "$3" --images "$4" --out "$5" &&
              "$1" "$2" --devices 2 --accelerator "$3" --images "$4" --out "$6"'
if [ "$DRY" = 1 ]; then
  run_step ddp_eval 240 ddp_eval --runs "$WORK/ddp1.json" "$WORK/ddp2.json" --note "dry run: 1 and 2 CPU processes (gloo)" \
    -- bash -c "$ONE_THEN_TWO" _ "$PY" "$ROOT/benchmarks/gpu_ddp_eval.py" cpu 9 "$WORK/ddp1.json" "$WORK/ddp2.json"
elif [ "$GPUS" -ge 2 ]; then
  run_step ddp_eval 120 ddp_eval --runs "$WORK/ddp1.json" "$WORK/ddp2.json" \
    -- bash -c "$ONE_THEN_TWO" _ "$PY" "$ROOT/benchmarks/gpu_ddp_eval.py" gpu 99 "$WORK/ddp1.json" "$WORK/ddp2.json"
elif wanted ddp_eval; then
  record ddp_eval --note "needs 2 GPUs, found $GPUS"
fi

echo "[gpu_suite] done in $(( $(date +%s) - START )) s: $JSON (scratch: $WORK)"
"$PY" "$ROOT/benchmarks/gpu_suite_record.py" "$JSON" --summary
