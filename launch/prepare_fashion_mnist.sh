#!/usr/bin/env bash
# Writes HDF5 shards of Fashion-MNIST (Debian's dataset-fashion-mnist IDX files).
# Usage: launch/prepare_fashion_mnist.sh [extra dml_prepare flags, e.g. --class-split --overwrite]
set -euo pipefail
cd "$(dirname "$0")/.."

# ---- change these for your system -------------------------------------------------------------
FASHION_MNIST_DIR=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}  # the *-idx*-ubyte.gz files
OUTPUT_DIR=${OUTPUT_DIR:-data/fashion-mnist}                             # where the shards go
SHARDS=${SHARDS:-1}                                                      # shards per split
THREADS=${THREADS:-0}                                                    # 0 = all cores
BUILD_DIR=${DML_BUILD_DIR:-build}
# ------------------------------------------------------------------------------------------------

[ -x "$BUILD_DIR/dml_prepare" ] || DML_BUILD_DIR="$BUILD_DIR" launch/build.sh dml_prepare
exec "$BUILD_DIR/dml_prepare" --source fashion-mnist --input "$FASHION_MNIST_DIR" --output "$OUTPUT_DIR" \
  --shards "$SHARDS" --threads "$THREADS" "$@"
