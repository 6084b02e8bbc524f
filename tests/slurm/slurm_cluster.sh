#!/usr/bin/env bash
# A one-node Slurm cluster in a folder, for the tests (tests/slurm/slurm_cluster.h) and by hand:
#   tests/slurm/slurm_cluster.sh start DIR [OWNER_PID]   # prints SLURM_CONF=DIR/slurm.conf when ready
#   export SLURM_CONF=DIR/slurm.conf; sbatch ...; squeue ...
#   tests/slurm/slurm_cluster.sh stop DIR                # cancels the jobs, then stops the daemons
# Debian 12's slurmctld, slurmd, slurm-client (22.05) and munge (launch/setup_debian.sh), run as
# root. Everything lives under DIR: slurm.conf, the munge key and socket, state, spool, logs, pid
# files, TmpFS. Node = `hostname -s` on 127.0.0.1 only, 2 CPUs; ports are free ones picked here, so
# several clusters (ctest -j) can run side by side (with job ids of their own: FirstJobId). With
# OWNER_PID, a watchdog stops the cluster when that process ends (a test killed by ctest leaves no
# daemons behind).
# Short timers so a requeued job starts again within seconds: cred_expire=10 (a requeued job waits
# that long before it may start), sched_interval=1.
set -euo pipefail

die() { echo "slurm_cluster.sh: $*" >&2; exit 1; }

# Waits up to $1 tenths of a second for the command "${@:2}" to succeed.
wait_for() {
  local n=$1; shift
  for ((i = 0; i < n; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

free_ports() {  # two free TCP ports on 127.0.0.1
  /usr/bin/python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
EOF
}

start() {
  local dir=$1 owner=${2:-}
  for p in munged slurmctld slurmd sbatch; do
    command -v "$p" >/dev/null || [ -x "/usr/sbin/$p" ] || die "$p not found: run launch/setup_debian.sh"
  done
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  mkdir -p "$dir/state" "$dir/spool" "$dir/tmp" "$dir/munge"
  local node ports ctld_port slurmd_port mem
  node=$(hostname -s)
  read -r ctld_port slurmd_port < <(free_ports)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))
  (( mem > 4096 )) && mem=4096
  cat > "$dir/slurm.conf" <<EOF
ClusterName=dmltest
# Job ids unique among the clusters running here at once (their ports differ): Open MPI names its
# shared-memory segments after the job, so two clusters' job 1 on one host would share them (crash).
FirstJobId=$(( ctld_port * 100 ))
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket,cred_expire=10
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
TmpFS=$dir/tmp
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
MinJobAge=600
KillWait=5
InactiveLimit=0
SlurmdTimeout=60
NodeName=$node NodeAddr=127.0.0.1 CPUs=2 RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF=$dir/slurm.conf
  dd if=/dev/urandom of="$dir/munge/munge.key" bs=1 count=1024 status=none
  chmod 600 "$dir/munge/munge.key"
  munged -f --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed" \
    || die "munged did not start: $(tail -5 "$dir/munge/munged.log" 2>/dev/null)"
  wait_for 100 test -S "$dir/munge/munge.socket" || die "no munge socket"
  # -i: ignore any saved state (a fresh cluster every time).
  slurmctld -i || die "slurmctld did not start: $(tail -5 "$dir/slurmctld.log" 2>/dev/null)"
  wait_for 200 scontrol ping || die "slurmctld does not answer: $(tail -20 "$dir/slurmctld.log" 2>/dev/null)"
  slurmd || die "slurmd did not start: $(tail -5 "$dir/slurmd.log" 2>/dev/null)"
  # Ready when the node is idle.
  local state=""
  for ((i = 0; i < 300; i++)); do
    state=$(sinfo -h -N -o %t 2>/dev/null | head -1)
    [ "$state" = idle ] && break
    sleep 0.1
  done
  [ "$state" = idle ] || die "node not idle (state '$state'): $(tail -20 "$dir/slurmd.log" 2>/dev/null)"
  if [ -n "$owner" ]; then
    # Watchdog: stop the cluster when the owner ends (or when DIR/slurm.conf is gone).
    setsid bash -c 'while kill -0 "$1" 2>/dev/null && [ -f "$2/slurm.conf" ]; do sleep 1; done; "$3" stop "$2"' \
      watchdog "$owner" "$dir" "$(cd "$(dirname "$0")" && pwd)/$(basename "$0")" \
      </dev/null >"$dir/watchdog.log" 2>&1 &
    echo $! > "$dir/watchdog.pid"
  fi
  echo "SLURM_CONF=$dir/slurm.conf"
}

stop_pidfile() {  # stop_pidfile FILE: TERM, up to 10 s, then KILL
  local f=$1 pid
  pid_alive "$f" || return 0
  pid=$(cat "$f")
  kill "$pid" 2>/dev/null || true
  wait_for 100 bash -c "! kill -0 $pid 2>/dev/null" || kill -9 "$pid" 2>/dev/null || true
}

stop() {
  local dir=$1
  [ -f "$dir/slurm.conf" ] || return 0
  dir=$(cd "$dir" && pwd)
  export SLURM_CONF=$dir/slurm.conf
  # Jobs first: slurmd going away leaves them alive. Requeued (pending) jobs too.
  if pid_alive "$dir/slurmctld.pid"; then
    scancel --full "--user=$(id -un)" 2>/dev/null || true
    wait_for 300 bash -c '[ -z "$(squeue -h -t running,completing,pending -o %i 2>/dev/null)" ]' \
      || echo "slurm_cluster.sh: jobs still there after 30 s: $(squeue -h 2>/dev/null)" >&2
  fi
  stop_pidfile "$dir/slurmd.pid"
  stop_pidfile "$dir/slurmctld.pid"
  stop_pidfile "$dir/munge/munged.pid"
  if [ -f "$dir/watchdog.pid" ] && [ "$(cat "$dir/watchdog.pid")" != "$$" ] && [ "$(cat "$dir/watchdog.pid")" != "$PPID" ]; then
    kill "$(cat "$dir/watchdog.pid")" 2>/dev/null || true
  fi
  rm -f "$dir/watchdog.pid"
}

case "${1:-}" in
  start) start "${2:?usage: $0 start DIR [OWNER_PID]}" "${3:-}" ;;
  stop) stop "${2:?usage: $0 stop DIR}" ;;
  *) die "usage: $0 start DIR [OWNER_PID] | stop DIR" ;;
esac
