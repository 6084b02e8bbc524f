#!/usr/bin/env bash
# Runs dist_train on this machine with N ranks: launch/mpirun_local.sh N [dist_train flags...]
# (DML_PROGRAM=dist_eval runs dist_eval instead: DML_PROGRAM=dist_eval launch/mpirun_local.sh N [flags...])
# Adds what Open MPI needs here: root permission, oversubscription, no core binding (ranks use
# several threads each).
set -euo pipefail
# ---- change these for your system ------------------------------------------------------------
BUILD_DIR=${DML_BUILD_DIR:-build}
PROGRAM=${DML_PROGRAM:-dist_train}
# -----------------------------------------------------------------------------------------------
cd "$(dirname "$0")/.."
ranks=${1:?usage: launch/mpirun_local.sh RANKS [dist_train flags...]}
shift
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
exec mpirun -np "$ranks" --oversubscribe --bind-to none "$BUILD_DIR/$PROGRAM" "$@"
