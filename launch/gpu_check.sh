#!/usr/bin/env bash
# GPU check, for a machine with NVIDIA GPUs: builds dml's CUDA path, runs the tests labelled `gpu`, runs
# the training benchmark against a PyTorch AMP trainer and prints a short table.
#
#   bash launch/gpu_check.sh [--build-only] [--no-bench] [--jobs N] [--out DIR]
#
#   --build-only  configure, build and run the gpu tests only (what works without a GPU: every GPU test
#                 then skips); no benchmark, and no GPU is required
#   --no-bench    everything but the benchmark
#   --jobs N      parallel compile jobs (default: all cores)
#   --out DIR     also copy the summary, the JSON results and the logs there
#
# What the machine needs: CUDA (nvcc; DML_CUDA_HOME, CUDA_HOME or /usr/local/cuda), a CUDA build of PyTorch
# for python3 (its LibTorch is what dml builds against: <torch>/share/cmake, lib, include) with its nvidia-*
# wheels (NCCL from site-packages/nvidia/nccl, else the system's), CMake >= 3.18, ninja (or make), a C++17
# compiler, h5py and numpy (the benchmark's synthetic shards), and build-gpu-bundle/ made beforehand by
# launch/prepare_gpu_bundle.sh on a Debian machine: Open MPI, HDF5, Boost.Program_options, GoogleTest, zlib
# and OpenCV's headers. No Debian packages, no network.
#
# Steps (each bounded in time; ~8 minutes in all on a 16-core H200 machine is the aim):
#   1. configure build-gpu/ (tests on) against that LibTorch, NCCL and the bundle; build dist_train,
#      dml_bench_train and the gpu suites (tests/gpu)
#   2. ctest -L gpu: NCCL communicator conformance on 1 rank and (mpi_gpu) on 2 ranks, a training smoke test
#      on the GPU, world-size invariance 1 GPU x 2B vs 2 ranks x B (needs 2 GPUs); then the MPI suite again on
#      as many ranks as there are GPUs when that is not 2
#   3. benchmark, resnet50_v1 at 224 px, bf16 + channels-last, one GPU: dml_bench_train --bench-mode train at
#      70 and 256 images per GPU, and an inline PyTorch AMP trainer of the same step (launch/dml_models.py's
#      EmbeddingNet, launch/torch_trainer.py's loss and optimiser, autocast bf16 on the backbone, images
#      resident on the GPU) at 70 (and at 256 with DML_BENCH_TORCH_256=1); targets: dml >= 1.1 x torch at 70,
#      dml >= 3,000 images/s at 256
#
# Exit status: 0 all passed and targets met; 1 a build or test failed; 2 built and tested, but a benchmark
# target was missed or a benchmark failed; 3 no GPU found (without --build-only).
#
# Settings (environment): DML_GPU_BUNDLE (default build-gpu-bundle), DML_GPU_BUILD_DIR (build-gpu),
# DML_TORCH_DIR (a torch package folder instead of python3's), DML_NVIDIA_DIR (its nvidia/ wheels folder),
# DML_CUDA_HOME, PYTHON (python3), DML_GPU_CMAKE_ARGS (extra configure arguments, split at blanks),
# DML_BENCH_STEPS (timed steps, default 20), DML_GPU_BUILD_TIMEOUT (seconds, default 480),
# DML_GPU_REQUIRE_BUNDLE=1 (fail unless MPI, HDF5, Boost, GTest, OpenCV and zlib all come from the bundle).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
t_start=$SECONDS

log() { printf '[gpu_check %4ds] %s\n' $((SECONDS - t_start)) "$*"; }
die() { printf '[gpu_check %4ds] error: %s\n' $((SECONDS - t_start)) "$*" >&2; exit 1; }

build_only=0 bench=1 jobs=$(nproc) out_copy="" driver=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build-only) build_only=1; bench=0 ;;
    --no-bench) bench=0 ;;
    --jobs) jobs=${2:?--jobs needs a number}; shift ;;
    --jobs=*) jobs=${1#--jobs=} ;;
    --out) out_copy=${2:?--out needs a folder}; shift ;;
    --out=*) out_copy=${1#--out=} ;;
    -h|--help) awk 'NR > 1 && /^set -euo/ {exit} NR > 1' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
  shift
done

bundle=${DML_GPU_BUNDLE:-build-gpu-bundle}
build=${DML_GPU_BUILD_DIR:-build-gpu}
case "$bundle" in /*) ;; *) bundle=$repo/$bundle ;; esac
case "$build" in /*) ;; *) build=$repo/$build ;; esac
PY=${PYTHON:-python3}
steps=${DML_BENCH_STEPS:-20}
build_limit=${DML_GPU_BUILD_TIMEOUT:-480}   # seconds for the build (a 16-core machine needs ~2-3 minutes)
work=$build/gpu-check       # logs, JSON results, the summary
mkdir -p "$work/logs" "$work/json"
summary=$work/summary.txt
status_build="not run" status_tests="not run" status_mpi_n="not run" status_bench="not run"
rc_final=0

# ---- 0. what this machine has -------------------------------------------------------------------
if [ ! -f "$bundle/env.sh" ] || [ ! -f "$bundle/dml-bundle.cmake" ]; then
  die "no bundle at $bundle: run 'bash launch/prepare_gpu_bundle.sh' on the Debian machine and carry build-gpu-bundle/"
fi
# shellcheck source=/dev/null
. "$bundle/env.sh"
bundle_needs=$(sed -n 's/^needs on the GPU machine: //p' "$bundle/MANIFEST.txt" 2>/dev/null || true)
glibc_here=$(ldd --version 2>/dev/null | head -1 | grep -o '[0-9]*\.[0-9]*$' || echo "?")
"$bundle/usr/bin/ompi_info" --version >/dev/null 2>"$work/logs/ompi_info.log" \
  || die "the bundle's Open MPI does not run here (glibc $glibc_here; the bundle needs: $bundle_needs): $(tail -2 "$work/logs/ompi_info.log")"
log "bundle: $bundle (needs $bundle_needs; glibc here $glibc_here), Open MPI $("$bundle/usr/bin/ompi_info" --version | sed -n 's/^Open MPI v//p' | head -1)"

ngpu=0 gpu_names="none" gpu_cc=""
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  ngpu=$(nvidia-smi -L | grep -c '^GPU ' || true)
  gpu_names=$(nvidia-smi --query-gpu=name --format=csv,noheader | sort | uniq -c | awk '{$1 = $1 "x"; print}' | paste -sd, - || true)
  gpu_cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | sed -n '1{s/ //g;p}' || true)
  driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | sed -n 1p || true)
  log "GPUs: $ngpu ($gpu_names), driver $driver, compute capability ${gpu_cc:-?}"
else
  log "GPUs: none (no working nvidia-smi)"
  [ "$build_only" -eq 1 ] || log "no GPU: building and running the gpu tests (they skip); no benchmark; exit status 3"
  bench=0
fi

# LibTorch: python3's torch package, unless DML_TORCH_DIR names one.
if [ -n "${DML_TORCH_DIR:-}" ]; then
  T=$(cd "$DML_TORCH_DIR" && pwd)
  torch_version=$(sed -n "s/^__version__ = '\(.*\)'/\1/p" "$T/version.py" 2>/dev/null || echo "?")
else
  T=$("$PY" -c 'import os, torch; print(os.path.dirname(torch.__file__))' 2>"$work/logs/torch_import.log") \
    || die "$PY cannot import torch (set PYTHON or DML_TORCH_DIR): $(tail -1 "$work/logs/torch_import.log")"
  torch_version=$("$PY" -c 'import torch; print(torch.__version__)')
fi
[ -f "$T/share/cmake/Torch/TorchConfig.cmake" ] || die "$T has no share/cmake/Torch/TorchConfig.cmake (not a LibTorch-carrying torch)"
[ -f "$T/lib/libtorch_cuda.so" ] || die "torch $torch_version at $T is not a CUDA build (no lib/libtorch_cuda.so)"
site=$(dirname "$T")
NV=${DML_NVIDIA_DIR:-$site/nvidia}
log "LibTorch: torch $torch_version at $T"

cuda=${DML_CUDA_HOME:-${CUDA_HOME:-${CUDA_PATH:-}}}
if [ -z "$cuda" ]; then
  if command -v nvcc >/dev/null; then cuda=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")"); else cuda=/usr/local/cuda; fi
fi
[ -x "$cuda/bin/nvcc" ] || die "no nvcc at $cuda/bin (set DML_CUDA_HOME)"
export CUDA_HOME=$cuda
nvcc_version=$("$cuda/bin/nvcc" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')
log "CUDA: nvcc $nvcc_version at $cuda"

# NCCL: the nvidia-nccl wheel beside torch (the one libtorch_cuda loads), else NCCL_HOME, CUDA, the system.
nccl_inc="" nccl_lib=""
for d in "$NV/nccl" "${NCCL_HOME:-/nonexistent}" "$cuda" /usr; do
  [ -f "$d/include/nccl.h" ] || continue
  for lib in "$d/lib/libnccl.so.2" "$d/lib/libnccl.so" "$d/lib64/libnccl.so.2" "$d/lib64/libnccl.so" \
             "$d/lib/x86_64-linux-gnu/libnccl.so.2" "$d/lib/x86_64-linux-gnu/libnccl.so"; do
    if [ -f "$lib" ]; then nccl_inc=$d/include nccl_lib=$lib; break 2; fi
  done
done
[ -n "$nccl_lib" ] || die "no NCCL (nccl.h and libnccl.so) in $NV/nccl, \$NCCL_HOME, $cuda or /usr"
nccl_version=$(awk '/^#define NCCL_(MAJOR|MINOR|PATCH) /{printf "%s%s", sep, $3; sep="."}' "$nccl_inc/nccl.h")
torch_nccl=$(ldd "$T/lib/libtorch_cuda.so" 2>/dev/null | awk '$1 == "libnccl.so.2" {print $3}')
log "NCCL: $nccl_version, $nccl_lib (libtorch_cuda loads ${torch_nccl:-?})"

command -v cmake >/dev/null || die "cmake is missing"
generator=(-G Ninja)
command -v ninja >/dev/null || { generator=(-G "Unix Makefiles"); log "no ninja: using make"; }
log "tools: $(cmake --version | head -1), $(c++ --version 2>/dev/null | head -1 || echo 'c++ ?'), jobs $jobs"

# ---- 1. configure and build -------------------------------------------------------------------------
# ld resolves libtorch_cuda's dependencies (the nvidia wheels' cuDNN, cuBLAS, cuSPARSELt, NVSHMEM, cuFile,
# NCCL, ...) and the bundle's libraries' own dependencies through -rpath-link; at run time torch's RUNPATH
# and the bundle's RUNPATHs find them.
rpl=$(sed -n 's/^set(DML_BUNDLE_RPATH_LINK "\(.*\)" CACHE.*/\1/p' "$bundle/dml-bundle.cmake" | sed "s#\${_dml_l}#$bundle/usr/lib/x86_64-linux-gnu#g")
[ -n "$rpl" ] || rpl=$bundle/usr/lib/x86_64-linux-gnu:$bundle/usr/lib/x86_64-linux-gnu/openmpi/lib
for d in "$NV"/*/lib "$cuda/lib64" "$cuda/targets/x86_64-linux/lib" "$T/lib" "$(dirname "$nccl_lib")"; do
  [ -d "$d" ] && rpl=$rpl:$d
done
arch_list=${TORCH_CUDA_ARCH_LIST:-${gpu_cc:-9.0}}
cmake_args=(-S "$repo" -B "$build" "${generator[@]}" -C "$bundle/dml-bundle.cmake"
  -DCMAKE_BUILD_TYPE=Release -DDML_BUILD_TESTS=ON
  "-DCMAKE_PREFIX_PATH=$T/share/cmake;$bundle/usr"
  "-DTORCH_LIBRARY=$T/lib/libtorch.so" "-Dc10_LIBRARY=$T/lib/libc10.so"
  "-DCUDAToolkit_ROOT=$cuda" "-DCUDA_TOOLKIT_ROOT_DIR=$cuda" "-DCMAKE_CUDA_COMPILER=$cuda/bin/nvcc"
  "-DTORCH_CUDA_ARCH_LIST=$arch_list"
  "-DNCCL_INCLUDE_DIR=$nccl_inc" "-DNCCL_LIBRARY=$nccl_lib"
  "-DCMAKE_EXE_LINKER_FLAGS=-Wl,-rpath-link,$rpl"
  "-DDML_TEST_PYTHON=$(command -v "$PY" || echo "$PY")")
# shellcheck disable=SC2206  # DML_GPU_CMAKE_ARGS is split at blanks on purpose
[ -z "${DML_GPU_CMAKE_ARGS:-}" ] || cmake_args+=(${DML_GPU_CMAKE_ARGS})
t0=$SECONDS
args_now=$(printf '%s\n' "${cmake_args[@]}")
if [ -f "$build/CMakeCache.txt" ] && [ "$(cat "$build/.dml-gpu-cmake-args" 2>/dev/null)" = "$args_now" ]; then
  log "configure: $build already configured with these arguments"
else
  log "configuring $build"
  rm -f "$build/.dml-gpu-cmake-args"
  mkdir -p "$build"
  if ! timeout 300 cmake "${cmake_args[@]}" >"$work/logs/configure.log" 2>&1; then
    tail -30 "$work/logs/configure.log" >&2
    die "cmake configure failed (see $work/logs/configure.log)"
  fi
  grep -q "dml: NCCL communicator ON" "$work/logs/configure.log" \
    || die "CMake did not enable the NCCL communicator (see $work/logs/configure.log)"
  echo "$args_now" > "$build/.dml-gpu-cmake-args"
fi
t_configure=$((SECONDS - t0))
# Where every dependency was found (the bundle's copies, where the bundle is meant to provide them).
cache_value() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt" | head -1; }
not_bundled=()
for v in MPI_CXX_COMPILER MPIEXEC_EXECUTABLE MPI_mpi_LIBRARY HDF5_hdf5_LIBRARY_RELEASE HDF5_C_INCLUDE_DIR Boost_DIR \
         Boost_INCLUDE_DIR GTest_DIR OpenCV_DIR ZLIB_LIBRARY_RELEASE ZLIB_INCLUDE_DIR; do
  val=$(cache_value "$v")
  [ -z "$val" ] && val=$(cache_value "${v%_RELEASE}")
  case "$val" in "$bundle"/*) where="bundle: ${val#"$bundle"/}" ;; *) where="$val"; not_bundled+=("$v=$val") ;; esac
  log "  found $v: $where"
done
if [ ${#not_bundled[@]} -gt 0 ]; then
  log "  not from the bundle: ${not_bundled[*]}"
  [ "${DML_GPU_REQUIRE_BUNDLE:-0}" != 1 ] || die "DML_GPU_REQUIRE_BUNDLE=1 and some dependencies were not found in the bundle"
fi
log "  found Torch: $(cache_value TORCH_LIBRARY), NCCL: $(cache_value NCCL_LIBRARY)"

targets=(dist_train dml_bench_train dml_test_gpu dml_mpi_test_gpu)
t0=$SECONDS
log "building ${targets[*]} (-j$jobs)"
if ! timeout "$build_limit" cmake --build "$build" -j "$jobs" --target "${targets[@]}" >"$work/logs/build.log" 2>&1; then
  grep -E "error|Error" "$work/logs/build.log" | head -20 >&2 || true
  tail -15 "$work/logs/build.log" >&2
  die "build failed or ran past ${build_limit}s (see $work/logs/build.log)"
fi
t_build=$((SECONDS - t0))
nf=$(ldd "$build/dist_train" | grep 'not found' || true)
[ -z "$nf" ] || die "dist_train has unresolved libraries: $(echo "$nf" | tr -s ' \t\n' ' ')"
nccl_syms=$(nm -C "$build/dist_train" | grep -c NcclCommunicator || true)   # grep -c: no SIGPIPE under pipefail
[ "$nccl_syms" -gt 0 ] || die "dist_train has no NcclCommunicator (NCCL communicator not linked in)"
loaded() { ldd "$1" | awk -v n="$2" 'index($1, n) == 1 {print $3; exit}'; }
log "built in ${t_build}s (configure ${t_configure}s); dist_train loads libmpi $(loaded "$build/dist_train" libmpi.so), libhdf5 $(loaded "$build/dist_train" libhdf5), libnccl $(loaded "$build/dist_train" libnccl), libtorch_cuda $(loaded "$build/dist_train" libtorch_cuda)"
status_build="OK (configure ${t_configure}s, build ${t_build}s)"

# ---- 2. tests ------------------------------------------------------------------------------------------
t0=$SECONDS
log "ctest -L gpu"
set +e
(cd "$build" && timeout 900 ctest -L gpu -V --timeout 600) >"$work/logs/ctest.log" 2>&1
rc_ctest=$?
set -e
ctest_line=$(grep -E 'tests passed|tests failed' "$work/logs/ctest.log" | tail -1 || true)
n_skipped=$(sed -n '/The following tests did not run/,/^$/p' "$work/logs/ctest.log" | grep -c 'Skipped' || true)
n_gtest_skipped=$(grep -cE '\[  SKIPPED \].* \([0-9]+ ms\)' "$work/logs/ctest.log" || true)
if [ "$rc_ctest" -eq 0 ]; then
  status_tests="OK: ${ctest_line:-?}; $n_skipped skipped by ctest, $n_gtest_skipped gtest tests skipped in all ($((SECONDS - t0))s)"
else
  status_tests="FAILED (rc $rc_ctest): ${ctest_line:-?} (see $work/logs/ctest.log)"
  grep -E '\[  FAILED  \]|Failed|\*\*\*' "$work/logs/ctest.log" | head -20 >&2 || true
  rc_final=1
fi
log "  $status_tests"
# The suites' own measurements ("[gpu] ...") and why tests skipped (reason: number of tests).
grep -E '\[gpu\] ' "$work/logs/ctest.log" | sed 's/^[0-9]*: /    /' || true
grep -A1 ': Skipped$' "$work/logs/ctest.log" | grep -vE -- '^--$|: Skipped$' | sed 's/^[0-9]*: //' | sort | uniq -c \
  | awk '{n = $1; $1 = ""; print "    skipped:" $0 " (" n " tests)"}' || true

if [ "$ngpu" -ge 1 ] && [ "$ngpu" -ne 2 ]; then
  t0=$SECONDS
  log "MPI gpu suite on $ngpu ranks (one GPU each)"
  set +e
  timeout 300 mpirun -np "$ngpu" --oversubscribe --bind-to none "$build/tests/dml_mpi_test_gpu" --gtest_color=no \
    >"$work/logs/mpi_test_${ngpu}.log" 2>&1
  rc_mpi=$?
  set -e
  line=$(grep -E '\[  (PASSED  |SKIPPED |FAILED  )\] [0-9]+ test' "$work/logs/mpi_test_${ngpu}.log" | paste -sd' ' - || true)
  if [ "$rc_mpi" -eq 0 ]; then
    status_mpi_n="OK on $ngpu ranks: $line ($((SECONDS - t0))s)"
  else
    status_mpi_n="FAILED on $ngpu ranks (rc $rc_mpi): $line (see $work/logs/mpi_test_${ngpu}.log)"
    tail -20 "$work/logs/mpi_test_${ngpu}.log" >&2
    rc_final=1
  fi
  log "  $status_mpi_n"
elif [ "$ngpu" -eq 2 ]; then
  status_mpi_n="2 GPUs: ctest's mpi_gpu ran it on 2 ranks"
else
  status_mpi_n="skipped: no GPU"
fi

# ---- 3. benchmark ---------------------------------------------------------------------------------------
dml_b70="" dml_b256="" torch_b70="" torch_b256=""
if [ "$bench" -eq 1 ]; then
  status_bench="ran"
  data=$work/synthetic-256px
  if [ ! -f "$data/train-00000-of-00001.h5" ]; then
    log "benchmark data: synthetic 256 px shards (32 classes x 16 train, 8 x 4 test) with h5py -> $data"
    mkdir -p "$data"
    # Format: include/dml/data/SHARD_FORMAT.md. Each class a blurred random colour layout plus noise.
    if ! timeout 120 "$PY" - "$data" >"$work/logs/shards.log" 2>&1 <<'EOF'
import sys
import h5py
import numpy as np
out = sys.argv[1]
rng = np.random.default_rng(0)
def split(name, classes, per_class):
    n = classes * per_class
    images = np.empty((n, 256, 256, 3), np.uint8)
    labels = np.repeat(np.arange(classes, dtype=np.int64), per_class)
    for c in range(classes):
        base = rng.uniform(0, 255, (8, 8, 3)).astype(np.float32)
        up = np.kron(base, np.ones((32, 32, 1), np.float32))
        for i in range(per_class):
            img = up + rng.normal(0, 20, (256, 256, 3)).astype(np.float32)
            images[c * per_class + i] = np.clip(img, 0, 255).astype(np.uint8)
    with h5py.File("%s/%s-00000-of-00001.h5" % (out, name), "w") as f:
        f.create_dataset("images", data=images, chunks=(1, 256, 256, 3))
        f.create_dataset("labels", data=labels)
        f.create_dataset("ids", data=np.arange(n, dtype=np.int64))
        f.attrs["format_version"] = 1
        f.attrs["dataset"] = "synthetic_gpu_check"
        f.attrs["split"] = name
        f.attrs["num_classes"] = np.int64(classes)
        f.attrs["height"], f.attrs["width"], f.attrs["channels"] = 256, 256, 3
        f.attrs["class_names"] = ["c%d" % c for c in range(classes)]
        f.attrs["resize"] = 256
        f.attrs["bbox_crop"] = 0
split("train", 32, 16)
split("test", 8, 4)
EOF
    then
      log "  could not make the shards (h5py, numpy?): $(tail -1 "$work/logs/shards.log")"
      rm -rf "$data"
      status_bench="FAILED: no benchmark data (see $work/logs/shards.log)"
    fi
  fi

  common=(--bench-mode train --data-path "$data" --model resnet50_v1 --crop-size 224 --embed-dim 128
          --precision bf16 --channels-last --gpus 0 --workers 4 --prefetch 4 --threads 4
          --max-test-images 16 --recall-k 1 --no-progress
          --bench-steps "$steps" --bench-warmup 3 --bench-process-warmup 3)
  rate() { "$PY" -c 'import json, sys; print("%.1f" % json.load(open(sys.argv[1]))["images_per_sec"])' "$1" 2>/dev/null || true; }
  dml_run() {   # dml_run NAME BATCH K
    local name=$1 t0=$SECONDS
    if timeout 300 "$build/dml_bench_train" "${common[@]}" --batch-size "$2" --batch-k "$3" --bench-label "$name" \
        --bench-json "$work/json/$name.json" >"$work/logs/$name.log" 2>&1; then
      log "  $name: $(rate "$work/json/$name.json") images/s ($((SECONDS - t0))s)"
    else
      log "  $name: FAILED (see $work/logs/$name.log)"; tail -5 "$work/logs/$name.log" >&2
    fi
  }
  torch_run() {  # torch_run NAME BATCH K
    local name=$1 t0=$SECONDS
    if timeout 300 env PYTHONUNBUFFERED=1 "$PY" - "$data" "$2" "$3" "$steps" "$work/json/$name.json" \
        >"$work/logs/$name.log" 2>&1 <<'EOF'
# The PyTorch AMP trainer of dml's step on one GPU: dml's EmbeddingNet in PyTorch (launch/dml_models.py),
# launch/torch_trainer.py's initialisation, margin loss and MXNet-semantics Adam/SGD, distance-weighted
# sampling as torch_trainer.sample_triplets but on the GPU; autocast bf16 around the backbone only (as dml),
# channels-last model and input; class-balanced batches, flip and random crop done on the GPU from images
# resident there, every step's draws made up front (no loader, no host-to-device copy in the steps: nothing
# to wait for). cudnn.benchmark stays at its default (off),
# as in dml. Timed: every step after the warm-up, synchronised at both ends.
import json, math, os, sys, time
import numpy as np
import torch
sys.path.insert(0, "launch")
import dml_models  # noqa: E402
import torch_trainer as tt  # noqa: E402

data, batch, k, steps, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
warmup, crop, embed_dim = 5, 224, 128
dev = torch.device("cuda", 0)
torch.manual_seed(123)
images_cpu, labels_np, num_classes = tt.load_split(data, "train")
images = images_cpu.to(dev)                       # uint8 [N, H, W, C]
_, H, W, C = images.shape
rows_of_class = [np.flatnonzero(labels_np == c) for c in range(num_classes)]
rng = np.random.default_rng(123)
mean = torch.tensor(tt.IMAGENET_MEAN, device=dev).view(1, 3, 1, 1)
std = torch.tensor(tt.IMAGENET_STD, device=dev).view(1, 3, 1, 1)
ar = torch.arange(crop, device=dev)

net = dml_models.build_embedding_net("resnet50_v1", embed_dim, 3, False, crop)
tt.initialise_reference(net)
net = net.to(dev).to(memory_format=torch.channels_last)
net.train()
beta = torch.nn.Parameter(torch.full((num_classes,), 1.2, dtype=torch.float32, device=dev))
rescale = 1.0 / batch
params = [p for p in net.parameters() if p.requires_grad]
opt = tt.MxnetAdam(params, 1e-4, 1e-4, rescale)
beta_opt = tt.MxnetSgd([beta], 0.1, 0.9, rescale)
gen = torch.Generator(device=dev).manual_seed(123)

# Every step's batch (rows, labels, crop offsets, flips) is drawn up front and sent to the GPU once, so
# the steps need no host-to-device copy (a pageable copy could make the host wait for the stream).
total = warmup + steps
plan_rows, plan_labels = np.empty((total, batch), np.int64), np.empty((total, batch), np.int64)
for s in range(total):
    classes = rng.choice(num_classes, size=batch // k, replace=False)
    plan_rows[s] = np.concatenate([rng.choice(rows_of_class[c], size=k, replace=len(rows_of_class[c]) < k)
                                   for c in classes])
    plan_labels[s] = np.repeat(classes, k)
plan_rows, plan_labels = torch.from_numpy(plan_rows).to(dev), torch.from_numpy(plan_labels).to(dev)
plan_y0 = torch.from_numpy(rng.integers(0, H - crop + 1, size=(total, batch))).to(dev)
plan_x0 = torch.from_numpy(rng.integers(0, W - crop + 1, size=(total, batch))).to(dev)
plan_flip = torch.from_numpy(rng.random((total, batch)) < 0.5).to(dev)

def next_batch(s):
    idx = plan_rows[s]
    iy = (plan_y0[s].view(batch, 1) + ar).view(batch, crop, 1)
    ix = (plan_x0[s].view(batch, 1) + ar).view(batch, 1, crop)
    ix = torch.where(plan_flip[s].view(batch, 1, 1), (W - 1) - ix, ix)  # flip of the whole image, then the crop
    x = images[idx.view(batch, 1, 1), iy, ix]                         # [B, crop, crop, C] uint8
    x = x.permute(0, 3, 1, 2).to(torch.float32).div_(255.0).sub_(mean).div_(std)
    return x.contiguous(memory_format=torch.channels_last), plan_labels[s]

def sample_triplets(x, labels, cutoff=0.5, nonzero_loss_cutoff=1.4):
    # torch_trainer.sample_triplets with every tensor on x's device.
    with torch.no_grad():
        x = x.detach().to(torch.float32)
        n, dim = x.shape
        sq = x.square().sum(1)
        d2 = (sq.unsqueeze(1) + sq.unsqueeze(0) - 2.0 * torch.mm(x, x.t())).clamp_min(0.0)
        distance = d2.sqrt().clamp_min(cutoff)
        half_d = distance.clamp_max(tt.MAX_DISTANCE) * 0.5
        log_w = (2.0 - dim) * torch.log(half_d * 2.0) - ((dim - 3.0) / 2.0) * (torch.log1p(-half_d) + torch.log1p(half_d))
        other = labels.unsqueeze(0).ne(labels.unsqueeze(1))
        admissible = other.logical_and(distance.lt(nonzero_loss_cutoff))
        masked = log_w.masked_fill(admissible.logical_not(), float("-inf"))
        has_adm = admissible.any(1, keepdim=True)
        row_max = torch.where(has_adm, masked.max(1, keepdim=True)[0], torch.zeros_like(log_w[:, :1]))
        w = (masked - row_max).exp()
        w = w / w.sum(1, keepdim=True).clamp_min(torch.finfo(torch.float32).tiny)
        rows = torch.arange(n, device=x.device)
        not_self = rows.unsqueeze(0).ne(rows.unsqueeze(1))
        fallback = torch.where(other.any(1, keepdim=True), other, not_self).to(torch.float32)
        probs = torch.where(has_adm, w, fallback / fallback.sum(1, keepdim=True).clamp_min(1.0))
        draws = k - 1
        offsets = torch.arange(draws, device=x.device).unsqueeze(0)
        in_block = torch.remainder(rows, k).unsqueeze(1)
        positive = (rows.unsqueeze(1) - in_block) + offsets + offsets.ge(in_block).to(torch.int64)
        cdf = probs.cumsum(1)
        target = torch.rand(n, draws, generator=gen, device=x.device) * cdf[:, n - 1:n]
        cols = rows.unsqueeze(0)
        last_pos = torch.where(probs.gt(0.0), cols, torch.zeros_like(cols)).max(1, keepdim=True)[0]
        negative = torch.minimum(torch.searchsorted(cdf, target, right=True), last_pos)
        anchor = rows.unsqueeze(1).expand(n, draws).reshape(-1)
        return anchor, positive.reshape(-1), negative.reshape(-1)

losses = []
def step(s):
    tt.zero_grad(params + [beta])
    x, labels = next_batch(s)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        fmap = net.backbone(x)
    z = net.head(fmap.to(torch.float32).mean(dim=[2, 3]))
    z = z / torch.sqrt(z.pow(2).sum(dim=1, keepdim=True) + 1e-10)
    loss, _ = tt.margin_loss(z, labels, beta, sample_triplets(z, labels), 0.2, 0.0)
    loss.backward()
    opt.step()
    beta_opt.step()
    losses.append(loss.detach())

for s in range(warmup):
    step(s)
torch.cuda.synchronize()
t0 = time.perf_counter()
for s in range(warmup, total):
    step(s)
torch.cuda.synchronize()
elapsed = time.perf_counter() - t0
ips = steps * batch / elapsed
vals = [float(v) for v in losses]
assert all(math.isfinite(v) for v in vals), vals
print("torch AMP trainer: resnet50_v1 bf16+cl batch %d: %.1f img/s, %.2f ms/step over %d steps; loss %.4f -> %.4f"
      % (batch, ips, 1000 * elapsed / steps, steps, vals[0], vals[-1]))
with open(out, "w") as f:
    json.dump({"images_per_sec": ips, "ms_per_step": 1000 * elapsed / steps, "steps": steps, "warmup": warmup,
               "batch_size": batch, "batch_k": k, "torch_version": torch.__version__,
               "gpu": torch.cuda.get_device_name(0), "first_loss": vals[0], "last_loss": vals[-1]}, f, indent=1)
EOF
    then
      log "  $name: $(rate "$work/json/$name.json") images/s ($((SECONDS - t0))s)"
    else
      log "  $name: FAILED (see $work/logs/$name.log)"; tail -5 "$work/logs/$name.log" >&2
    fi
  }
  if [ -f "$data/train-00000-of-00001.h5" ]; then
    log "benchmark: resnet50_v1 224 px bf16 + channels-last, 1 GPU, $steps timed steps each"
    dml_run dml_b70 70 5
    torch_run torch_b70 70 5
    dml_run dml_b256 256 8
    # The torch trainer at 256 only with DML_BENCH_TORCH_256=1: no target needs it, and the GPU time is short.
    [ "${DML_BENCH_TORCH_256:-0}" != 1 ] || torch_run torch_b256 256 8
    dml_b70=$(rate "$work/json/dml_b70.json") torch_b70=$(rate "$work/json/torch_b70.json")
    dml_b256=$(rate "$work/json/dml_b256.json") torch_b256=$(rate "$work/json/torch_b256.json")
    n_ok=0 n_runs=3
    for x in "$dml_b70" "$torch_b70" "$dml_b256"; do [ -z "$x" ] || n_ok=$((n_ok + 1)); done
    if [ "${DML_BENCH_TORCH_256:-0}" = 1 ]; then n_runs=4; [ -z "$torch_b256" ] || n_ok=$((n_ok + 1)); fi
    status_bench="$n_ok of $n_runs runs gave a result ($work/logs/{dml,torch}_b*.log)"
  fi
elif [ "$ngpu" -eq 0 ]; then
  status_bench="skipped: no GPU"
else
  status_bench="skipped (--no-bench / --build-only)"
fi

# ---- summary ---------------------------------------------------------------------------------------------
verdict_ratio="-" verdict_abs="-" ratio70="-" ratio256="-"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.3f", a / b; else print "-" }'; }
if [ "$bench" -eq 1 ]; then
  ratio70=$(ratio "$dml_b70" "$torch_b70")
  ratio256=$(ratio "$dml_b256" "$torch_b256")
  verdict_ratio=$(awk -v r="$ratio70" 'BEGIN { if (r == "-") print "NOT MEASURED"; else if (r >= 1.1) print "MET"; else print "MISSED" }')
  verdict_abs=$(awk -v x="$dml_b256" 'BEGIN { if (x == "") print "NOT MEASURED"; else if (x >= 3000) print "MET"; else print "MISSED" }')
  if [ "$verdict_ratio" != MET ] || [ "$verdict_abs" != MET ]; then
    [ "$rc_final" -ne 0 ] || rc_final=2
  fi
fi
[ "$ngpu" -ge 1 ] || [ "$build_only" -eq 1 ] || [ "$rc_final" -ne 0 ] || rc_final=3
{
  echo "================================================================================================"
  echo "dml GPU check  $(date -u +%Y-%m-%dT%H:%M:%SZ)  $(hostname)  ($((SECONDS - t_start)) s)"
  echo "GPUs: $ngpu ($gpu_names)${driver:+, driver $driver}; torch $torch_version; CUDA $nvcc_version; NCCL $nccl_version"
  echo "================================================================================================"
  echo "build:            $status_build"
  echo "tests (-L gpu):   $status_tests"
  echo "mpi suite, N=GPU: $status_mpi_n"
  echo "benchmark:        $status_bench"
  if [ "$bench" -eq 1 ]; then
    echo
    echo "resnet50_v1, 224 px, bf16 + channels-last, 1 GPU, images/s (dml: dml_bench_train, loader included;"
    echo "torch: PyTorch AMP trainer of the same step, images resident on the GPU)"
    printf '  %-22s %10s %10s %10s   %s\n' "batch per GPU" "dml" "torch" "dml/torch" "target"
    printf '  %-22s %10s %10s %10s   %s\n' "70 (14 classes x 5)" "${dml_b70:--}" "${torch_b70:--}" "$ratio70" \
      "dml/torch >= 1.10: $verdict_ratio"
    printf '  %-22s %10s %10s %10s   %s\n' "256 (32 classes x 8)" "${dml_b256:--}" "${torch_b256:--}" "$ratio256" \
      "dml >= 3000 images/s: $verdict_abs"
  fi
  echo
  echo "logs: $work/logs, results: $work/json; exit status $rc_final"
} | tee "$summary"

if [ -n "$out_copy" ]; then
  mkdir -p "$out_copy"
  cp "$summary" "$out_copy/"
  tar -czf "$out_copy/gpu-check-logs.tar.gz" -C "$work" logs json 2>/dev/null || true
fi
exit "$rc_final"
