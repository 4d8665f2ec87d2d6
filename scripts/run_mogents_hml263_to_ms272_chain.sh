#!/usr/bin/env bash
# MoGenTS HumanML3D-263 predictions -> SMPL motion_135 (batched IK, 80 steps) -> MotionStreamer-272
# -> MotionStreamer-272 metrics, the zoo's chain on one machine.
#
#   PRED263=outputs/.../hml263/mogents_seed0 MODEL_DIR=body_models \
#       bash scripts/run_mogents_hml263_to_ms272_chain.sh
#
# Stages (STAGES, default "A B C"), each restartable (finished clips are skipped):
#   A  IK: one scripts/hml263_to_smpl_ik.py process per shard (NUM_SHARDS, default: one per GPU,
#      or one single-threaded process per CPU core without GPUs)
#   B  scripts/convert_motion135_to_h3d272.py
#   C  scripts/verify_evaluators.py --which ms272 (EVAL_ARGS adds its --ms272-* options)
# Writes $PRED272/run_config.json, $PRED272/command.txt, $LOGDIR/*.log and
# $METRICS/run_summary.json.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python}"
ROOT="${ROOT:-outputs/evaluation/t2m/humanml3d_official_test}"
PRED263="${PRED263:-$ROOT/hml263/mogents_ts10_cfg4_rescfg5_seed0}"
TAG="${TAG:-$(basename "$PRED263")}"
SMPL135="${SMPL135:-$ROOT/motion135/${TAG}_ik80}"
PRED272="${PRED272:-$ROOT/ms272/${TAG}_ik80}"
METRICS="${METRICS:-$PRED272/metrics}"
LOGDIR="${LOGDIR:-$PRED272/_logs}"
MODEL_DIR="${MODEL_DIR:-ref_repo/MDM/body_models}"
N_REPEATS="${N_REPEATS:-20}"
CONVERT_WORKERS="${CONVERT_WORKERS:-8}"
IK_ITERS="${IK_ITERS:-80}"
IK_LR="${IK_LR:-0.02}"
ROTATION_INIT="${ROTATION_INIT:-joints}"
DEVICE="${DEVICE:-auto}"
STAGES="${STAGES:-A B C}"
EVAL_ARGS="${EVAL_ARGS:-}"
if [[ -z "${NUM_GPUS:-}" ]]; then
    NUM_GPUS="$( (nvidia-smi -L 2>/dev/null || true) | grep -c '^GPU' || true)"
fi
# one IK process per GPU; on a CPU-only machine one single-threaded process per core
CPU_CORES="$(nproc 2>/dev/null || echo 1)"
NUM_SHARDS="${NUM_SHARDS:-$(( NUM_GPUS > 0 ? NUM_GPUS : CPU_CORES ))}"
IK_THREADS="${IK_THREADS:-$(( NUM_GPUS > 0 ? 0 : 1 ))}"
BRIDGE="hml263_to_smpl135_ik_refine${IK_ITERS}_to_ms272"

mkdir -p "$SMPL135" "$PRED272" "$METRICS" "$LOGDIR"
printf '%q ' "$0" "$@" > "$PRED272/command.txt"
echo >> "$PRED272/command.txt"

write_json() {  # write_json PATH JSON_TEXT: atomic write through the package
    "$PY" - "$1" "$2" <<'PYEOF'
import json, sys
from hftrainer_mogents.utils.io import atomic_write_json
atomic_write_json(sys.argv[1], json.loads(sys.argv[2]), sort_keys=False)
PYEOF
}

count() { find "$1" -maxdepth 1 -name "$2" ! -name '.*' ! -name '_*' 2>/dev/null | wc -l; }

write_json "$PRED272/run_config.json" "$(cat <<JSON
{"method": "mogents", "bridge": "$BRIDGE", "pred263": "$PRED263", "smpl135": "$SMPL135",
 "pred272": "$PRED272", "metrics": "$METRICS", "model_dir": "$MODEL_DIR",
 "num_shards": $NUM_SHARDS, "n_repeats": $N_REPEATS, "ik_iters": $IK_ITERS, "ik_lr": $IK_LR,
 "rotation_init": "$ROTATION_INIT", "device": "$DEVICE", "ik_threads": $IK_THREADS,
 "stages": "$STAGES"}
JSON
)"

if [[ " $STAGES " == *" A "* ]]; then
    echo "[stage A] IK $PRED263 -> $SMPL135 ($NUM_SHARDS shard(s))"
    pids=()
    for (( i = 0; i < NUM_SHARDS; i++ )); do
        env_gpu=()
        if (( NUM_GPUS > 0 )); then env_gpu=(CUDA_VISIBLE_DEVICES=$(( i % NUM_GPUS ))); fi
        env "${env_gpu[@]}" "$PY" "$REPO/scripts/hml263_to_smpl_ik.py" \
            --in-dir "$PRED263" --out-dir "$SMPL135" --model-dir "$MODEL_DIR" \
            --source-fps 20 --target-fps 30 --floor-align \
            --refine-iters "$IK_ITERS" --refine-lr "$IK_LR" --rotation-init "$ROTATION_INIT" \
            --device "$DEVICE" --skip-existing --no-progress --threads "$IK_THREADS" \
            --num-shards "$NUM_SHARDS" --shard-index "$i" > "$LOGDIR/ik_s$(printf %02d "$i").log" 2>&1 &
        pids+=($!)
    done
    failed=0
    for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
    if (( failed )); then echo "[stage A] an IK shard failed; see $LOGDIR/ik_s*.log" >&2; exit 1; fi
fi

if [[ " $STAGES " == *" B "* ]]; then
    echo "[stage B] motion_135 -> 272 $SMPL135 -> $PRED272"
    "$PY" "$REPO/scripts/convert_motion135_to_h3d272.py" --in-dir "$SMPL135" --out-dir "$PRED272" \
        --workers "$CONVERT_WORKERS" --skip-existing --no-progress > "$LOGDIR/convert272.log" 2>&1 \
        || { echo "[stage B] failed; see $LOGDIR/convert272.log" >&2; exit 1; }
fi

METRIC_JSON=""
if [[ " $STAGES " == *" C "* ]]; then
    echo "[stage C] MotionStreamer-272 metrics of $PRED272"
    # shellcheck disable=SC2086
    "$PY" "$REPO/scripts/verify_evaluators.py" --which ms272 --ms272-pred "$PRED272" \
        --out-dir "$METRICS" --n-repeats "$N_REPEATS" $EVAL_ARGS 2>&1 | tee "$LOGDIR/verify_ms272.log"
    if [[ "${PIPESTATUS[0]}" != 0 ]]; then echo "[stage C] failed" >&2; exit 1; fi
    METRIC_JSON="$METRICS/verify_ms272.json"
fi

write_json "$METRICS/run_summary.json" "$(cat <<JSON
{"method": "mogents", "bridge": "$BRIDGE", "pred263": "$PRED263", "smpl135": "$SMPL135",
 "pred272": "$PRED272", "num_shards": $NUM_SHARDS, "n_repeats": $N_REPEATS,
 "n_pred263": $(count "$PRED263" '*.npy'), "n_smpl135": $(count "$SMPL135" '*.npz'),
 "n_pred272": $(count "$PRED272" '*.npy'), "metric_json_ms272": "$METRIC_JSON"}
JSON
)"
echo "[done] $METRICS/run_summary.json"
