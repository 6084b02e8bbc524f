#!/usr/bin/env bash
# Evaluation speed against training speed for the same model: trains a few steps with dist_train,
# then embeds test images with dist_eval from the checkpoint, and prints both images/s figures and
# their ratio (evaluation is forward-only without autograd, in larger batches, with every loader
# worker). Measures only; asserts nothing. Usage: launch/bench_eval.sh [extra dist_train flags...]
set -euo pipefail
# ---- change these for your system ------------------------------------------------------------
MODEL=${MODEL:-resnet18_v1}
DATA=${DATA:-data/fashion-mnist}
FMNIST_IDX=${FMNIST_IDX:-/usr/share/datasets/fashion-mnist}
STEPS=${STEPS:-20}
EVAL_IMAGES=${EVAL_IMAGES:-2000}
THREADS=${THREADS:-$(nproc)}
BUILD_DIR=${DML_BUILD_DIR:-build}
OUT=${OUT:-runs/bench_eval}
# -----------------------------------------------------------------------------------------------
cd "$(dirname "$0")/.."
bash launch/build.sh dist_train dist_eval dml_prepare >/dev/null
[ -f "$DATA/train-00000-of-00001.h5" ] || \
  "$BUILD_DIR/dml_prepare" --source fashion-mnist --input "$FMNIST_IDX" --output "$DATA" --overwrite
mkdir -p "$OUT"
train_log=$("$BUILD_DIR/dist_train" --data-path "$DATA" --model "$MODEL" --small-input-stem --crop-size 28 \
  --batch-size 50 --batch-k 5 --iterations-per-epoch "$STEPS" --epochs 1 --max-test-images 100 --recall-k 1 \
  --threads "$THREADS" --workers 2 --no-progress --save-model-prefix "$OUT/model" "$@" 2>&1)
train_rate=$(grep -oE 'Steps run: [0-9]+, [0-9.]+ images/s' <<<"$train_log" | grep -oE '[0-9.]+ images' | grep -oE '[0-9.]+')
eval_log=$("$BUILD_DIR/dist_eval" --checkpoint "$OUT/model-last.pt" --max-images "$EVAL_IMAGES" --recall-k 1 \
  --threads "$THREADS" --workers 2 2>&1)
eval_rate=$(grep -oE '\([0-9.]+ images/s\)' <<<"$eval_log" | grep -oE '[0-9.]+')
printf '\n%-34s %12s\n' "$MODEL, 28 px, $THREADS threads" "images/s"
printf '%-34s %12s\n' "training (forward + backward + step)" "$train_rate"
printf '%-34s %12s\n' "evaluation (dist_eval, embedding)" "$eval_rate"
printf '%-34s %12s\n' "ratio" "$(python3 -c "print(f'{$eval_rate / $train_rate:.2f}x')")"
