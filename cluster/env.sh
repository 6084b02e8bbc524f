#!/usr/bin/env bash
# Environment for dml on a cluster. Sourced by the batch scripts.
# ---- change these for your system ------------------------------------------------------------
# module load gcc/12 openmpi/4.1 cuda/12.4 nccl hdf5 boost opencv   # your site's modules
export DML_BUILD_DIR=${DML_BUILD_DIR:-$HOME/dml/build-cuda}        # built as in cluster/BUILD_CUDA.md
export NCCL_DEBUG=${NCCL_DEBUG:-WARN}
# export NCCL_SOCKET_IFNAME=ib0                                    # the interface between nodes
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-8}
# -----------------------------------------------------------------------------------------------
