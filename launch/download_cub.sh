#!/usr/bin/env bash
# Downloads CUB-200-2011 (CUB_200_2011.tgz), checks its checksum, unpacks it and writes the shards
# with launch/prepare_cub.sh (the reference protocol), in one command. Every step already done is
# skipped: an archive already downloaded (CUB_200_2011.tgz; a partial one, CUB_200_2011.tgz.part, is
# resumed), an unpacked CUB_DIR (then nothing is downloaded), shards already in OUTPUT_DIR.
# The archive is unpacked into a temporary directory next to CUB_DIR and renamed to CUB_DIR only
# when complete, so an interrupted run never leaves a half directory under that name.
# Usage: launch/download_cub.sh [--no-prepare] [extra dml_prepare flags, e.g. --no-bbox-crop]
#   --no-prepare (or DML_SKIP_PREPARE=1): stop after unpacking.
set -euo pipefail
cd "$(dirname "$0")/.."

# ---- change these for your system -------------------------------------------------------------
CUB_URL=${CUB_URL:-https://data.caltech.edu/records/65de6-vmx40/files/CUB_200_2011.tgz?download=1}
CUB_MD5=${CUB_MD5:-97eceeb196236b17998738112f37df78}   # MD5 of the official archive
CUB_SHA256=${CUB_SHA256:-}                          # if set, checked instead of CUB_MD5
CUB_DIR=${CUB_DIR:-data/CUB_200_2011}               # the unpacked data set, as in launch/prepare_cub.sh
CUB_ARCHIVE=${CUB_ARCHIVE:-$(dirname "$CUB_DIR")/CUB_200_2011.tgz}  # where the download is kept
OUTPUT_DIR=${OUTPUT_DIR:-data/cub}                  # the shards, as in launch/prepare_cub.sh
DML_SKIP_PREPARE=${DML_SKIP_PREPARE:-0}             # 1: download and unpack only
# ------------------------------------------------------------------------------------------------

prepare_args=()
for arg in "$@"; do
  if [ "$arg" = --no-prepare ]; then DML_SKIP_PREPARE=1; else prepare_args+=("$arg"); fi
done
say() { echo "[download_cub] $*"; }
fail() { echo "[download_cub] error: $*" >&2; exit 1; }

if [ -n "$CUB_SHA256" ]; then
  sum_tool=sha256sum expected=$CUB_SHA256 sum_var=CUB_SHA256
else
  sum_tool=md5sum expected=$CUB_MD5 sum_var=CUB_MD5
fi
checksum() { "$sum_tool" "$1" | cut -d' ' -f1; }

# 1. Download (resumable) and verify.
if [ -d "$CUB_DIR" ]; then
  say "$CUB_DIR already exists: not downloading or unpacking (delete it to unpack again)"
else
  mkdir -p "$(dirname "$CUB_ARCHIVE")" "$(dirname "$CUB_DIR")"
  if [ -f "$CUB_ARCHIVE" ]; then
    say "$CUB_ARCHIVE already downloaded"
  else
    command -v curl >/dev/null || fail "curl not found; install it (bash launch/setup_debian.sh)"
    part="$CUB_ARCHIVE.part"
    if [ -f "$part" ]; then
      say "resuming $part ($(stat -c %s "$part") bytes so far) from $CUB_URL"
    else
      say "downloading $CUB_URL to $CUB_ARCHIVE"
    fi
    progress=(--silent --show-error); [ -t 2 ] && progress=(--progress-bar)
    curl --fail --location --retry 3 --continue-at - "${progress[@]}" --output "$part" "$CUB_URL" ||
      fail "download of $CUB_URL failed (curl exit $?); run again to resume, or delete $part to start over, or check CUB_URL"
    mv -f "$part" "$CUB_ARCHIVE"
  fi
  say "checking the $sum_tool of $CUB_ARCHIVE"
  actual=$(checksum "$CUB_ARCHIVE")
  [ "$actual" = "$expected" ] ||
    fail "$CUB_ARCHIVE: $sum_tool is $actual, expected $expected ($sum_var); delete $CUB_ARCHIVE and run again, or check CUB_URL ($CUB_URL)"

  # 2. Unpack atomically: into a temporary directory next to CUB_DIR, renamed when complete.
  unpack_dir=$(mktemp -d "$(dirname "$CUB_DIR")/.CUB_200_2011.unpacking.XXXXXX")
  trap 'rm -rf "$unpack_dir"' EXIT
  say "unpacking $CUB_ARCHIVE"
  tar -xzf "$CUB_ARCHIVE" -C "$unpack_dir" || fail "cannot unpack $CUB_ARCHIVE; delete it and run again"
  [ -f "$unpack_dir/CUB_200_2011/images.txt" ] ||
    fail "$CUB_ARCHIVE holds no CUB_200_2011/images.txt; is CUB_URL ($CUB_URL) the CUB-200-2011 archive?"
  mv -T "$unpack_dir/CUB_200_2011" "$CUB_DIR"
  rm -rf "$unpack_dir"
  trap - EXIT
  say "unpacked to $CUB_DIR"
fi

# 3. Shards, with launch/prepare_cub.sh (its settings: SHARDS, RESIZE, THREADS, DML_BUILD_DIR).
if [ "$DML_SKIP_PREPARE" = 1 ]; then
  say "not preparing shards (--no-prepare / DML_SKIP_PREPARE=1); later: CUB_DIR=$CUB_DIR OUTPUT_DIR=$OUTPUT_DIR bash launch/prepare_cub.sh"
elif compgen -G "$OUTPUT_DIR/train-*-of-*.h5" >/dev/null; then
  say "$OUTPUT_DIR already holds shards: not preparing (bash launch/prepare_cub.sh --overwrite redoes them)"
else
  say "writing shards to $OUTPUT_DIR"
  CUB_DIR="$CUB_DIR" OUTPUT_DIR="$OUTPUT_DIR" bash launch/prepare_cub.sh "${prepare_args[@]}"
  say "done: train with --data-path $OUTPUT_DIR"
fi
