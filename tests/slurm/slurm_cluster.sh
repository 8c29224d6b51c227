#!/usr/bin/env bash
# A single-node Slurm (munge + slurmctld + slurmd) in a temporary directory,
# for tests. Root only: slurmd must start job steps as any user.
#   slurm_cluster.sh start DIR   configures and starts it, waits until the node
#                                is idle, and writes DIR/env (SLURM_CONF=...)
#   slurm_cluster.sh stop DIR    cancels every job and stops every daemon
# Exits 77 (skip) when not root or Slurm is not installed.
set -euo pipefail

skip() { echo "slurm_cluster: skipped: $*" >&2; exit 77; }

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local deadline=$((SECONDS + $1)) what="$2"
  shift 2
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then echo "slurm_cluster: $what did not happen in time" >&2; return 1; fi
    sleep 0.5
  done
}

node_idle() { [ "$(sinfo -h -N -o %t 2>/dev/null | head -n1)" = idle ]; }

start() {
  local dir="$1"
  [ "$(id -u)" -eq 0 ] || skip "needs root"
  for tool in munged slurmctld slurmd sbatch sinfo scancel squeue; do
    command -v "$tool" >/dev/null || skip "$tool is not installed (scripts/setup.sh installs slurm-wlm)"
  done
  mkdir -p "$dir"/{munge,state,spool,log}
  chmod 700 "$dir/munge"
  dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$dir/munge/munge.key"
  # --force: the key and socket live under /tmp, which munged finds insecure.
  munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/seed"
  wait_for 10 "munged's socket" test -S "$dir/munge/munge.socket"

  local host cpus
  host="$(hostname -s)"
  cpus="${PESC_SLURM_CPUS:-32}"  # over-subscribed: pilots sleep mostly
  cat >"$dir/slurm.conf" <<CONF
ClusterName=pesctest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
MpiDefault=none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
SlurmdParameters=config_overrides
MinJobAge=30
KillWait=10
InactiveLimit=0
OverTimeLimit=0
MessageTimeout=10
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF="$dir/slurm.conf"
  echo "export SLURM_CONF=$dir/slurm.conf" >"$dir/env"
  slurmctld -i -f "$SLURM_CONF"
  wait_for 20 "slurmctld answering" sinfo
  slurmd -f "$SLURM_CONF"
  if ! wait_for 40 "the node turning idle" node_idle; then
    tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
    stop "$dir"
    return 1
  fi
  echo "slurm_cluster: node $host idle in partition debug; SLURM_CONF=$SLURM_CONF" >&2
}

kill_pidfile() {
  local file="$1" pid
  [ -f "$file" ] || return 0
  pid="$(cat "$file")"
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.25; done
  kill -KILL "$pid" 2>/dev/null || true
}

stop() {
  local dir="$1"
  export SLURM_CONF="$dir/slurm.conf"
  if [ -f "$SLURM_CONF" ] && [ -f "$dir/slurmctld.pid" ]; then
    scancel --full --quiet "--user=$(id -un)" 2>/dev/null || true
    # The jobs' processes end before slurmd does, so none outlive the test.
    for _ in $(seq 1 40); do
      [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.5
    done
  fi
  kill_pidfile "$dir/slurmd.pid"
  kill_pidfile "$dir/slurmctld.pid"
  kill_pidfile "$dir/munge/munged.pid"
}

case "${1:-}" in
  start) start "$2" ;;
  stop) stop "$2" ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
