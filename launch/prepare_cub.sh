#!/usr/bin/env bash
# Writes HDF5 shards of CUB-200-2011 in the reference protocol (classes 1-100 train, 101-200 test,
# bounding-box crop, 256x256). Get the data from https://www.vision.caltech.edu/datasets/cub_200_2011/
# and extract CUB_200_2011.tgz first (nothing is downloaded here).
# Usage: launch/prepare_cub.sh [extra dml_prepare flags, e.g. --no-bbox-crop --overwrite]
set -euo pipefail
cd "$(dirname "$0")/.."

# ---- change these for your system -------------------------------------------------------------
CUB_DIR=${CUB_DIR:-data/CUB_200_2011}  # holds images.txt, image_class_labels.txt, bounding_boxes.txt, images/
OUTPUT_DIR=${OUTPUT_DIR:-data/cub}     # where the shards go
SHARDS=${SHARDS:-4}                    # shards per split (classes round-robin over shards)
RESIZE=${RESIZE:-256}                  # the reference resizes to 256x256
THREADS=${THREADS:-0}                  # 0 = all cores
BUILD_DIR=${DML_BUILD_DIR:-build}
# ------------------------------------------------------------------------------------------------

[ -x "$BUILD_DIR/dml_prepare" ] || DML_BUILD_DIR="$BUILD_DIR" launch/build.sh dml_prepare
exec "$BUILD_DIR/dml_prepare" --source cub --input "$CUB_DIR" --output "$OUTPUT_DIR" \
  --shards "$SHARDS" --resize "$RESIZE" --threads "$THREADS" "$@"
