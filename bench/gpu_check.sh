#!/usr/bin/env bash
# The GPU verification run (issue 16), in two parts that fit one machine's short lease; each
# step has its own timeout and a failed step never stops the next. Everything goes to "$OUT".
#
#   part "checks": the tests marked gpu (memory cap through the queue, a busy GPU holding the
#     next job, the NaN skip on the device without per-step syncs, rollback, real audio and
#     detection runs), the resource monitor's readings, the audio engine against a bare loop.
#   part "detect": detection epoch throughput, ours against raw Ultralytics, and time to the
#     best validation mAP50 of our auto preset against Ultralytics' defaults (from the .pt).
#   part "detect2" (a later lease): throughput at 30 epochs after the serialisation moved to the
#     writer thread, time to best from scratch (one seed each side), and one more seed of the
#     default run from the .pt (seed 1; "detect" ran seed 0).
#
#   OUT=/tmp/out PYTHONPATH=/tmp/site bash bench/gpu_check.sh checks
#   OUT=/tmp/out SMALLTRAIN_GPU_DATA=.gpudata/bccd \
#     SMALLTRAIN_GPU_WEIGHTS=.gpudata/yolov8s_fall_detection.pt \
#     PYTHONPATH=/tmp/site bash bench/gpu_check.sh detect
#   OUT=/tmp/out bash bench/gpu_check.sh all --dry    # CPU: every step says "no CUDA"
set -u
PART=${1:-all}
DRY=0
[ "${2:-}" = "--dry" ] && DRY=1
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
LOG="$OUT/gpu_check_$PART.log"
PY=${PYTHON:-python3}
DATA=${SMALLTRAIN_GPU_DATA:-.gpudata/bccd}
WEIGHTS=${SMALLTRAIN_GPU_WEIGHTS:-.gpudata/yolov8s_fall_detection.pt}
WORKERS=${SMALLTRAIN_GPU_WORKERS:-8}
export PYTHONUNBUFFERED=1 SMALLTRAIN_HOME="$OUT/home-tmp" MPLBACKEND=Agg
export YOLO_OFFLINE=1 YOLO_AUTOINSTALL=false
export PYTHONPATH="src:.:${PYTHONPATH:-}"

step() {  # step NAME TIMEOUT_S COMMAND...: run, log, record rc and seconds
  local name=$1 limit=$2; shift 2
  echo "=== [$(date +%T)] $name (timeout ${limit}s): $*" | tee -a "$LOG"
  local t0=$SECONDS
  timeout -k 10 "$limit" "$@" 2>&1 | tee -a "$LOG"
  local rc=${PIPESTATUS[0]}
  echo "=== $name: rc=$rc in $((SECONDS - t0)) s" | tee -a "$LOG"
}

$PY - <<'EOF' 2>&1 | tee -a "$LOG"
import platform, torch
print("python", platform.python_version(), "torch", torch.__version__,
      "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA")
EOF
CUDA=$($PY -c "import torch; print(int(torch.cuda.is_available()))" 2>/dev/null || echo 0)
if [ "$CUDA" != 1 ]; then
  echo "=== no CUDA: the GPU steps are skipped$([ "$DRY" = 1 ] && echo ' (dry run)')" | tee -a "$LOG"
fi

if [ "$PART" = checks ] || [ "$PART" = all ]; then
  # (a) every test marked gpu; -rA lists each one's outcome
  step a_gpu_tests 240 $PY -m pytest -q -rA -p no:cacheprovider -m gpu tests --timeout 200
  if [ "$CUDA" = 1 ]; then
    # (b) the monitor's readings under load
    step b_monitor 40 $PY bench/gpu_checks.py monitor
    # (c) the audio engine against a bare loop on the GPU (small preset's model and batch)
    step c_audio_overhead 120 $PY bench/bench_engine.py overhead --device cuda
  fi
fi

if { [ "$PART" = detect ] || [ "$PART" = all ]; } && [ "$CUDA" = 1 ]; then
  # (d) epoch throughput, ours vs raw, imgsz 640 batch 16 from the .pt, the same arguments
  step d_detect_throughput 170 $PY bench/bench_detect_speed.py --device 0 \
    --data "$DATA/data.yaml" --weights "$WEIGHTS" --imgsz 640 --batch 16 --epochs 30 \
    --workers "$WORKERS" --modes throughput --out "$OUT/detect_throughput.json"
  # (e) time to best from the .pt: Ultralytics' defaults (100 epochs) once, our auto preset on
  #     three seeds (each a third of the default run's length)
  step e_time_to_best 330 $PY bench/bench_detect_speed.py --device 0 \
    --data "$DATA/data.yaml" --weights "$WEIGHTS" --imgsz 640 --batch 16 --seeds 1 \
    --auto-seeds 3 --workers "$WORKERS" --modes pretrained --out "$OUT/detect_time_to_best.json"
fi
if [ "$PART" = detect2 ] && [ "$CUDA" = 1 ]; then
  COMMON=(--device 0 --data "$DATA/data.yaml" --weights "$WEIGHTS" --imgsz 640 --batch 16
          --workers "$WORKERS")
  step f_detect_throughput30 130 $PY bench/bench_detect_speed.py "${COMMON[@]}" --epochs 30 \
    --modes throughput --out "$OUT/detect_throughput30.json"
  step g_time_to_best_scratch 300 $PY bench/bench_detect_speed.py "${COMMON[@]}" --seeds 1 \
    --modes scratch --out "$OUT/detect_scratch.json"
  step h_default_pretrained_seed1 170 $PY bench/bench_detect_speed.py "${COMMON[@]}" \
    --seeds 1 --first-seed 1 --sides default --modes pretrained \
    --out "$OUT/detect_default_seed1.json"
fi
rm -rf "$OUT/home-tmp"
echo "=== finished; files in $OUT" | tee -a "$LOG"
