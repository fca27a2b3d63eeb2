#!/usr/bin/env bash
# Prepare what benchmarks/gpu_all.sh needs on a lent GPU machine, which reaches no network:
#   .whl/       wheels of the packages such a machine may lack (PyAV, filterpy, onnx2torch), from
#               the package registry (pure Python or abi3: any Python >= 3.11 takes them)
#   .gpu_data/  the 1080p Town Centre clip and the detector weights, copied from ../shared
#               (the same layout: data/videos/..., models/...)
# Both are ignored by git; the device tool carries them:
#   bash benchmarks/gpu_prepare.sh
#   run(command="bash benchmarks/gpu_all.sh", carry=[".whl", ".gpu_data"], timeout_s=560)
# (gpu_all.sh keeps to ~9 minutes; its log is in $OUT/gpu_all.log).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${VIDPIPE_SHARED:-../shared}
PY=${PYTHON:-python3}
mkdir -p .whl/gpu
$PY -m pip download -q --no-deps --only-binary=:all: -d .whl "av==18.1.0" "filterpy==2.0.0" "onnx2torch==1.5.15" \
    || $PY -m pip download -q --no-deps -d .whl "av==18.1.0" "filterpy==2.0.0" "onnx2torch==1.5.15"
for item in data/videos/pedestrians_towncentre_1080p.mp4 data/videos/SOURCES.md \
            models/yolox_nano/yolox_nano.onnx models/yolox_nano/coco80_classes.txt models/SOURCES.md; do
    if [ ! -f "$SHARED/$item" ]; then
        echo "missing: $SHARED/$item (set VIDPIPE_SHARED to the shared data folder)" >&2
        exit 1
    fi
    mkdir -p ".gpu_data/$(dirname "$item")"
    cp -u "$SHARED/$item" ".gpu_data/$item"
done
du -sh .whl .gpu_data
ls .whl
