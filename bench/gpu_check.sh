#!/usr/bin/env bash
# One GPU verification run (issue 16), in order of value; each step has its own timeout and a
# failed step never stops the next. Everything goes to "$OUT" (a log and JSON files).
#
#   OUT=/tmp/out SMALLTRAIN_GPU_DATA=.gpudata/bccd SMALLTRAIN_GPU_WEIGHTS=.gpudata/yolov8s.pt \
#     PYTHONPATH=src:.:/tmp/site bash bench/gpu_check.sh          # about 6-7 min on an H100
#   OUT=/tmp/out PYTHONPATH=src:. bash bench/gpu_check.sh --dry    # CPU: every step, seconds
set -u
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
SUMMARY="$OUT/gpu_check.json"
PY=${PYTHON:-python}
DATA=${SMALLTRAIN_GPU_DATA:-.gpudata/bccd}
WEIGHTS=${SMALLTRAIN_GPU_WEIGHTS:-.gpudata/yolov8s_fall_detection.pt}
DRY=0
[ "${1:-}" = "--dry" ] && DRY=1
export PYTHONUNBUFFERED=1 SMALLTRAIN_HOME="$OUT/home-tmp" MPLBACKEND=Agg
export PYTHONPATH="src:.:${PYTHONPATH:-}"
echo "{" > "$SUMMARY"

step() {  # step NAME TIMEOUT_S COMMAND...: run, log, record rc and seconds
  local name=$1 limit=$2; shift 2
  echo "=== [$(date +%T)] $name (timeout ${limit}s): $*" | tee -a "$LOG"
  local t0=$SECONDS
  timeout -k 10 "$limit" "$@" 2>&1 | tee -a "$LOG"
  local rc=${PIPESTATUS[0]}
  echo "=== $name: rc=$rc in $((SECONDS - t0)) s" | tee -a "$LOG"
  echo "\"$name\": {\"rc\": $rc, \"seconds\": $((SECONDS - t0))}," >> "$SUMMARY"
}

$PY - <<'EOF' 2>&1 | tee -a "$LOG"
import platform, torch
print("python", platform.python_version(), "torch", torch.__version__,
      "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA")
EOF
CUDA=$($PY -c "import torch; print(int(torch.cuda.is_available()))" 2>/dev/null || echo 0)

# (a) the GPU-marked tests (and the detection + audio tests' CUDA branches)
step a_gpu_tests 150 $PY -m pytest -q -p no:cacheprovider -m gpu tests -x --timeout 120
# (b) memory cap, (c) NaN skip without per-step syncs + rollback, (d) resource monitor
step b_memcap 60 $PY bench/gpu_checks.py memcap
step c_nan 90 $PY bench/gpu_checks.py nan
step d_monitor 40 $PY bench/gpu_checks.py monitor
if [ "$CUDA" = 1 ]; then
  # (e) a short real audio run on the GPU (small preset, 3 epochs)
  step e_audio 90 $PY - <<'EOF'
import tempfile, time
from pathlib import Path
from smalltrain.tasks.audio.synth import make_sound_folder
from smalltrain.tasks.audio.task import AudioTask
from smalltrain.tasks.audio.train import train
with tempfile.TemporaryDirectory() as tmp:
    make_sound_folder(Path(tmp) / "s", n_files=24, seed=1)
    task = AudioTask()
    cfg = task.adaptive_config(task.inspect(Path(tmp) / "s"), "cuda", "small", epochs=3)
    t0 = time.perf_counter()
    r = train(cfg, Path(tmp) / "s", Path(tmp) / "run")
    print("audio on cuda:", r.status, r.epochs_completed, "epochs", f"{time.perf_counter()-t0:.1f} s", r.metrics)
EOF
  # (f) detection epoch throughput, ours vs raw, imgsz 640 batch 16 from the .pt
  step f_detect_throughput 150 $PY bench/bench_detect_speed.py --device 0 \
    --data "$DATA/data.yaml" --weights "$WEIGHTS" --imgsz 640 --batch 16 --epochs 30 \
    --modes throughput --out "$OUT/detect_throughput.json"
  # (g) time to best from the .pt, 1 seed: Ultralytics' defaults (100 epochs) vs our auto preset
  step g_time_to_best 280 $PY bench/bench_detect_speed.py --device 0 \
    --data "$DATA/data.yaml" --weights "$WEIGHTS" --imgsz 640 --batch 16 --seeds 1 \
    --modes pretrained --out "$OUT/detect_time_to_best.json"
else
  for s in e_audio f_detect_throughput g_time_to_best; do
    echo "=== $s: skipped: no CUDA" | tee -a "$LOG"
    echo "\"$s\": {\"skipped\": \"no CUDA\"}," >> "$SUMMARY"
  done
  [ "$DRY" = 1 ] && echo "(dry run on CPU: the GPU steps were skipped)" | tee -a "$LOG"
fi
echo "\"done\": true}" >> "$SUMMARY"
rm -rf "$OUT/home-tmp"
echo "=== finished; files in $OUT" | tee -a "$LOG"
