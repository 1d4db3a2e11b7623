#!/usr/bin/env bash
# Train four models at once on one GPU through gpu_train.sh, each for MINUTES of wall time:
# these small networks leave a single H200 mostly idle (launch-bound steps, neighbour search
# on the host), so running them side by side costs no GPU time. Run from the repository root
# on the GPU machine:
#
#     RESULTS=/some/folder MINUTES=8 bash benchmarks/gpu_campaign.sh
#
# Writes RESULTS/<job>.pt (the checkpoint, resumable with gpu_train.sh's OUT=runs/gpu/<job>)
# and RESULTS/logs.tar.gz (each job's log.csv and output, and an nvidia-smi trace). A job that
# fails does not stop the others. The jobs:
#   a-Si-gpu         paper-size a-Si network (hidden 128, 4 layers, 6.5 Å) on the whole a-Si
#                    thermal history (melt to 1 K/ps), conditioned on log10 cooling rate, with
#                    channel angles and EDM preconditioning (sigma_d 0.5 Å): issue 15's recipe;
#   a-SiO2-ft        the a-SiO2-cooling network with channel angles, fine-tuned further;
#   a-SiO2-wide      a wider one (hidden 96, 4 layers) from scratch on the same DM2 glass;
#   a-SiO2-shortcut  the fine-tuned network with AMShortcut's self-consistency term.
set -uo pipefail

RESULTS=${RESULTS:?set RESULTS to the folder that receives the checkpoints}
MINUTES=${MINUTES:-8}
WORK=${WORK:-runs/gpu}
THREADS=${THREADS:-4}       # host threads per job (neighbour search): 16 cores, four jobs
export PYTHON=${PYTHON:-python3} MINUTES AMP=0 TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1 OMP_NUM_THREADS=$THREADS
mkdir -p "$RESULTS" "$WORK"

SILICA=(DATA=datasets/dm2-a-SiO2.h5 NAME=a-SiO2-cooling LAYERS=3 HIDDEN=64 CUTOFF=4.0 BATCH=16)
SILICA_ARGS=(--properties cooling_rate --log10-properties cooling_rate --property-basis 9
             --fixed-composition --channel-angles --lr-final 0.05)
FINE_TUNE=(--init-from benchmarks/results/a-SiO2-cooling-angles.pt
           --log-sigma-mean -0.5 --log-sigma-std 0.8)

job() {  # job NAME VAR=VALUE... -- TRAIN-ARGS...
    local name=$1 vars=()
    shift
    while [ "$1" != -- ]; do vars+=("$1"); shift; done
    shift
    env "${vars[@]}" OUT="$WORK/$name" bash benchmarks/gpu_train.sh "$@" \
        > "$WORK/$name.out" 2>&1 &
}

nvidia-smi dmon -s um -d 5 > "$WORK/nvidia-smi.txt" 2>&1 &
monitor=$!
job a-Si-gpu DATA=datasets/a-Si-history.h5 NAME=a-Si HIDDEN=128 LAYERS=4 CUTOFF=6.5 BATCH=48 -- \
    --properties cooling_rate --log10-properties cooling_rate --property-basis 9 \
    --channel-angles --sigma-data 0.5
job a-SiO2-ft "${SILICA[@]}" LR=3e-4 -- "${SILICA_ARGS[@]}" "${FINE_TUNE[@]}" --seed 7
job a-SiO2-wide "${SILICA[@]}" HIDDEN=96 LAYERS=4 LR=1e-3 -- "${SILICA_ARGS[@]}" --seed 8
job a-SiO2-shortcut "${SILICA[@]}" NAME=a-SiO2-shortcut LR=3e-4 -- "${SILICA_ARGS[@]}" \
    "${FINE_TUNE[@]}" --shortcut --seed 9
wait $(jobs -p | grep -v "^$monitor$")
kill "$monitor" 2>/dev/null

for out in "$WORK"/*/; do
    name=$(basename "$out")
    [ -f "$out/last.pt" ] && cp "$out/last.pt" "$RESULTS/$name.pt"
    echo "== $name: $(tail -n 1 "$WORK/$name.out")"
done
tar -czf "$RESULTS/logs.tar.gz" "$WORK"/*.out "$WORK"/*/log.csv "$WORK/nvidia-smi.txt"
