#!/usr/bin/env bash
# Writes HDF5 shards of an image folder with one sub-folder per class (Cars196, SOP, your own data
# arranged that way). Classes split by halves of the sorted names unless TRAIN_CLASSES and
# TEST_CLASSES (comma-separated sub-folder names) are set.
# Usage: launch/prepare_image_folder.sh [extra dml_prepare flags, e.g. --overwrite]
set -euo pipefail
cd "$(dirname "$0")/.."

# ---- change these for your system -------------------------------------------------------------
IMAGE_DIR=${IMAGE_DIR:-data/my_images}    # <IMAGE_DIR>/<class>/<image>.jpg
OUTPUT_DIR=${OUTPUT_DIR:-data/my_images_shards}
SHARDS=${SHARDS:-4}
RESIZE=${RESIZE:-256}
TRAIN_CLASSES=${TRAIN_CLASSES:-}          # e.g. "cat,dog"; empty = first half of the classes
TEST_CLASSES=${TEST_CLASSES:-}            # e.g. "fox,owl"; empty = second half
THREADS=${THREADS:-0}
BUILD_DIR=${DML_BUILD_DIR:-build}
# ------------------------------------------------------------------------------------------------

class_flags=()
[ -n "$TRAIN_CLASSES" ] && class_flags+=(--train-classes "$TRAIN_CLASSES")
[ -n "$TEST_CLASSES" ] && class_flags+=(--test-classes "$TEST_CLASSES")
[ -x "$BUILD_DIR/dml_prepare" ] || DML_BUILD_DIR="$BUILD_DIR" launch/build.sh dml_prepare
exec "$BUILD_DIR/dml_prepare" --source folder --input "$IMAGE_DIR" --output "$OUTPUT_DIR" \
  --shards "$SHARDS" --resize "$RESIZE" --threads "$THREADS" "${class_flags[@]}" "$@"
