#!/usr/bin/env bash
# The reference example's CUB-200-2011 run (README of the MXNet example:
#   python3 train.py --data-path=data/CUB_200_2011 --gpus=0,1 --use-pretrained)
# as dml: 2 replicas of batch 70 (global batch 140), ImageNet-pretrained backbone, reference defaults.
# Needs: the CUB shards (launch/prepare_cub.sh) and the pretrained weights file
# (python3 launch/convert_torchvision.py --model resnet50_v1 --output <path>).
set -euo pipefail
# ---- change these for your system ------------------------------------------------------------
SHARDS=${SHARDS:-data/cub-shards}           # output of launch/prepare_cub.sh
MODEL=${MODEL:-resnet50_v1}                 # resnet50_v2 is the reference's; v1 has torchvision weights
PRETRAINED=${PRETRAINED:-}                  # empty: the default location for $MODEL
GPUS=${GPUS:-0,1}                           # one rank driving two GPUs, as the reference; '' for CPU
RANKS=${RANKS:-1}                           # or 2 ranks with GPUS=auto (one GPU each)
BUILD_DIR=${DML_BUILD_DIR:-build}
# -----------------------------------------------------------------------------------------------
cd "$(dirname "$0")/.."
[ -x "$BUILD_DIR/dist_train" ] || bash launch/build.sh dist_train
args=(--data-path "$SHARDS" --model "$MODEL" --use-pretrained --gpus "$GPUS"
      --save-model-prefix runs/cub/margin_loss_model --metrics-file runs/cub/metrics.jsonl "$@")
[ -n "$PRETRAINED" ] && args+=(--pretrained-path "$PRETRAINED")
mkdir -p runs/cub
if [ "$RANKS" -gt 1 ]; then
  exec bash launch/mpirun_local.sh "$RANKS" "${args[@]}"
else
  exec "$BUILD_DIR/dist_train" "${args[@]}"
fi
