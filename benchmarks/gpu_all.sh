#!/usr/bin/env bash
# Everything GPU in one unattended run on a lent CUDA machine (about 9 minutes at most):
# the carried wheels installed (no network), the kernel tests with --device cuda, then every
# benchmarks/gpu_*.py (gpu_pipeline.py last, with the time that is left). Log: $OUT/gpu_all.log.
#
#   bash benchmarks/gpu_all.sh                 # from anywhere; OUT defaults to /tmp/gpu_out
#
# Data: the clip and model are looked up under $VIDPIPE_GPU_DATA (default ./.gpu_data, the same
# layout as ../shared: data/videos/..., models/yolox_nano/...), else ../shared.
# Wheels: .whl/*.whl and .whl/gpu/*.whl (those matching this python) -> /tmp/site on PYTHONPATH.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
LOG=$OUT/gpu_all.log
exec > >(tee -a "$LOG") 2>&1
TOTAL=${GPU_ALL_SECONDS:-530}      # the whole script, seconds
PIPELINE_MIN=${GPU_PIPELINE_SECONDS:-210}   # kept for gpu_pipeline.py
left() { echo $((TOTAL - SECONDS)); }
step() { echo; echo "=== [$SECONDS s] $*"; }

step "machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
nproc
PY=python3
TAG=$($PY -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
echo "python $($PY -V 2>&1) ($TAG)"

step "wheels -> /tmp/site"
WHEELS=()
for w in .whl/*.whl .whl/gpu/*.whl; do
    [ -e "$w" ] || continue
    case "$w" in
        *-py3-none-any.whl|*-py2.py3-none-any.whl|*-$TAG-*|*-cp3*-abi3-*) WHEELS+=("$w") ;;
    esac
done
if [ ${#WHEELS[@]} -gt 0 ]; then
    $PY -m pip install -q --no-index --no-deps --target /tmp/site "${WHEELS[@]}" || echo "WARNING: wheel install failed"
fi
export PYTHONPATH=/tmp/site:$ROOT${PYTHONPATH:+:$PYTHONPATH}
export VIDPIPE_GPU_DATA=${VIDPIPE_GPU_DATA:-$ROOT/.gpu_data}
if [ -z "${VIDPIPE_SHARED:-}" ]; then
    if [ -d "$VIDPIPE_GPU_DATA" ]; then export VIDPIPE_SHARED=$VIDPIPE_GPU_DATA; else export VIDPIPE_SHARED=$ROOT/../shared; fi
fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
echo "VIDPIPE_SHARED=$VIDPIPE_SHARED"
$PY - <<'EOF'
import importlib
for name in ("torch", "numpy", "cv2", "av", "yaml", "scipy", "filterpy", "onnx", "onnxruntime", "onnx2torch", "pytest", "tqdm"):
    try:
        mod = importlib.import_module(name)
        print(f"  {name:<12} {getattr(mod, '__version__', '?')}")
    except Exception as exc:  # noqa: BLE001
        print(f"  {name:<12} MISSING ({type(exc).__name__}: {exc})")
import torch
print("  cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
EOF

step "kernel tests, --device cuda"
TESTS=$(grep -lE "def test_\w+\([^)]*\bdevice\b" tests/test_*.py | tr '\n' ' ')
echo "$TESTS"
timeout 150 $PY -m pytest -q -p no:cacheprovider --device cuda $TESTS 2>&1 | tail -40
echo "pytest exit: ${PIPESTATUS[0]}"

OTHERS=$(ls benchmarks/gpu_*.py | grep -v gpu_pipeline.py)
N=$(echo "$OTHERS" | wc -w)
for f in $OTHERS; do
    budget=$(( ($(left) - PIPELINE_MIN) / N ))
    N=$((N - 1))
    [ "$budget" -gt 180 ] && budget=180
    if [ "$budget" -lt 20 ]; then step "$f: skipped (no time left)"; continue; fi
    step "$f (timeout ${budget} s)"
    timeout "$budget" $PY -u "$f" 2>&1 | grep -v "^vidpipe: INFO" | tail -60
    echo "exit: ${PIPESTATUS[0]}"
done

if [ $(( $(left) - PIPELINE_MIN )) -gt 40 ]; then
    step "benchmarks/bench_stage_costs.py --device cuda --gpu-chain (each stage alone, synchronised)"
    timeout 90 $PY -u benchmarks/bench_stage_costs.py --device cuda --gpu-chain --frames 150 2>&1 \
        | grep -v "^vidpipe: INFO" | grep -v "Warning" | tail -20
    echo "exit: ${PIPESTATUS[0]}"
fi

budget=$(( $(left) - 15 ))
step "benchmarks/gpu_pipeline.py (budget ${budget} s)"
if [ "$budget" -gt 60 ]; then
    timeout $((budget + 30)) $PY -u benchmarks/gpu_pipeline.py --budget "$budget" 2>&1 | grep -v "^vidpipe: INFO"
    echo "exit: ${PIPESTATUS[0]}"
else
    echo "skipped: only ${budget} s left"
fi
step "done in $SECONDS s; log $LOG"
