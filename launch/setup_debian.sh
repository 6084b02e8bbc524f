#!/usr/bin/env bash
# Installs every system package dml needs from Debian 12's archive. Idempotent: packages already
# present are skipped. Works as root or through sudo. Used by launch/demo.sh and launch/test.sh.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git zlib1g-dev
  libtorch-dev libopenblas0-pthread          # LibTorch 1.13 (CPU); OpenBLAS makes convolutions fast
  libopenmpi-dev openmpi-bin                 # launch, bootstrap and CPU collectives
  libhdf5-dev                                # image shards
  libboost-program-options-dev               # command line and config files
  libgtest-dev                               # tests
  libopencv-dev                              # image decoding for data preparation
  dataset-fashion-mnist                      # the built-in data set (IDX files)
  python3-torch python3-torchvision python3-numpy python3-h5py  # cross-checks in tests
  python3-sklearn python3-matplotlib         # launch/pictures.py: t-SNE plots and training curves; sklearn also for tests/eval's k-means cross-checks
  slurmctld slurmd slurm-client munge libpmix-dev  # tests/slurm: a one-node Slurm 22.05 for cluster/*.sbatch (libpmix-dev: srun --mpi=pmix loads libpmix.so)
  curl python3-rangehttpserver              # launch/download_cub.sh downloads with curl; tests/launch serves with RangeHTTPServer
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "[setup] all ${#packages[@]} Debian packages already installed"
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "[setup] error: not root and no sudo; install as root: apt-get install ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
echo "[setup] installing ${#missing[@]} Debian packages: ${missing[*]}"
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "[setup] done"
