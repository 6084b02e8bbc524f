#!/usr/bin/env bash
# Configures and builds dml (Release) into ${DML_BUILD_DIR:-build}. Usage: launch/build.sh [target...]
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${DML_BUILD_DIR:-build}
jobs=${DML_BUILD_JOBS:-$(nproc)}
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release
fi
if [ $# -gt 0 ]; then
  targets=(); for t in "$@"; do targets+=(--target "$t"); done
  cmake --build "$build_dir" -j "$jobs" "${targets[@]}"
else
  cmake --build "$build_dir" -j "$jobs"
fi
