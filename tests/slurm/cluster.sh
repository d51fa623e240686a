#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for flatland's Slurm tests (run as root).
#
#   tests/slurm/cluster.sh up     installs slurm-wlm and munge from Debian if missing, writes a
#                                 minimal slurm.conf under $FLATLAND_SLURM_DIR (default
#                                 /tmp/flatland-slurm), starts munged, slurmctld and slurmd, and
#                                 waits until the node takes jobs
#   tests/slurm/cluster.sh down   stops the daemons and removes the folder
#
# Clients find the cluster through SLURM_CONF: `up` prints `export SLURM_CONF=...` as its last
# line. Exit status of `up`: 0 running; 3 the packages could not be installed (no apt-get, no
# root, no network); 1 anything else.
set -euo pipefail
dir=${FLATLAND_SLURM_DIR:-/tmp/flatland-slurm}
conf=$dir/slurm.conf

down() {
  for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
    if [[ -f $pidfile ]]; then
      kill "$(cat "$pidfile")" 2>/dev/null || true
    fi
  done
  sleep 1
  rm -rf "$dir"
}

install() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
    && command -v sbatch >/dev/null; then
    return 0
  fi
  if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
    echo "cannot install slurm-wlm and munge: needs root and apt-get" >&2
    return 3
  fi
  echo "installing slurm-wlm and munge (Debian packages)" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update -qq && apt-get install -y -qq slurm-wlm munge >/dev/null; }; then
    echo "apt-get could not install slurm-wlm and munge" >&2
    return 3
  fi
}

up() {
  install || exit $?
  down
  mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
  host=$(hostname -s)
  cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
  # munge: a fresh key, its socket in our folder, run as the munge user when there is one.
  key=$dir/munge/munge.key
  dd if=/dev/urandom of="$key" bs=1 count=1024 status=none
  chmod 0400 "$key"
  socket=$dir/munge/munge.socket.2
  owner=root
  if id munge >/dev/null 2>&1; then owner=munge; fi
  chown -R "$owner" "$dir/munge"
  chmod 0700 "$dir/munge"
  runuser -u "$owner" -- munged --force --key-file="$key" --socket="$socket" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/seed"
  cat >"$conf" <<CONF
ClusterName=flatland
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF=$conf
  slurmctld -i
  slurmd
  for _ in $(seq 60); do
    if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
      echo "Slurm is up: one node ($host, $cpus CPUs); logs in $dir" >&2
      echo "export SLURM_CONF=$conf"
      return 0
    fi
    sleep 1
  done
  echo "Slurm did not come up within 60 s; logs:" >&2
  tail -n 20 "$dir"/*.log "$dir"/munge/*.log >&2 || true
  return 1
}

case ${1:-} in
  up) up ;;
  down) down ;;
  *)
    echo "usage: $0 up|down" >&2
    exit 2
    ;;
esac
