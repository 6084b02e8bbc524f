#!/usr/bin/env bash
# Prepares build-gpu-bundle/: the build and run dependencies of dml that a GPU machine without Debian
# packages (and without network) lacks, copied from this Debian machine, for launch/gpu_check.sh.
#
#   bash launch/prepare_gpu_bundle.sh [--verify | --verify-only]
#   (on the shared machine: dml-locked bash launch/prepare_gpu_bundle.sh ...)
#
#   --verify       then check that the bundle is enough: run launch/gpu_check.sh --build-only (configure,
#                  build, ctest -L gpu; every GPU test skips here) against the CUDA LibTorch of
#                  launch/build_cuda.sh (build-cuda/unpacked/torch, NCCL from build-cuda/nvlibs) in a private
#                  mount namespace where Debian's copies of what the bundle carries are hidden (headers,
#                  CMake package files, libraries and programs replaced by empty ones), with
#                  DML_GPU_REQUIRE_BUNDLE=1; build folder build-gpu-verify, DML_GPU_VERIFY_JOBS jobs (default 2)
#   --verify-only  the same on the bundle already there
#
# The GPU machine is assumed to have: glibc >= the version printed at the end, libstdc++/libgcc_s, a C++
# compiler, CMake, ninja, CUDA (nvcc), and a PyPI torch (its LibTorch) with the nvidia-* wheels (NCCL).
# Everything else that dml's CMakeLists.txt asks for comes from the bundle:
#
#   Open MPI 4.1 (libopenmpi-dev, openmpi-bin): libraries, headers, the mpicxx wrapper (FindMPI asks it),
#       mpirun/mpiexec/orterun, orted, ompi_info, the MCA components that need nothing outside the bundle
#       (UCX, OFI/libfabric, verbs, PSM components are left out: a one-node run needs none of them),
#       help files; relocated with OPAL_PREFIX (and PMIx with PMIX_PREFIX), see env.sh.
#   HDF5 1.10 (libhdf5-dev, serial): libhdf5_serial and its headers.
#   Boost.Program_options 1.74: the library, Boost's CMake config files and only the Boost headers that
#       <boost/program_options.hpp> includes (found by g++ -M).
#   GoogleTest 1.12 (libgtest-dev): static libraries, headers, CMake config.
#   zlib (zlib1g-dev): header and library.
#   OpenCV: HEADERS ONLY (core, imgproc, imgcodecs, by g++ -M) and a stub OpenCVConfig.cmake whose
#       opencv_* targets carry no library: OpenCV's three libraries with their dependencies are ~217 MB
#       here (libopencv_imgcodecs pulls GDAL, OpenEXR, ...), far over what can travel. dml links OpenCV
#       only into image decoding (src/data/image_decode.cpp), which only dml_prepare uses; dist_train,
#       dml_bench_train and the test suites built by gpu_check.sh do not reference it. dml_prepare itself
#       cannot be linked against the bundle (undefined cv:: symbols); gpu_check.sh makes its shards with h5py.
#   Every shared library's dependencies (ldd), except glibc, libstdc++ and libgcc_s.
#
# Layout: build-gpu-bundle/usr mirrors Debian's /usr (usr/lib/x86_64-linux-gnu, usr/include, usr/bin,
# usr/share/openmpi), so the CMake config files and Open MPI's relocation work unchanged. Every copied ELF
# file gets an $ORIGIN-relative RUNPATH (patchelf), so no LD_LIBRARY_PATH is needed: a program linked against
# the bundle finds the bundle's libraries, and the system's libraries stay first for everything else.
#   dml-bundle.cmake   initial-cache file for cmake -C: where MPI, HDF5, Boost, GTest, OpenCV, zlib are
#   env.sh             sourced by gpu_check.sh: OPAL_PREFIX, PMIX_PREFIX, PATH, Open MPI settings
#   MANIFEST.txt       Debian packages the files came from, sizes per part and per library
#
# Environment: DML_GPU_BUNDLE_DIR (default build-gpu-bundle, in the repository; ignored by git as /build*/).
# Idempotent: builds into <dir>.tmp and replaces <dir> at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
t_start=$SECONDS

log() { echo "[gpu_bundle] $*"; }
die() { echo "[gpu_bundle] error: $*" >&2; exit 1; }

make_bundle=1 verify=0
case "${1:-}" in
  "") ;;
  --verify) verify=1 ;;
  --verify-only) verify=1 make_bundle=0 ;;
  -h|--help) awk 'NR > 1 && /^set -euo/ {exit} NR > 1' "$0"; exit 0 ;;
  *) die "unknown argument '$1' (usage: launch/prepare_gpu_bundle.sh [--verify | --verify-only])" ;;
esac

out=${DML_GPU_BUNDLE_DIR:-build-gpu-bundle}
case "$out" in /*) ;; *) out=$repo/$out ;; esac

# ---- --verify: gpu_check.sh --build-only with Debian's copies hidden --------------------------------
# What the GPU machine does not have is hidden: every Debian file of the parts the bundle carries
# (headers, CMake package files, libraries, programs) and Debian's CPU LibTorch. Libraries that the
# toolchain itself loads (zlib, libcurl, OpenSSL, zstd, ... for cmake, gcc, ld) stay visible; the
# configure report (DML_GPU_REQUIRE_BUNDLE=1) and ldd show that the build takes the bundle's copies.
verify_bundle() {
  local torch=${DML_TORCH_DIR:-$repo/build-cuda/unpacked/torch} jobs=${DML_GPU_VERIFY_JOBS:-2} hide rc=0
  [ -f "$out/env.sh" ] || die "no bundle at $out to verify"
  [ -f "$torch/lib/libtorch_cuda.so" ] || die "no CUDA LibTorch at $torch: run launch/build_cuda.sh first (or set DML_TORCH_DIR)"
  command -v unshare >/dev/null || die "unshare (util-linux) is missing"
  unshare -m true 2>/dev/null || die "cannot make a mount namespace here (needs root or CAP_SYS_ADMIN)"
  hide=$(mktemp -d)
  mkdir -p "$hide/empty_dir"
  : > "$hide/empty_file"
  # shellcheck disable=SC2016  # $0 is for the hidden program
  printf '#!/bin/sh\necho "$0: hidden by prepare_gpu_bundle.sh --verify" >&2\nexit 127\n' > "$hide/hidden_program"
  chmod +x "$hide/hidden_program"
  cat > "$hide/enter.sh" <<'EOF'
# Runs inside `unshare -m`: the mounts below are private to it and end with it.
set -eu
SYS=/usr/lib/x86_64-linux-gnu
for d in /usr/include/boost /usr/include/opencv4 /usr/include/hdf5 /usr/include/gtest /usr/include/gmock \
         /usr/include/torch /usr/include/ATen /usr/include/c10 /usr/include/caffe2 \
         $SYS/openmpi $SYS/pmix2 $SYS/hdf5 $SYS/cmake /usr/share/openmpi /etc/openmpi; do
  if [ -d "$d" ]; then mount --bind "$HIDE/empty_dir" "$d"; fi
done
find $SYS -maxdepth 1 -type f \( -name 'libmpi*' -o -name 'libopen-rte*' -o -name 'libopen-pal*' \
    -o -name 'libmca_common*' -o -name 'liboshmem*' -o -name 'libompitrace*' -o -name 'libhdf5*' \
    -o -name 'libboost_program_options*' -o -name 'libpmix*' -o -name 'libhwloc*' -o -name 'libevent*' \
    -o -name 'libsz.so*' -o -name 'libaec.so*' -o -name 'libmunge*' -o -name 'libgtest*' -o -name 'libgmock*' \
    -o -name 'libopencv*' -o -name 'libtorch*' -o -name 'libc10*' -o -name 'libcaffe2*' \) > "$HIDE/libs.txt"
for f in /usr/include/zlib.h /usr/include/zconf.h $(cat "$HIDE/libs.txt"); do
  mount --bind "$HIDE/empty_file" "$f"
done
for p in mpirun mpiexec orterun orted ompi_info opal_wrapper mpicxx mpic++ mpicc mpiCC h5cc h5c++; do
  f=$(readlink -f "/usr/bin/$p" 2>/dev/null || true)
  if [ -n "$f" ] && [ -f "$f" ]; then mount --bind "$HIDE/hidden_program" "$f"; fi
done
echo "[gpu_bundle] verify: hid $(wc -l < "$HIDE/libs.txt") Debian libraries and the headers, CMake files and programs;" \
     "now libmpi.so.40 has $(stat -L -c %s $SYS/libmpi.so.40) bytes, /usr/include/boost $(ls /usr/include/boost | wc -l) entries," \
     "and /usr/bin/mpirun says: $(/usr/bin/mpirun 2>&1 | head -1)"
exec env DML_TORCH_DIR="$TORCH" DML_GPU_REQUIRE_BUNDLE=1 DML_GPU_BUNDLE="$BUNDLE" DML_GPU_BUILD_DIR="$BUILD" \
  DML_GPU_BUILD_TIMEOUT="${DML_GPU_BUILD_TIMEOUT:-7200}" \
  nice -n 10 bash "$REPO/launch/gpu_check.sh" --build-only --jobs "$JOBS"
EOF
  log "verify: gpu_check.sh --build-only in a mount namespace without Debian's copies (torch $torch, $jobs jobs)"
  HIDE=$hide TORCH=$torch BUNDLE=$out BUILD=${DML_GPU_BUILD_DIR:-$repo/build-gpu-verify} REPO=$repo JOBS=$jobs \
    unshare -m --propagation private bash "$hide/enter.sh" || rc=$?
  rm -rf "$hide"
  [ "$rc" -eq 0 ] || die "verify: gpu_check.sh --build-only failed (exit $rc) with only the bundle"
  log "verify: OK: configured, built and ran ctest -L gpu with only the bundle ($((SECONDS - t_start)) s)"
}
if [ "$make_bundle" -eq 0 ]; then
  verify_bundle
  exit 0
fi
tmp=$out.tmp
arch=x86_64-linux-gnu
SYS=/usr/lib/$arch

# ---- what must be here ------------------------------------------------------------------------
need_files=(
  "$SYS/libmpi.so.40:libopenmpi3" "$SYS/openmpi/include/mpi.h:libopenmpi-dev" "/usr/bin/orterun:openmpi-bin"
  "/usr/bin/orted:openmpi-bin" "/usr/bin/opal_wrapper:libopenmpi-dev" "/usr/share/openmpi/mpicxx-wrapper-data.txt:libopenmpi-dev"
  "$SYS/libhdf5_serial.so.103:libhdf5-103-1" "/usr/include/hdf5/serial/hdf5.h:libhdf5-dev"
  "$SYS/libboost_program_options.so.1.74.0:libboost-program-options1.74.0"
  "/usr/include/boost/program_options.hpp:libboost-program-options-dev"
  "$SYS/libgtest.a:libgtest-dev" "$SYS/cmake/GTest/GTestConfig.cmake:libgtest-dev"
  "/usr/include/opencv4/opencv2/imgcodecs.hpp:libopencv-dev" "/usr/include/zlib.h:zlib1g-dev"
)
missing=()
for nf in "${need_files[@]}"; do [ -e "${nf%%:*}" ] || missing+=("${nf##*:}"); done
[ ${#missing[@]} -eq 0 ] || die "missing Debian packages: ${missing[*]} (run launch/setup_debian.sh)"
if ! command -v patchelf >/dev/null; then
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "patchelf is missing; install it as root: apt-get install patchelf"
    sudo_cmd=(sudo)
  fi
  log "installing Debian package patchelf (sets the bundle's RUNPATHs)"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends patchelf
fi
for tool in g++ ldd readelf patchelf dpkg-query; do command -v "$tool" >/dev/null || die "$tool is missing"; done

rm -rf "$tmp"
U=$tmp/usr
L=$U/lib/$arch
mkdir -p "$U/bin" "$U/include" "$L/cmake" "$L/openmpi/lib/openmpi3" "$L/pmix2/lib/pmix" "$U/share"
sources=()   # every system file copied, for the package list

# glibc, libstdc++, libgcc_s (and the vDSO): the GPU machine has its own; never copied.
excluded='^(linux-vdso\.so|ld-linux-x86-64\.so|libc\.so|libm\.so|libmvec\.so|libdl\.so|libpthread\.so|librt\.so|libutil\.so|libresolv\.so|libanl\.so|libnsl\.so|libcrypt\.so|libstdc\+\+\.so|libgcc_s\.so)'

# add_lib PATH: the real file into $L under its own name, plus a link for each name on the way to it
# (PATH's own name, the SONAME).
add_lib() {
  local path=$1 real base soname name
  real=$(readlink -f "$path")
  base=$(basename "$real")
  if [ ! -e "$L/$base" ]; then
    cp -L "$real" "$L/$base"
    chmod u+w "$L/$base"
    sources+=("$real")
  fi
  soname=$(readelf -d "$real" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
  for name in "$(basename "$path")" $soname; do
    [ -n "$name" ] && [ "$name" != "$base" ] && [ ! -e "$L/$name" ] && ln -s "$base" "$L/$name"
  done
  return 0
}
# deps FILE...: "soname path" of every library the files load (ldd), less the excluded ones.
deps() {
  local f
  for f in "$@"; do ldd "$f" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}'; done | sort -u \
    | grep -Ev "$excluded" || true
}
# not_found FILE...: libraries ldd cannot resolve here at all.
not_found() { local f; for f in "$@"; do ldd "$f" 2>/dev/null | awk '/not found/ {print $1}'; done | sort -u; }

# ---- 1. Open MPI and PMIx ---------------------------------------------------------------------
log "Open MPI $(ompi_info --version 2>/dev/null | sed -n 's/^Open MPI v//p' | head -1): libraries, runtime, components"
ompi_core=("$SYS/libmpi.so.40" "$SYS/libmpi_cxx.so.40" "$SYS/libopen-rte.so.40" "$SYS/libopen-pal.so.40")
ompi_bins=(orterun orted ompi_info opal_wrapper)
base_closure=$(deps "${ompi_core[@]}" "${ompi_bins[@]/#//usr/bin/}" "$SYS/libhdf5_serial.so.103" \
               "$SYS/libboost_program_options.so.1.74.0" | awk '{print $1}')
# A component stays when it needs only libraries of the core closure, Open MPI's own, PMIx and munge.
allowed_extra='^(libmca_common_(sm|ompio|monitoring)\.so|libmpi|libopen-|libpmix\.so|libmunge\.so)'
kept=() dropped=()
for c in "$SYS"/openmpi/lib/openmpi3/*.so; do
  extra=$(deps "$c" | awk '{print $1}' | grep -vxF -e "$base_closure" -e '' | grep -Ev "$allowed_extra" || true)
  if [ -n "$(not_found "$c")" ] || [ -n "$extra" ]; then
    dropped+=("$(basename "$c" .so)")
  else
    kept+=("$c")
  fi
done
log "  MCA components: ${#kept[@]} kept, ${#dropped[@]} left out (need libraries outside the bundle): ${dropped[*]}"
for c in "${kept[@]}"; do
  cp "$c" "$L/openmpi/lib/openmpi3/"
  sources+=("$c")
done
# Open MPI's component metadata (*.la are not used for dlopen); help files, wrapper data, param sets.
cp -a /usr/share/openmpi "$U/share/openmpi"
sources+=(/usr/share/openmpi/*)
# The wrappers (mpicxx -showme:link, which FindMPI reads) add run paths to the bundle's libraries, so a
# program linked with them finds the bundle's Open MPI without LD_LIBRARY_PATH.
for w in mpicxx mpic++ mpicc mpiCC; do
  f=$U/share/openmpi/$w-wrapper-data.txt
  # shellcheck disable=SC2016  # ${libdir} is expanded by the wrapper
  if [ -f "$f" ] && [ ! -L "$f" ]; then sed -i 's|^linker_flags=.*|linker_flags=-Wl,-rpath,${libdir} -Wl,-rpath,${libdir}/../..|' "$f"; fi
done
# Libraries: core + the common libraries the kept components link + PMIx.
common=()
for c in "${kept[@]}"; do
  while read -r so path; do
    case "$so" in libmca_common_*) common+=("$path") ;; esac
  done < <(deps "$c")
done
for f in "${ompi_core[@]}" "${common[@]}" "$SYS/libpmix.so.2"; do add_lib "$f"; done
# openmpi/lib: the link names the mpicxx wrapper's -L points at, and the sonames beside them.
for so in libmpi libmpi_cxx libopen-rte libopen-pal; do
  ln -s "../../$so.so.40" "$L/openmpi/lib/$so.so"
  ln -s "../../$so.so.40" "$L/openmpi/lib/$so.so.40"
done
for so in $(printf '%s\n' "${common[@]}" | xargs -rn1 basename | sort -u); do
  ln -s "../../$so" "$L/openmpi/lib/${so%.so.*}.so"
done
for b in "${ompi_bins[@]}"; do cp "/usr/bin/$b" "$U/bin/$b"; sources+=("/usr/bin/$b"); done
for name in mpirun mpiexec; do ln -s orterun "$U/bin/$name"; done
for name in mpicxx mpic++ mpicc; do ln -s opal_wrapper "$U/bin/$name"; done
# PMIx (Debian's external libpmix2): plugins and help files; relocated by PMIX_PREFIX.
ln -s ../../libpmix.so.2 "$L/pmix2/lib/libpmix.so.2"
cp /usr/lib/$arch/pmix2/lib/pmix/*.so "$L/pmix2/lib/pmix/"
sources+=("/usr/lib/$arch"/pmix2/lib/pmix/*.so)
cp -a /usr/lib/$arch/pmix2/share "$L/pmix2/share"
# Its parameter file names Debian's component folder; env.sh points PMIx at the bundle's instead.
sed -i 's|^mca_base_component_path = .*|# (dml GPU bundle: PMIX_MCA_mca_base_component_path in env.sh)|' \
  "$L/pmix2/share/pmix-mca-params.conf"

# ---- 2. HDF5, Boost.Program_options, zlib, GTest ----------------------------------------------
log "HDF5, Boost.Program_options, zlib, GoogleTest"
add_lib "$SYS/libhdf5_serial.so.103"
add_lib "$SYS/libboost_program_options.so.1.74.0"
add_lib "$SYS/libz.so"
# FindHDF5 without a wrapper compiler looks under HDF5_ROOT for lib/libhdf5.so and include/hdf5.h
# (Debian's own /usr/lib/x86_64-linux-gnu/hdf5/serial has the same two links).
mkdir -p "$L/hdf5/serial/lib"
hdf5_real=$(basename "$(readlink -f "$SYS/libhdf5_serial.so.103")")
ln -s "../../../$hdf5_real" "$L/hdf5/serial/lib/libhdf5.so"
ln -s "../../../$hdf5_real" "$L/hdf5/serial/lib/libhdf5_serial.so.103"
ln -s ../../../../include/hdf5/serial "$L/hdf5/serial/include"
for f in "$SYS"/libgtest.a "$SYS"/libgtest_main.a "$SYS"/libgmock.a "$SYS"/libgmock_main.a; do
  cp "$f" "$L/"
  strip --strip-debug "$L/$(basename "$f")" 2>/dev/null || true
  sources+=("$f")
done
for d in GTest Boost-1.74.0 boost_headers-1.74.0 boost_program_options-1.74.0; do
  cp -a "$SYS/cmake/$d" "$L/cmake/$d"
  sources+=("$SYS/cmake/$d"/*)
done
cp "$SYS/cmake/BoostDetectToolset-1.74.0.cmake" "$L/cmake/"

# ---- 3. the dependency closure of every copied ELF file ---------------------------------------
elfs() { find "$U" -type f \( -name '*.so*' -o -path "$U/bin/*" \) -exec sh -c 'head -c4 "$1" | grep -q ELF' _ {} \; -print; }
for _ in 1 2 3 4; do
  added=0
  mapfile -t all_elfs < <(elfs)
  while read -r so path; do
    if [ ! -e "$L/$so" ]; then add_lib "$path"; added=1; fi
  done < <(deps "${all_elfs[@]}")
  [ "$added" -eq 1 ] || break
done
mapfile -t all_elfs < <(elfs)
unresolved=$(not_found "${all_elfs[@]}" | tr '\n' ' ')
[ -z "$unresolved" ] || die "copied files need libraries that are not on this machine either: $unresolved"

# ---- 4. headers: only what dml's sources include, with everything those include (g++ -M) --------
log "headers (g++ -M closure of <boost/program_options.hpp>, <opencv2/imgcodecs.hpp>, <opencv2/imgproc.hpp>, <hdf5.h>, <mpi.h>, <zlib.h>)"
probe=$tmp/probe.cpp
printf '%s\n' '#include <boost/program_options.hpp>' '#include <opencv2/imgcodecs.hpp>' '#include <opencv2/imgproc.hpp>' \
  '#include <zlib.h>' '#include <hdf5.h>' '#include <mpi.h>' > "$probe"
hdrs=$tmp/headers.txt
: > "$hdrs"
for std in c++17 c++20; do
  for opt in "-O2 -DNDEBUG" "-O0"; do
    # shellcheck disable=SC2086,SC1003  # $opt: two words; tr: backslash and blank become newlines
    g++ -std=$std $opt -M -I/usr/include/opencv4 -I/usr/include/hdf5/serial -I"$SYS/openmpi/include" \
      -I"$SYS/openmpi/include/openmpi" "$probe" | tr ' \\' '\n' | grep '^/' >> "$hdrs"
  done
done
n_hdrs=0
while read -r h; do
  h=$(realpath -s "$h")
  case "$h" in
    /usr/include/boost/*|/usr/include/opencv4/*|/usr/include/hdf5/*|/usr/include/zlib.h|/usr/include/zconf.h)
      dest=$U/include/${h#/usr/include/} ;;
    "$SYS"/openmpi/include/*)
      dest=$L/openmpi/include/${h#"$SYS"/openmpi/include/} ;;
    *) continue ;;
  esac
  [ -e "$dest" ] && continue
  mkdir -p "$(dirname "$dest")"
  cp -L "$h" "$dest"
  sources+=("$h")
  n_hdrs=$((n_hdrs + 1))
done < <(sort -u "$hdrs")
rm -f "$probe" "$hdrs"
# Whole folders where they are small and tests may include any of their headers.
cp -rL /usr/include/gtest /usr/include/gmock "$U/include/"
sources+=(/usr/include/gtest/gtest.h /usr/include/gmock/gmock.h)
for h in /usr/include/hdf5/serial/*.h; do
  [ -e "$U/include/hdf5/serial/$(basename "$h")" ] || cp -L "$h" "$U/include/hdf5/serial/"
done
log "  $n_hdrs headers from the closure, plus gtest/, gmock/ and every hdf5/serial/*.h"

# ---- 5. the OpenCV stub config ----------------------------------------------------------------
mkdir -p "$L/cmake/opencv4"
ocv_version=$(sed -n 's/^#define CV_VERSION_\(MAJOR\|MINOR\|REVISION\) *\([0-9]*\).*/\2/p' \
  /usr/include/opencv4/opencv2/core/version.hpp | paste -sd.)
cat > "$L/cmake/opencv4/OpenCVConfig.cmake" <<EOF
# dml GPU bundle (launch/prepare_gpu_bundle.sh): OpenCV $ocv_version HEADERS ONLY. The opencv_core,
# opencv_imgproc and opencv_imgcodecs targets carry the include directory and no library: OpenCV's
# libraries with their dependencies are far too large to carry. Only dml_prepare (image decoding,
# src/data/image_decode.cpp) needs them; linking it against this stub fails with undefined cv:: symbols.
get_filename_component(_dml_ocv_prefix "\${CMAKE_CURRENT_LIST_DIR}/../../../.." ABSOLUTE)
set(OpenCV_VERSION $ocv_version)
set(OpenCV_INCLUDE_DIRS "\${_dml_ocv_prefix}/include/opencv4")
set(OpenCV_LIBS opencv_core opencv_imgproc opencv_imgcodecs)
foreach(_m core imgproc imgcodecs)
  if(NOT TARGET opencv_\${_m})
    add_library(opencv_\${_m} INTERFACE IMPORTED)
    set_target_properties(opencv_\${_m} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "\${OpenCV_INCLUDE_DIRS}")
  endif()
endforeach()
foreach(_m IN LISTS OpenCV_FIND_COMPONENTS)
  if(_m MATCHES "^(core|imgproc|imgcodecs)\$")
    set(OpenCV_\${_m}_FOUND TRUE)
  else()
    set(OpenCV_\${_m}_FOUND FALSE)
  endif()
endforeach()
set(OpenCV_FOUND TRUE)
message(STATUS "OpenCV \${OpenCV_VERSION}: headers only, from the dml GPU bundle (\${OpenCV_INCLUDE_DIRS}); dml_prepare cannot be linked")
EOF
cat > "$L/cmake/opencv4/OpenCVConfigVersion.cmake" <<EOF
set(PACKAGE_VERSION $ocv_version)
if(PACKAGE_FIND_VERSION AND PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
endif()
EOF

# ---- 6. RUNPATHs relative to each file -------------------------------------------------------
log "RUNPATHs (\$ORIGIN-relative) on every ELF file"
n_patched=0
# shellcheck disable=SC2016  # $ORIGIN is for the dynamic loader, not the shell
while read -r f; do
  case "$f" in
    "$L"/openmpi/lib/openmpi3/*) rp='$ORIGIN/../../..:$ORIGIN/..' ;;
    "$L"/pmix2/lib/pmix/*) rp='$ORIGIN/../../..' ;;
    "$U"/bin/*) rp='$ORIGIN/../lib/'"$arch"':$ORIGIN/../lib/'"$arch"'/openmpi/lib' ;;
    # Also reached through links in openmpi/lib and hdf5/serial/lib, where $ORIGIN is that folder.
    "$L"/*) rp='$ORIGIN:$ORIGIN/../..:$ORIGIN/../../..' ;;
    *) continue ;;
  esac
  patchelf --set-rpath "$rp" "$f"
  n_patched=$((n_patched + 1))
done < <(elfs)

# ---- 7. the CMake hint file and the environment --------------------------------------------------
cat > "$tmp/dml-bundle.cmake" <<'EOF'
# cmake -C build-gpu-bundle/dml-bundle.cmake ...: dml's dependencies from the GPU bundle
# (launch/prepare_gpu_bundle.sh). Paths are relative to this file, so the bundle can move.
get_filename_component(_dml_b "${CMAKE_CURRENT_LIST_DIR}" ABSOLUTE)
set(_dml_u "${_dml_b}/usr")
set(_dml_l "${_dml_u}/lib/x86_64-linux-gnu")
# MPI: the bundle's mpicxx wrapper (relocated by OPAL_PREFIX, which env.sh sets) and mpiexec.
set(MPI_CXX_COMPILER "${_dml_u}/bin/mpicxx" CACHE FILEPATH "dml GPU bundle: Open MPI C++ wrapper")
set(MPIEXEC_EXECUTABLE "${_dml_u}/bin/mpiexec" CACHE FILEPATH "dml GPU bundle: mpiexec")
# HDF5: with HDF5_ROOT set FindHDF5 searches only there: no h5cc wrapper there, so include/hdf5.h and
# lib/libhdf5.so (its dependencies resolve through the RUNPATHs).
set(HDF5_ROOT "${_dml_l}/hdf5/serial" CACHE PATH "dml GPU bundle: HDF5")
set(HDF5_NO_FIND_PACKAGE_CONFIG_FILE ON CACHE BOOL "dml GPU bundle")
# Boost (its own CMake config), GoogleTest, the OpenCV stub (headers only), zlib.
set(Boost_DIR "${_dml_l}/cmake/Boost-1.74.0" CACHE PATH "dml GPU bundle: Boost")
set(boost_headers_DIR "${_dml_l}/cmake/boost_headers-1.74.0" CACHE PATH "dml GPU bundle")
set(boost_program_options_DIR "${_dml_l}/cmake/boost_program_options-1.74.0" CACHE PATH "dml GPU bundle")
set(Boost_NO_SYSTEM_PATHS ON CACHE BOOL "dml GPU bundle")
set(GTest_DIR "${_dml_l}/cmake/GTest" CACHE PATH "dml GPU bundle: GoogleTest")
set(OpenCV_DIR "${_dml_l}/cmake/opencv4" CACHE PATH "dml GPU bundle: OpenCV headers only")
set(ZLIB_INCLUDE_DIR "${_dml_u}/include" CACHE PATH "dml GPU bundle: zlib")
set(ZLIB_LIBRARY "${_dml_l}/libz.so" CACHE FILEPATH "dml GPU bundle: zlib")
# Programs built against the bundle find its libraries without LD_LIBRARY_PATH; ld resolves the
# bundled libraries' own dependencies there too.
set(CMAKE_BUILD_RPATH "${_dml_l};${_dml_l}/openmpi/lib" CACHE STRING "dml GPU bundle")
set(DML_BUNDLE_RPATH_LINK "${_dml_l}:${_dml_l}/openmpi/lib" CACHE STRING "dml GPU bundle: for -Wl,-rpath-link")
EOF
cat > "$tmp/env.sh" <<'EOF'
# Sourced by launch/gpu_check.sh (bash): relocates the bundle's Open MPI and PMIx and puts mpirun on PATH.
# No LD_LIBRARY_PATH: every bundled program and library has an $ORIGIN-relative RUNPATH.
DML_GPU_BUNDLE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export DML_GPU_BUNDLE_ROOT
export OPAL_PREFIX=$DML_GPU_BUNDLE_ROOT/usr
export PMIX_PREFIX=$DML_GPU_BUNDLE_ROOT/usr/lib/x86_64-linux-gnu/pmix2
# PMIx keeps Debian's plugin folder despite PMIX_PREFIX (seen with libpmix2 4.2.2): named here.
export PMIX_MCA_mca_base_component_path=$PMIX_PREFIX/lib/pmix PMIX_PKGDATADIR=$PMIX_PREFIX/share/pmix
export PATH=$DML_GPU_BUNDLE_ROOT/usr/bin:$PATH
# Debian's /etc/openmpi/openmpi-mca-params.conf, which does not travel (sysconfdir is not relocated);
# the components these exclude are not in the bundle anyway. No single-copy (CMA) transfers: sandboxed
# machines often refuse process_vm_readv, and MPI carries only small messages beside NCCL.
export OMPI_MCA_btl_base_warn_component_unused=0 OMPI_MCA_mtl='^ofi' OMPI_MCA_btl='^uct,openib,ofi'
export OMPI_MCA_pml='^ucx' OMPI_MCA_osc='^ucx,pt2pt' OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
EOF

# ---- 8. check, report, install ----------------------------------------------------------------
# The bundled Open MPI must run from the bundle alone: ompi_info through OPAL_PREFIX, with the
# system's Open MPI directories out of the way (its own RUNPATHs would otherwise still name them).
(
  export OPAL_PREFIX=$U PMIX_PREFIX=$L/pmix2
  n_comp=$("$U/bin/ompi_info" --parsable 2>/dev/null | grep -c '^mca:' || true)
  [ "$n_comp" -gt 0 ] || die "the bundled ompi_info lists no MCA components (relocation broken)"
  prefix_seen=$("$U/bin/ompi_info" --path prefix --parsable 2>/dev/null | sed -n 's/^path:prefix://p')
  [ "$prefix_seen" = "$U" ] || die "bundled ompi_info reports prefix '$prefix_seen', not $U"
  libs_seen=$(ldd "$U/bin/orterun" | awk '/libopen-rte|libopen-pal|libhwloc|libevent/ {print $3}')
  case "$libs_seen" in *"$SYS"*) die "bundled orterun loads system libraries: $libs_seen" ;; esac
  log "  check: bundled ompi_info sees $n_comp components under OPAL_PREFIX; orterun loads the bundle's libraries"
)
glibc_min=$(find "$U" -type f -exec sh -c 'head -c4 "$1" | grep -q ELF && objdump -T "$1"' _ {} \; 2>/dev/null \
  | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
glibcxx_min=$(find "$U" -type f -exec sh -c 'head -c4 "$1" | grep -q ELF && objdump -T "$1"' _ {} \; 2>/dev/null \
  | grep -o 'GLIBCXX_[0-9.]*' | sort -uV | tail -1)

size() { du -sb "$@" 2>/dev/null | awk '{s += $1} END {printf "%.1f MiB", s / 1048576}'; }
{
  # shellcheck disable=SC1091
  echo "dml GPU bundle, made $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(. /etc/os-release && echo "$PRETTY_NAME") by launch/prepare_gpu_bundle.sh"
  echo "needs on the GPU machine: glibc with $glibc_min, libstdc++ with $glibcxx_min, x86-64"
  echo "total: $(size "$tmp")"
  echo
  echo "parts:"
  echo "  shared libraries (usr/lib/$arch/*.so*): $(size "$L"/*.so*)"
  echo "  static GoogleTest libraries: $(size "$L"/*.a)"
  echo "  Open MPI components: $(size "$L/openmpi/lib/openmpi3") (${#kept[@]}; left out: ${dropped[*]})"
  echo "  Open MPI headers: $(size "$L/openmpi/include"), help and wrapper data: $(size "$U/share/openmpi")"
  echo "  PMIx plugins and help: $(size "$L/pmix2")"
  echo "  programs (usr/bin): $(size "$U/bin")"
  echo "  Boost headers: $(size "$U/include/boost"), OpenCV headers: $(size "$U/include/opencv4"), HDF5 headers: $(size "$U/include/hdf5")"
  echo "  GoogleTest headers: $(size "$U/include/gtest" "$U/include/gmock"), CMake configs: $(size "$L/cmake")"
  echo
  echo "shared libraries, largest first:"
  find "$L" -maxdepth 1 -type f -name '*.so*' -printf '%s %f\n' | sort -rn | awk '{printf "  %8.2f MiB  %s\n", $1 / 1048576, $2}'
  echo
  echo "not carried: OpenCV's libraries (headers and a stub config only). What they would take with their"
  echo "dependencies (same ldd closure, less glibc/libstdc++):"
  for set in "core" "core imgproc" "core imgproc imgcodecs"; do
    files=()
    for m in $set; do files+=("$SYS/libopencv_$m.so.406"); done
    total=$( { printf '%s\n' "${files[@]}"; deps "${files[@]}" | awk '{print $2}'; } | xargs -r readlink -f | sort -u \
             | xargs -r du -cb | tail -1 | awk '{printf "%.1f MiB", $1 / 1048576}')
    echo "  opencv $set: $total"
  done
  echo
  echo "Debian packages the files came from:"
  # (dpkg-query -S fails for the few files no package owns, e.g. alternatives: ignored)
  # Debian's packages list /lib/x86_64-linux-gnu/... for many libraries (merged /usr): ask for both names.
  { printf '%s\n' "${sources[@]}" | xargs -r readlink -f | sed 'p; s#^/usr/lib/#/lib/#' | sort -u \
      | xargs -r dpkg-query -S 2>/dev/null || true; } \
    | cut -d: -f1 | tr ',' '\n' | sed 's/^ *//' | sort -u \
    | while read -r p; do echo "  $p $(dpkg-query -W -f='${Version}' "$p" 2>/dev/null)"; done
} > "$tmp/MANIFEST.txt"

rm -rf "$out"
mv "$tmp" "$out"
sed -n '1,14p' "$out/MANIFEST.txt" | sed 's/^/[gpu_bundle]   /'
log "wrote $out ($(size "$out"), $(find "$out" | wc -l) files) in $((SECONDS - t_start)) s; details: $out/MANIFEST.txt"
[ "$verify" -eq 0 ] || verify_bundle
