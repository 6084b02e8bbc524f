#!/usr/bin/env bash
# README command 1, the main job: install dependencies, build, convert the built-in Fashion-MNIST
# data (Debian's dataset-fashion-mnist) into shards, train with 2 MPI ranks for a few minutes, and
# print the Recall@K / MAP@R table of the trained model next to the untrained one; then evaluate the
# best model with dist_eval (exporting its embeddings), draw the t-SNE pictures and the training
# curves, and export the model to TorchScript for Python.
set -euo pipefail
# ---- change these for your system ------------------------------------------------------------
RANKS=${RANKS:-2}
FMNIST_IDX=${FMNIST_IDX:-/usr/share/datasets/fashion-mnist}
DATA=${DATA:-data/fashion-mnist}
RUN_DIR=${RUN_DIR:-runs/demo}
EPOCHS=${EPOCHS:-8}
BUILD_DIR=${DML_BUILD_DIR:-build}
# -----------------------------------------------------------------------------------------------
cd "$(dirname "$0")/.."
bash launch/setup_debian.sh
bash launch/build.sh dist_train dist_eval dml_prepare
[ -f "$DATA/train-00000-of-00001.h5" ] || \
  "$BUILD_DIR/dml_prepare" --source fashion-mnist --input "$FMNIST_IDX" --output "$DATA" --overwrite
mkdir -p "$RUN_DIR"
rm -f "$RUN_DIR/metrics.jsonl"
threads=$(( $(nproc) / RANKS )); [ "$threads" -ge 1 ] || threads=1
bash launch/mpirun_local.sh "$RANKS" \
  --data-path "$DATA" --model small_convnet --small-input-stem --crop-size 28 --embed-dim 64 \
  --batch-size 60 --batch-k 6 --epochs "$EPOCHS" --iterations-per-epoch 150 --steps 5,7 \
  --lr 1e-3 --log-interval 50 --eval-untrained --nmi --threads "$threads" --workers 1 \
  --save-model-prefix "$RUN_DIR/model" --metrics-file "$RUN_DIR/metrics.jsonl" "$@"

# The trained model, evaluated alone (both ranks), its embeddings exported, and the pictures.
DML_PROGRAM=dist_eval bash launch/mpirun_local.sh "$RANKS" --checkpoint "$RUN_DIR/model-best.pt" --data-path "$DATA" --gpus '' --threads "$threads" \
  --workers 1 --nmi --metrics-json "$RUN_DIR/eval.json" --export "$RUN_DIR/embeddings.h5" --overwrite
/usr/bin/python3 launch/pictures.py tsne --export "$RUN_DIR/embeddings.h5" --out-dir "$RUN_DIR"
/usr/bin/python3 launch/pictures.py curves --metrics-file "$RUN_DIR/metrics.jsonl" --out "$RUN_DIR/curves.png"
/usr/bin/python3 launch/export_torchscript.py --checkpoint "$RUN_DIR/model-best.pt" --out "$RUN_DIR/model.ts"
echo
echo "[demo] pictures: $RUN_DIR/tsne_thumbnails.png $RUN_DIR/tsne_classes.png $RUN_DIR/curves.png"
echo "[demo] metrics: $RUN_DIR/eval.json; embeddings: $RUN_DIR/embeddings.h5; TorchScript model: $RUN_DIR/model.ts"
