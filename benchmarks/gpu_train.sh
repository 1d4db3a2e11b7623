#!/usr/bin/env bash
# Train the paper-size a-Si network (AMDEN: hidden 128, 4 layers, cutoff 6.5 Å) within
# 10 minutes of one H200-class GPU: bf16 autocast, the whole training split in every batch,
# the structures held on the GPU, and a wall-clock limit that ends the cosine schedule and
# writes a resumable OUT/last.pt in time. Run from the repository root:
#
#     bash benchmarks/gpu_train.sh                  # on the GPU machine
#     PYTHON=.venv/bin/python MINUTES=8 bash benchmarks/gpu_train.sh
#
# Every setting can be overridden through the environment (the smoke test runs it on the CPU
# at tiny size: DEVICE=cpu HIDDEN=8 LAYERS=1 CUTOFF=3 ...). Then benchmark the result on the
# CPU, e.g. python -m benchmarks.equivalent_cooling_rate --checkpoint runs/gpu-a-Si/last.pt
set -euo pipefail

PYTHON=${PYTHON:-python}
DATA=${DATA:-datasets/a-Si-anneal.h5}
OUT=${OUT:-runs/gpu-a-Si}
NAME=${NAME:-a-Si-gpu}
DEVICE=${DEVICE:-cuda}
HIDDEN=${HIDDEN:-128}
LAYERS=${LAYERS:-4}
CUTOFF=${CUTOFF:-6.5}
RADIAL=${RADIAL:-16}
BATCH=${BATCH:-60}          # a-Si-anneal has 60 training structures: all of them per step
LR=${LR:-1e-3}
STEPS=${STEPS:-100000}      # more than fit: the time limit ends the run and the schedule
MINUTES=${MINUTES:-9}       # leaves a minute of the ten for start-up and the last checkpoint
AMP=${AMP:-1}               # 1: bf16 autocast; 0: float32 (TF32 matrix products if
                            # TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1)

if [ "$DEVICE" = cuda ]; then
    "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else \
'no CUDA device visible to torch: run on the GPU machine or set DEVICE=cpu')"
fi

start=$(date +%s)
PYTHONPATH=${PYTHONPATH:-.} "$PYTHON" -m ase_amden train "$DATA" --name "$NAME" --out "$OUT" \
    --device "$DEVICE" --hidden "$HIDDEN" --layers "$LAYERS" --cutoff "$CUTOFF" \
    --radial "$RADIAL" --channel-distances --time-sampling lognormal \
    --batch-size "$BATCH" --lr "$LR" --lr-schedule cosine --lr-final 0.1 \
    --max-steps "$STEPS" --time-limit "$MINUTES" --checkpoint-every 1000 \
    --data-on-device --quiet $([ "$AMP" = 1 ] && echo --amp) "$@"
echo "wall time: $(( $(date +%s) - start )) s; last lines of $OUT/log.csv:"
tail -n 2 "$OUT/log.csv"
