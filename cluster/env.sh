#!/usr/bin/env bash
# Environment for dml on a cluster: sourced by cluster/slurm_train.sbatch and cluster/slurm_cpu.sbatch
# in the batch shell, so srun passes it on to every rank. Every setting keeps a value that is
# already set, so `NCCL_DEBUG=INFO sbatch ...` or `sbatch --export=ALL,NCCL_DEBUG=INFO ...` wins.
# ---- change these for your system ------------------------------------------------------------
# Your site's modules (the compiler, MPI, CUDA and HDF5 dml was built with):
# module load gcc/12 openmpi/4.1 cuda/12.4 nccl hdf5 boost opencv

# NCCL (GPU jobs; the mpi backend of CPU jobs ignores these).
# WARN: only problems. INFO: at start-up, which interfaces, transports (NET/IB, NET/Socket, P2P,
# SHM) and rings/trees each rank chose -- the first thing to read when NCCL hangs or is slow.
export NCCL_DEBUG=${NCCL_DEBUG:-WARN}
# NCCL_DEBUG_SUBSYS=INIT,NET narrows INFO to start-up and networking.
# export NCCL_DEBUG_SUBSYS=INIT,NET
# The network interface NCCL's bootstrap and socket transport use between nodes. NCCL guesses;
# on nodes with docker0/virbr0 or several Ethernet ports it may guess wrong and hang at init.
# A prefix matches every interface starting with it; ^ excludes: "ib0", "eth", "^docker,lo".
# export NCCL_SOCKET_IFNAME=ib0
# The InfiniBand/RoCE adapters (and ports) NCCL may use, e.g. "mlx5_0:1,mlx5_1:1"; unset = all.
# export NCCL_IB_HCA=mlx5
# NCCL_IB_DISABLE=1 forces TCP sockets (to tell an InfiniBand problem from anything else).
# export NCCL_IB_DISABLE=1

# Open MPI (every job: start-up over PMIx, and the CPU collectives of --backend mpi).
# pml: ucx uses InfiniBand/RoCE through UCX where Open MPI was built with it; ob1 with the btls
# below works everywhere (TCP between nodes). Leave unset to let Open MPI choose.
# export OMPI_MCA_pml=ucx
# btl (only with pml ob1): self = to itself, vader = shared memory on a node, tcp = between nodes.
# Excluding openib avoids its deprecation warnings on InfiniBand nodes with pml ucx.
export OMPI_MCA_btl=${OMPI_MCA_btl:-self,vader,tcp}
# The interface Open MPI's TCP traffic uses between nodes (the same idea as NCCL_SOCKET_IFNAME).
# export OMPI_MCA_btl_tcp_if_include=ib0

# Threads. dist_train sets LibTorch's intra-op threads from --threads (the scripts pass
# --cpus-per-task); OMP_NUM_THREADS bounds OpenMP/OpenBLAS inside it to the same CPUs, so ranks
# sharing a node do not oversubscribe it.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}
# -----------------------------------------------------------------------------------------------
