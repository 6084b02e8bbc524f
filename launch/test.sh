#!/usr/bin/env bash
# README command 2: install dependencies, build everything, run the whole test suite with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup_debian.sh
bash launch/build.sh
cd "${DML_BUILD_DIR:-build}"
ctest --output-on-failure -j "${DML_TEST_JOBS:-2}" --timeout 900
