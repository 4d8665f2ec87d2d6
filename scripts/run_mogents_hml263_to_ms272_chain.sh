#!/usr/bin/env bash
# MoGenTS HumanML3D-263 predictions -> SMPL motion_135 (batched IK, 80 steps) -> MotionStreamer-272
# -> MotionStreamer-272 metrics, the zoo's chain on one machine.
#
#   PRED263=outputs/.../hml263/mogents_seed0 MODEL_DIR=body_models \
#       bash scripts/run_mogents_hml263_to_ms272_chain.sh
#
# Stages (STAGES, default "A B C", with REFERENCE=bridged "G A B C"), each restartable (finished
# clips are skipped):
#   G  the fair reference: the ground-truth 263 test clips (GT263, ids GT_IDS) through the same
#      bridge (stages A and B, into GT_SMPL135 and GT272), then GT_ROOT: a humanml3d_272 folder
#      whose motion_data/ is GT272 and whose texts/, split/ and mean_std/ are GT_DATA_ROOT's
#   A  IK: one scripts/hml263_to_smpl_ik.py process per shard (NUM_SHARDS, default: one per GPU,
#      or one single-threaded process per CPU core without GPUs)
#   B  scripts/convert_motion135_to_h3d272.py --skeleton "$SKELETON" (default canon272: the zoo's
#      fixed skeleton, as behind its published MotionStreamer-272 numbers; smpl: SMPL neutral joints)
#   C  scripts/verify_evaluators.py --which ms272 (EVAL_ARGS adds its --ms272-* options); with
#      REFERENCE=bridged the real motions are GT_ROOT's (the zoo's later MoGenTS table scores
#      against the bridged ground truth), with REFERENCE=raw (default) the dataset's own 272 files
# Zoo flags of stage A: ROTATION_INIT (default auto, the zoo's), LOCK_GLOBAL_ORIENT=1,
# TARGET_LENGTH_ANNO=<json>, CANONICAL_META_DIR=<dir>.
# Writes $PRED272/run_config.json, $PRED272/command.txt, $LOGDIR/*.log and
# $METRICS/run_summary.json (both name the 272 skeleton and the reference).
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
ROTATION_INIT="${ROTATION_INIT:-auto}"
SKELETON="${SKELETON:-canon272}"
LOCK_GLOBAL_ORIENT="${LOCK_GLOBAL_ORIENT:-0}"
TARGET_LENGTH_ANNO="${TARGET_LENGTH_ANNO:-}"
CANONICAL_META_DIR="${CANONICAL_META_DIR:-}"
REFERENCE="${REFERENCE:-raw}"
GT263="${GT263:-}"
GT_IDS="${GT_IDS:-}"
GT_DATA_ROOT="${GT_DATA_ROOT:-}"
GT_SMPL135="${GT_SMPL135:-$ROOT/motion135/gt_ik${IK_ITERS}}"
GT272="${GT272:-$ROOT/ms272/gt_ik${IK_ITERS}_${SKELETON}}"
GT_ROOT="${GT_ROOT:-$GT272/_humanml3d_272_bridged}"
DEVICE="${DEVICE:-auto}"
if [[ "$REFERENCE" != raw && "$REFERENCE" != bridged ]]; then
    echo "REFERENCE must be raw or bridged, got '$REFERENCE'" >&2; exit 2
fi
if [[ "$REFERENCE" == bridged ]]; then STAGES="${STAGES:-G A B C}"; else STAGES="${STAGES:-A B C}"; fi
EVAL_ARGS="${EVAL_ARGS:-}"
IK_EXTRA=()
# a stage with failed clips stops the chain (exit 1) unless ALLOW_FAILURES=1
ALLOW=()
if [[ "${ALLOW_FAILURES:-0}" == 1 ]]; then ALLOW=(--allow-failures); fi
if [[ "$LOCK_GLOBAL_ORIENT" == 1 ]]; then IK_EXTRA+=(--lock-global-orient); fi
if [[ -n "$TARGET_LENGTH_ANNO" ]]; then IK_EXTRA+=(--target-length-anno "$TARGET_LENGTH_ANNO"); fi
if [[ -n "$CANONICAL_META_DIR" ]]; then IK_EXTRA+=(--canonical-meta-dir "$CANONICAL_META_DIR"); fi
if [[ -z "${NUM_GPUS:-}" ]]; then
    NUM_GPUS="$( (nvidia-smi -L 2>/dev/null || true) | grep -c '^GPU' || true)"
fi
# one IK process per GPU; on a CPU-only machine one single-threaded process per core
CPU_CORES="$(nproc 2>/dev/null || echo 1)"
NUM_SHARDS="${NUM_SHARDS:-$(( NUM_GPUS > 0 ? NUM_GPUS : CPU_CORES ))}"
IK_THREADS="${IK_THREADS:-$(( NUM_GPUS > 0 ? 0 : 1 ))}"
BRIDGE="hml263_to_smpl135_ik_refine${IK_ITERS}_to_ms272"
if [[ "$REFERENCE" == bridged ]]; then
    REFERENCE_DESC="ground truth 263 -> the same bridge -> 272 ($GT_ROOT)"
else
    REFERENCE_DESC="the dataset's own 272 files (EVAL_ARGS --ms272-data-root)"
fi

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

ik_stage() {  # ik_stage IN_DIR OUT_DIR LOG_PREFIX [extra ik flags...]
    local in_dir="$1" out_dir="$2" prefix="$3"
    shift 3
    mkdir -p "$out_dir"
    local pids=() i failed=0
    for (( i = 0; i < NUM_SHARDS; i++ )); do
        local env_gpu=()
        if (( NUM_GPUS > 0 )); then env_gpu=(CUDA_VISIBLE_DEVICES=$(( i % NUM_GPUS ))); fi
        env "${env_gpu[@]}" "$PY" "$REPO/scripts/hml263_to_smpl_ik.py" \
            --in-dir "$in_dir" --out-dir "$out_dir" --model-dir "$MODEL_DIR" \
            --source-fps 20 --target-fps 30 --floor-align \
            --refine-iters "$IK_ITERS" --refine-lr "$IK_LR" --rotation-init "$ROTATION_INIT" \
            --device "$DEVICE" --skip-existing --no-progress --threads "$IK_THREADS" \
            ${IK_EXTRA[@]+"${IK_EXTRA[@]}"} ${ALLOW[@]+"${ALLOW[@]}"} "$@" \
            --num-shards "$NUM_SHARDS" --shard-index "$i" \
            > "$LOGDIR/${prefix}_s$(printf %02d "$i").log" 2>&1 &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
    return "$failed"
}

convert_stage() {  # convert_stage IN_DIR OUT_DIR LOG_NAME
    "$PY" "$REPO/scripts/convert_motion135_to_h3d272.py" --in-dir "$1" --out-dir "$2" \
        --skeleton "$SKELETON" --model-dir "$MODEL_DIR" --workers "$CONVERT_WORKERS" \
        --skip-existing --no-progress ${ALLOW[@]+"${ALLOW[@]}"} > "$LOGDIR/$3.log" 2>&1
}

write_json "$PRED272/run_config.json" "$(cat <<JSON
{"method": "mogents", "bridge": "$BRIDGE", "pred263": "$PRED263", "smpl135": "$SMPL135",
 "pred272": "$PRED272", "metrics": "$METRICS", "model_dir": "$MODEL_DIR",
 "num_shards": $NUM_SHARDS, "n_repeats": $N_REPEATS, "ik_iters": $IK_ITERS, "ik_lr": $IK_LR,
 "rotation_init": "$ROTATION_INIT", "ms272_skeleton": "$SKELETON",
 "lock_global_orient": $([[ "$LOCK_GLOBAL_ORIENT" == 1 ]] && echo true || echo false),
 "target_length_anno": "$TARGET_LENGTH_ANNO", "canonical_meta_dir": "$CANONICAL_META_DIR",
 "reference": "$REFERENCE", "reference_desc": "$REFERENCE_DESC", "gt263": "$GT263",
 "gt272": "$([[ "$REFERENCE" == bridged ]] && echo "$GT272")",
 "device": "$DEVICE", "ik_threads": $IK_THREADS, "stages": "$STAGES"}
JSON
)"

if [[ " $STAGES " == *" G "* ]]; then
    if [[ -z "$GT263" || -z "$GT_DATA_ROOT" ]]; then
        echo "[stage G] needs GT263 (ground-truth 263 clips) and GT_DATA_ROOT (humanml3d_272)" >&2
        exit 2
    fi
    echo "[stage G] ground truth $GT263 -> $GT_SMPL135 -> $GT272 -> $GT_ROOT"
    gt_ids=()
    if [[ -n "$GT_IDS" ]]; then gt_ids=(--ids "$GT_IDS"); fi
    ik_stage "$GT263" "$GT_SMPL135" gt_ik ${gt_ids[@]+"${gt_ids[@]}"} \
        || { echo "[stage G] an IK shard failed; see $LOGDIR/gt_ik_s*.log" >&2; exit 1; }
    convert_stage "$GT_SMPL135" "$GT272" gt_convert272 \
        || { echo "[stage G] failed; see $LOGDIR/gt_convert272.log" >&2; exit 1; }
    "$PY" - "$GT272" "$GT_DATA_ROOT" "$GT_ROOT" <<'PYEOF'
import sys
from hftrainer_mogents.jobs.bridge import make_bridged_reference
make_bridged_reference(sys.argv[1], sys.argv[2], sys.argv[3])
PYEOF
fi

if [[ " $STAGES " == *" A "* ]]; then
    echo "[stage A] IK $PRED263 -> $SMPL135 ($NUM_SHARDS shard(s))"
    ik_stage "$PRED263" "$SMPL135" ik \
        || { echo "[stage A] an IK shard failed; see $LOGDIR/ik_s*.log" >&2; exit 1; }
fi

if [[ " $STAGES " == *" B "* ]]; then
    echo "[stage B] motion_135 -> 272 ($SKELETON) $SMPL135 -> $PRED272"
    convert_stage "$SMPL135" "$PRED272" convert272 \
        || { echo "[stage B] failed; see $LOGDIR/convert272.log" >&2; exit 1; }
fi

METRIC_JSON=""
if [[ " $STAGES " == *" C "* ]]; then
    echo "[stage C] MotionStreamer-272 metrics of $PRED272 against $REFERENCE_DESC"
    REF_ARGS=""
    if [[ "$REFERENCE" == bridged ]]; then
        if [[ ! -d "$GT_ROOT/motion_data" ]]; then
            echo "[stage C] $GT_ROOT is missing: run stage G first" >&2; exit 1
        fi
        REF_ARGS="--ms272-data-root $GT_ROOT"
    fi
    # shellcheck disable=SC2086
    "$PY" "$REPO/scripts/verify_evaluators.py" --which ms272 --ms272-pred "$PRED272" \
        --out-dir "$METRICS" --n-repeats "$N_REPEATS" $EVAL_ARGS $REF_ARGS 2>&1 \
        | tee "$LOGDIR/verify_ms272.log"
    if [[ "${PIPESTATUS[0]}" != 0 ]]; then echo "[stage C] failed" >&2; exit 1; fi
    METRIC_JSON="$METRICS/verify_ms272.json"
fi

write_json "$METRICS/run_summary.json" "$(cat <<JSON
{"method": "mogents", "bridge": "$BRIDGE", "pred263": "$PRED263", "smpl135": "$SMPL135",
 "pred272": "$PRED272", "ms272_skeleton": "$SKELETON", "reference": "$REFERENCE",
 "reference_desc": "$REFERENCE_DESC", "num_shards": $NUM_SHARDS, "n_repeats": $N_REPEATS,
 "n_pred263": $(count "$PRED263" '*.npy'), "n_smpl135": $(count "$SMPL135" '*.npz'),
 "n_pred272": $(count "$PRED272" '*.npy'), "metric_json_ms272": "$METRIC_JSON"}
JSON
)"
echo "[done] $METRICS/run_summary.json"
