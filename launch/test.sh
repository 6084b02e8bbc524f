#!/usr/bin/env bash
# README command 2: install dependencies, build everything, run the whole test suite with ctest,
# then (after the CPU build and tests passed) compile and link dist_train against a CUDA LibTorch
# with launch/build_cuda.sh (no GPU needed; about 1 GB of wheels, cached between runs).
# DML_SKIP_CUDA_BUILD=1 skips that last step.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup_debian.sh
bash launch/build.sh
(cd "${DML_BUILD_DIR:-build}" && ctest --output-on-failure -j "${DML_TEST_JOBS:-2}" --timeout 900)
if [ "${DML_SKIP_CUDA_BUILD:-0}" = 1 ]; then
  echo "[test] DML_SKIP_CUDA_BUILD=1: CUDA build skipped"
else
  bash launch/build_cuda.sh
fi
