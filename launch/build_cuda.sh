#!/usr/bin/env bash
# Compile-and-link check of dml against a CUDA LibTorch, so that the NCCL communicator
# (src/dist/backends/nccl_communicator.cpp) is built. Needs no GPU: nothing is run on a device.
#
#   bash launch/build_cuda.sh               download (cached), unpack, configure, build, check
#   bash launch/build_cuda.sh --fetch-only  only download and unpack (no compiler is run)
#
# Settings (environment):
#   DML_CUDA_CACHE      where the wheels are kept between runs
#                       (default ${XDG_CACHE_HOME:-$HOME/.cache}/dml/cuda-wheels)
#   DML_CUDA_BUILD_DIR  the CMake build (dist_train, dml_prepare) with the unpacked libraries in its
#                       unpacked/ and nvlibs/ (default build-cuda, in the repository: the folder
#                       cluster/slurm_train.sbatch runs dist_train from)
#   DML_CUDA_JOBS       parallel compile jobs (default 2)
#   DML_CUDA_HOME       CUDA toolkit with nvcc and cuDNN (default /usr/local/cuda)
#
# Where LibTorch comes from: the PyPI `torch` wheel (a CUDA 13 build) holds the C++ headers, the CMake
# config and the shared libraries. libtorch_cuda.so also needs cuFile, cuSPARSELt, NVSHMEM and an NCCL
# at least as new as the one torch was built with; the toolkit here lacks the first three and its
# NCCL (2.28.9) is older (linking fails on ncclCommGrow, ncclCommSuspend, ...). Those four come from
# the nvidia-* wheels that torch's METADATA pins (Requires-Dist). Versions are pinned to the set
# checked in cluster/BUILD_CUDA.md.
#
# Idempotent: a wheel already in the cache (and completed, marked by a .ok file next to it) is not
# asked for again, so a warm run needs no network; unpacking is skipped when the unpacked copy came
# from the same wheels; CMake is configured again only if its arguments changed; ninja rebuilds only
# what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
t_start=$SECONDS

log() { echo "[build_cuda] $*"; }
die() { echo "[build_cuda] error: $*" >&2; exit 1; }

fetch_only=0
case "${1:-}" in
  "") ;;
  --fetch-only) fetch_only=1 ;;
  *) die "unknown argument '$1' (usage: launch/build_cuda.sh [--fetch-only])" ;;
esac

cache=${DML_CUDA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dml/cuda-wheels}
work=${DML_CUDA_BUILD_DIR:-build-cuda}
case "$cache" in /*) ;; *) cache=$repo/$cache ;; esac
case "$work" in /*) ;; *) work=$repo/$work ;; esac
jobs=${DML_CUDA_JOBS:-2}
cuda=${DML_CUDA_HOME:-/usr/local/cuda}
build=$work              # the CMake build directory (dist_train, dml_prepare end up here)
tdir=$work/unpacked      # torch/{include,share,lib} from the torch wheel
ndir=$work/nvlibs        # nvidia/{cufile,cusparselt,nvshmem,nccl}/lib (+ nccl/include)

# ---- tools: Debian's pip and unzip --------------------------------------------------------------
# /usr/bin/python3 -m pip, not the python3 first on PATH (which may be another interpreter). pip only
# downloads here, for a target platform given explicitly, so the interpreter's own version does not matter.
apt_install() {
  local sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "not root and no sudo; install as root: apt-get install $*"
    sudo_cmd=(sudo)
  fi
  log "installing Debian packages: $*"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "$@"
}
py=/usr/bin/python3
need=()
"$py" -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
command -v unzip >/dev/null || need+=(unzip)
[ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"
"$py" -m pip --version >/dev/null 2>&1 || die "$py -m pip does not work even after installing python3-pip"

# ---- 1. download the wheels into the cache ------------------------------------------------------
# Each entry: pip requirement | file name pattern of the wheel it gives.
wheels=(
  "torch==2.15.0|torch-2.15.0-*.whl"
  "nvidia-cufile==1.17.1.22.*|nvidia_cufile-1.17.1.22*.whl"          # libcufile.so.0
  "nvidia-cusparselt-cu13==0.8.1|nvidia_cusparselt_cu13-0.8.1-*.whl" # libcusparseLt.so.0
  "nvidia-nvshmem-cu13==3.7.2|nvidia_nvshmem_cu13-3.7.2-*.whl"       # libnvshmem_host.so.3
  "nvidia-nccl-cu13==2.30.7|nvidia_nccl_cu13-2.30.7-*.whl"           # libnccl.so.2 + nccl.h
)
# The wheel's platform: Linux x86_64, glibc >= 2.28, CPython 3.11 (only the C++ parts are used).
pip_target=(--no-deps --only-binary=:all: --python-version 3.11 --implementation cp
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_18_x86_64
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)

cached_wheel() {   # prints the completed cached wheel matching pattern $1, if any
  local f
  for f in "$cache"/$1; do
    [ -f "$f" ] && [ -f "$f.ok" ] && { echo "$f"; return 0; }
  done
  return 1
}

mkdir -p "$cache"
t0=$SECONDS
missing=()
for w in "${wheels[@]}"; do
  cached_wheel "${w#*|}" >/dev/null || missing+=("${w%%|*}")
done
if [ ${#missing[@]} -eq 0 ]; then
  log "wheels: all ${#wheels[@]} already in $cache"
else
  log "downloading ${missing[*]} into $cache"
  # pip keeps (after checking its hash) a file that is already in the folder and fetches the rest;
  # --no-cache-dir: no second copy of the wheels in pip's own HTTP cache.
  "$py" -m pip download "${pip_target[@]}" --no-cache-dir --progress-bar off -d "$cache" "${missing[@]}" \
    || die "pip download failed (PyPI reachable? disk full?): ${missing[*]}"
  for w in "${wheels[@]}"; do
    for f in "$cache"/${w#*|}; do [ -f "$f" ] && touch "$f.ok"; done
  done
fi
whl=()
for w in "${wheels[@]}"; do
  f=$(cached_wheel "${w#*|}") || die "no wheel matching ${w#*|} in $cache after pip download"
  whl+=("$f")
done
t_download=$((SECONDS - t0))

# ---- 2. unpack only what the build needs --------------------------------------------------------
# A stamp file records which wheels an unpacked folder came from; unpacking goes into a temporary
# folder that is renamed at the end, so an interrupted run never leaves a half-unpacked copy.
unpack() {   # unpack DEST FUNCTION WHEEL...: runs FUNCTION WHEEL... inside a fresh DEST
  local dest=$1 fn=$2; shift 2
  local stamp; stamp=$(for f in "$@"; do basename "$f"; done)
  if [ -f "$dest/.dml-unpacked-from" ] && [ "$(cat "$dest/.dml-unpacked-from")" = "$stamp" ]; then
    log "unpack: $dest up to date"; return 0
  fi
  log "unpacking into $dest"
  rm -rf "$dest.tmp" "$dest"
  mkdir -p "$dest.tmp"
  (cd "$dest.tmp" && "$fn" "$@") || die "unzip failed for $dest (corrupt wheel? delete it from $cache)"
  echo "$stamp" > "$dest.tmp/.dml-unpacked-from"
  mv "$dest.tmp" "$dest"
}
unzip_torch() {   # headers, CMake config, shared libraries (not the Python modules)
  unzip -q -o "$1" 'torch/include/*' 'torch/share/*' 'torch/lib/*' 'torch/version.py'
}
unzip_nvlibs() {  # cufile, cusparselt, nvshmem: shared libraries; nccl: also its header
  local w
  for w in "$1" "$2" "$3"; do unzip -q -o "$w" 'nvidia/*/lib/*.so*' || return 1; done
  unzip -q -o "$4" 'nvidia/nccl/*'
}
mkdir -p "$work"
t0=$SECONDS
unpack "$tdir" unzip_torch "${whl[0]}"
unpack "$ndir" unzip_nvlibs "${whl[@]:1}"
# torch's own RPATH is $ORIGIN/../../nvidia/<pkg>/lib, i.e. $tdir/nvidia: with this link the
# executables find the wheels' NCCL, cuFile, ... without LD_LIBRARY_PATH.
ln -sfn ../nvlibs/nvidia "$tdir/nvidia"
t_unpack=$((SECONDS - t0))
log "download ${t_download}s, unpack ${t_unpack}s"
if [ "$fetch_only" -eq 1 ]; then
  log "--fetch-only: done in $((SECONDS - t_start))s"
  exit 0
fi

# ---- 3. configure --------------------------------------------------------------------------------
[ -x "$cuda/bin/nvcc" ] || die "no CUDA toolkit at $cuda (nvcc missing); set DML_CUDA_HOME"
command -v cmake >/dev/null || die "cmake missing; run launch/setup_debian.sh"
command -v ninja >/dev/null || die "ninja missing; run launch/setup_debian.sh"
T=$tdir/torch N=$ndir/nvidia
# TORCH_LIBRARY and c10_LIBRARY are given because TorchConfig's find_library searches the system paths
# first and would pick Debian's CPU libtorch. The NCCL paths select the wheel's NCCL (it ships only
# libnccl.so.2, so the full name is given). -rpath-link lets ld resolve libtorch_cuda's dependencies
# (the CUDA runtime libraries themselves come from the toolkit).
cmake_args=(-S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDML_BUILD_TESTS=OFF
  "-DCMAKE_PREFIX_PATH=$T/share/cmake" "-DTORCH_LIBRARY=$T/lib/libtorch.so" "-Dc10_LIBRARY=$T/lib/libc10.so"
  "-DCUDAToolkit_ROOT=$cuda" "-DCMAKE_CUDA_COMPILER=$cuda/bin/nvcc"
  "-DNCCL_INCLUDE_DIR=$N/nccl/include" "-DNCCL_LIBRARY=$N/nccl/lib/libnccl.so.2"
  "-DCMAKE_EXE_LINKER_FLAGS=-Wl,-rpath-link,$N/nccl/lib:$N/cusparselt/lib:$N/nvshmem/lib:$cuda/lib64")
t0=$SECONDS
args_now=$(printf '%s\n' "${cmake_args[@]}")
if [ -f "$build/CMakeCache.txt" ] && [ -f "$build/.dml-cmake-args" ] \
   && [ "$(cat "$build/.dml-cmake-args")" = "$args_now" ]; then
  log "configure: $build already configured with these arguments"
else
  log "configuring $build"
  rm -f "$build/.dml-cmake-args"
  cmake "${cmake_args[@]}" 2>&1 | tee "$build/dml-configure.log" \
    || die "cmake configure failed (see $build/dml-configure.log)"
  grep -q "dml: NCCL communicator ON" "$build/dml-configure.log" \
    || die "CMake did not enable the NCCL communicator (no CUDA LibTorch or NCCL found; see $build/dml-configure.log)"
  echo "$args_now" > "$build/.dml-cmake-args"
fi
t_configure=$((SECONDS - t0))

# ---- 4. build ------------------------------------------------------------------------------------
t0=$SECONDS
log "building dist_train dml_prepare (-j$jobs, nice)"
nice -n 19 ninja -C "$build" -j "$jobs" dist_train dml_prepare || die "ninja build failed (compiler errors above)"
t_build=$((SECONDS - t0))

# ---- 5. check ------------------------------------------------------------------------------------
dt=$build/dist_train dp=$build/dml_prepare
help=$("$dt" --help 2>&1) || die "dist_train --help exited non-zero: $(echo "$help" | tail -n1)"
echo "$help" | grep -A3 -- '--backend' | grep -qw nccl || die "dist_train --help does not list nccl among the backends"
syms=$(nm -C "$dt" | grep -c NcclCommunicator || true)
[ "$syms" -gt 0 ] || die "dist_train has no NcclCommunicator symbols (NCCL communicator not linked in)"
for exe in "$dt" "$dp"; do
  nf=$(ldd "$exe" | grep 'not found' || true)
  [ -z "$nf" ] || die "ldd $(basename "$exe"): unresolved libraries: $(echo "$nf" | tr -s ' \t\n' ' ')"
done
nccl_at=$(ldd "$dt" | awk '$1 == "libnccl.so.2" {print $3}')
case "$nccl_at" in "$work"/*) ;; *) die "dist_train would load libnccl.so.2 from '$nccl_at', not the wheel's NCCL under $work" ;; esac

# ---- summary -------------------------------------------------------------------------------------
size() { du -sh "$1" 2>/dev/null | cut -f1; }
log "OK: dist_train $(size "$dt"), dml_prepare $(size "$dp"), $syms NcclCommunicator symbols, libnccl from ${nccl_at#"$work"/}"
log "disk: wheel cache $(size "$cache") ($cache), build dir $(size "$work") ($work)"
log "time: download ${t_download}s, unpack ${t_unpack}s, configure ${t_configure}s, build ${t_build}s, total $((SECONDS - t_start))s"
