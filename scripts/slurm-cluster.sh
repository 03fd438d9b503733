#!/usr/bin/env bash
# A private, single-node Slurm cluster on localhost, for Vigil's end-to-end
# test of `vigil fit` as a Slurm job array (deploy/slurm/fit-array.sbatch).
#
#   scripts/slurm-cluster.sh check       are munged, slurmctld, slurmd and the
#                                        client commands installed?
#   scripts/slurm-cluster.sh start DIR   start munged, slurmctld and slurmd with
#                                        everything in DIR, wait until the node
#                                        is idle, print `export SLURM_CONF=...`
#   scripts/slurm-cluster.sh stop DIR    cancel its jobs, stop the three daemons
#                                        (logs stay in DIR); idempotent
#
# Nothing is written to /etc, /run or /var and no system service is touched:
# the test must not depend on (nor disturb) a Slurm or MUNGE set up on the
# machine. DIR holds the munge key, socket, seed, pid and log (DIR/munge),
# slurm.conf, slurmctld's state (DIR/state), slurmd's spool (DIR/spool),
# pid files (DIR/run) and logs (DIR/log, with DIR/log/jobcomp.txt: one line
# per finished job with its final JobState and ExitCode, since there is no
# slurmdbd and so no sacct). Each start is a fresh cluster: no job of a
# previous run in DIR is recovered, and jobcomp.txt starts empty; the
# daemons' logs are appended to. Clients find the cluster through SLURM_CONF;
# slurm.conf's AuthInfo points every daemon and client at DIR's munge socket.
# The daemons run as the current user, root or not (as an ordinary user,
# only that user can run jobs, which is all a test needs). The settings
# avoid cgroups and systemd (proctrack/linuxproc, task/none, no accounting
# gather), so it works in containers. The ports are picked free, below the
# ephemeral range, so several clusters and a real Slurm can coexist.
#
# `line=$(scripts/slurm-cluster.sh start DIR) && eval "$line"` starts it and
# sets SLURM_CONF: `start` prints only that line on stdout, its progress on
# stderr (not `eval "$(... start DIR)"`, which succeeds even when start fails).
# Environment: SLURM_CLUSTER_TIMEOUT (seconds to wait for the node to become
# idle, default 60).
set -euo pipefail
# The daemons live in /usr/sbin, which an ordinary user's PATH may lack.
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

die() { echo "slurm-cluster: error: $*" >&2; exit 1; }
say() { echo "slurm-cluster: $*" >&2; }

required=(munged munge unmunge slurmctld slurmd sbatch squeue sinfo scontrol scancel)

cmd_check() {
  local missing=() p
  for p in "${required[@]}"; do
    if command -v "$p" >/dev/null 2>&1; then
      echo "found   $p: $(command -v "$p")"
    else
      echo "MISSING $p"
      missing+=("$p")
    fi
  done
  # Without slurmdbd sacct has nothing to report; the cluster does not need it.
  if command -v sacct >/dev/null 2>&1; then
    echo "found   sacct (optional): $(command -v sacct)"
  else
    echo "missing sacct (optional)"
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    echo "slurm-cluster: error: missing ${missing[*]}; scripts/deps.sh installs them (Debian packages slurm-wlm munge)" >&2
    return 1
  fi
}

# The absolute path of $1, which must exist.
abspath() { (cd "$1" && pwd -P); }

# Whether process $1 exists and is not a zombie (a daemon that exited may
# stay one for a while if nothing reaps it, as in some containers).
alive() {
  local line rest
  read -r line 2>/dev/null <"/proc/$1/stat" || return 1
  rest=${line##*) }
  [ "${rest%% *}" != Z ]
}

# A process's pid from a pid file, if the process is alive and its command
# name is $2 (so that a stale pid file reused by another process is ignored).
live_pid() {
  local file=$1 name=$2 pid comm
  [ -f "$file" ] || return 1
  pid=$(tr -dc '0-9' <"$file")
  [ -n "$pid" ] || return 1
  read -r comm 2>/dev/null <"/proc/$pid/comm" || return 1
  [ "$comm" = "$name" ] || return 1
  alive "$pid" || return 1
  echo "$pid"
}

# TCP ports in use (any state, IPv4 and IPv6), one per line, in decimal.
used_ports() {
  local f
  for f in /proc/net/tcp /proc/net/tcp6; do
    [ -r "$f" ] || continue
    awk 'NR > 1 { split($2, a, ":"); print a[2] }' "$f"
  done | while read -r hex; do echo $((16#$hex)); done | sort -un
}

# Two free TCP ports below the ephemeral range (where the kernel picks
# clients' ports, so that no outgoing connection takes them meanwhile).
free_ports() {
  local lo used p n=0 tries=0
  read -r lo _ </proc/sys/net/ipv4/ip_local_port_range || lo=32768
  [ "$lo" -gt 12000 ] || lo=32768
  used=" $(used_ports | tr '\n' ' ') "
  while [ $n -lt 2 ]; do
    tries=$((tries + 1))
    [ $tries -lt 1000 ] || die "found no free TCP port below $lo"
    p=$((10000 + (RANDOM * 32768 + RANDOM) % (lo - 10000)))
    case "$used" in *" $p "*) continue ;; esac
    used="$used$p "
    echo "$p"
    n=$((n + 1))
  done
}

print_logs() {
  local dir=$1 f
  for f in "$dir/munge/munged.log" "$dir/log/slurmctld.log" "$dir/log/slurmd.log"; do
    [ -f "$f" ] || continue
    echo "----- last lines of $f -----" >&2
    tail -n 30 "$f" >&2
  done
}

start_failed() {
  local dir=$1
  shift
  echo "slurm-cluster: error: $*" >&2
  print_logs "$dir"
  echo "slurm-cluster: error: $* (logs above; stopping what was started: scripts/slurm-cluster.sh stop $dir)" >&2
  cmd_stop "$dir" >/dev/null 2>&1 || true
  exit 1
}

cmd_start() {
  local dir=$1 pid
  cmd_check >/dev/null || { cmd_check >&2 || true; exit 1; }
  mkdir -p "$dir"
  dir=$(abspath "$dir")
  local d
  for d in slurmctld slurmd; do
    if pid=$(live_pid "$dir/run/$d.pid" "$d"); then
      die "$d (pid $pid) of the cluster in $dir is running; run 'scripts/slurm-cluster.sh stop $dir' first"
    fi
  done
  if pid=$(live_pid "$dir/munge/munged.pid" munged); then
    die "munged (pid $pid) of the cluster in $dir is running; run 'scripts/slurm-cluster.sh stop $dir' first"
  fi
  local sock="$dir/munge/munge.socket"
  # A unix socket's path must fit in sun_path (108 bytes with the NUL).
  [ ${#sock} -lt 100 ] || die "path too long for a unix socket: $sock (use a shorter DIR)"
  case "$dir" in *[[:space:]=,]*) die "DIR must not hold spaces, '=' or ',' (slurm.conf's AuthInfo): $dir" ;; esac

  local t0=$SECONDS
  # munged insists that the socket's directory be searchable by all and
  # that nothing on the key's path be writable by others.
  chmod 755 "$dir"
  mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/log" "$dir/run"
  chmod 711 "$dir/munge"
  chmod 700 "$dir/state" "$dir/spool"
  if [ ! -s "$dir/munge/munge.key" ]; then
    if command -v mungekey >/dev/null 2>&1; then
      mungekey --create --keyfile="$dir/munge/munge.key" >/dev/null
    else
      (umask 077 && dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none)
    fi
  fi
  chmod 600 "$dir/munge/munge.key"
  # --force: start despite a stale socket left by a munged that was killed.
  munged --force \
    --key-file="$dir/munge/munge.key" --socket="$sock" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" \
    --seed-file="$dir/munge/munged.seed" ||
    start_failed "$dir" "munged did not start"
  munge -n -S "$sock" | unmunge -S "$sock" >/dev/null ||
    start_failed "$dir" "munged started but does not decode its own credential"

  # The node as slurmd sees it (CPUs, sockets, cores, threads), unless the
  # process may use fewer CPUs than the machine has (affinity, cpuset):
  # then just that many CPUs. Memory: 90% of what slurmd finds, so that a
  # few MB less at registration do not drain the node.
  local host cpus real hw node_hw mem defmem user ctl_port d_port
  host=$(hostname -s)
  cpus=$(nproc)
  hw=$(slurmd -C 2>/dev/null | head -n1) || hw=""
  real=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
  [ -n "$real" ] || real=$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)
  mem=$((real * 9 / 10))
  node_hw="CPUs=$cpus"
  if [[ "$hw" =~ CPUs=([0-9]+)\ (Boards=.*ThreadsPerCore=[0-9]+) ]] && [ "${BASH_REMATCH[1]}" = "$cpus" ]; then
    node_hw="CPUs=$cpus ${BASH_REMATCH[2]}"
  fi
  # Jobs that give no --mem get memory in proportion to their CPUs (the
  # default would be the whole node, one job at a time).
  defmem=$((mem / cpus))
  user=$(id -un)
  { read -r ctl_port; read -r d_port; } < <(free_ports)

  cat >"$dir/slurm.conf" <<EOF
# Written by scripts/slurm-cluster.sh start $dir: a private one-node
# cluster for Vigil's end-to-end tests. Nothing outside this directory.
ClusterName=vigil-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctl_port
SlurmdPort=$d_port
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups, no systemd: plain process tracking, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# No slurmdbd, so no sacct: finished jobs' final states go to a text file.
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
MpiDefault=none
SwitchType=switch/none
MailProg=/bin/true
# CPUs (logical: CR_Core would round requests up to whole cores) and memory
# are consumable: array tasks run side by side as far as their
# --cpus-per-task and --mem allow.
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=$defmem
# Quick turnaround for tests: no batching delay before scheduling, so a job
# starts about a second after its submission or after a CPU frees (with
# the defaults, about 3 s); the node returns to service by itself.
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,bf_interval=1
ReturnToService=2
SlurmdTimeout=60
InactiveLimit=0
# A job asking for more than the node has is refused at submission instead
# of pending forever.
EnforcePartLimits=ALL
KillWait=10
# Finished jobs stay visible to scontrol show job for 5 minutes.
MinJobAge=300
NodeName=$host NodeAddr=127.0.0.1 $node_hw RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF="$dir/slurm.conf"

  # -c: a fresh start, without the jobs of a previous run in DIR (requeued,
  # they would run again).
  : >"$dir/log/jobcomp.txt"
  slurmctld -c -f "$dir/slurm.conf" ||
    start_failed "$dir" "slurmctld did not start"
  slurmd -f "$dir/slurm.conf" ||
    start_failed "$dir" "slurmd did not start"

  local timeout=${SLURM_CLUSTER_TIMEOUT:-60} state=""
  while :; do
    state=$(sinfo -h -n "$host" -o %T 2>/dev/null | head -n1) || state=""
    [ "$state" = idle ] && break
    live_pid "$dir/run/slurmctld.pid" slurmctld >/dev/null ||
      start_failed "$dir" "slurmctld exited"
    live_pid "$dir/run/slurmd.pid" slurmd >/dev/null ||
      start_failed "$dir" "slurmd exited"
    [ $((SECONDS - t0)) -lt "$timeout" ] ||
      start_failed "$dir" "node $host not idle after ${timeout}s (state: '${state:-no answer from slurmctld}')"
    sleep 0.2
  done
  say "node $host idle after $((SECONDS - t0))s ($node_hw RealMemory=$mem, ports $ctl_port/$d_port, partition debug)"
  echo "export SLURM_CONF=$dir/slurm.conf"
}

# Sends TERM to each NAME:PID given, waits up to STOP_WAIT seconds for them
# all to exit (they shut down side by side: each takes a second or two),
# then KILLs the rest. Fails if one survives even that.
stop_all() {
  local wait=${STOP_WAIT:-20} item pid left i rc=0
  for item in "$@"; do kill -TERM "${item#*:}" 2>/dev/null || true; done
  for ((i = 0; i < wait * 20; i++)); do
    left=()
    for item in "$@"; do
      if alive "${item#*:}"; then left+=("$item"); fi
    done
    [ ${#left[@]} -gt 0 ] || break
    sleep 0.05
  done
  for item in "$@"; do
    pid=${item#*:}
    if alive "$pid"; then
      say "${item%%:*} (pid $pid) ignored SIGTERM for ${wait}s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.1; done
      if alive "$pid"; then
        echo "slurm-cluster: error: ${item%%:*} (pid $pid) survives SIGKILL" >&2
        rc=1
        continue
      fi
    fi
    say "stopped ${item%%:*} (pid $pid)"
  done
  return $rc
}

# The pids of the processes below $1 (children, their children, ...).
descendants() {
  local p line rest ppid parents=("$1") found=() more
  declare -A children=()
  for p in /proc/[0-9]*; do
    read -r line 2>/dev/null <"$p/stat" || continue
    rest=${line##*) }
    ppid=${rest#* }
    ppid=${ppid%% *}
    children[$ppid]+="${p#/proc/} "
  done
  while [ ${#parents[@]} -gt 0 ]; do
    more=()
    for p in "${parents[@]}"; do
      for ppid in ${children[$p]:-}; do more+=("$ppid"); done
    done
    found+=("${more[@]}")
    parents=("${more[@]}")
  done
  echo "${found[@]}"
}

cmd_stop() {
  local dir=$1 pid i p fd comm rc=0 daemons=() stepds=()
  [ -d "$dir" ] || { say "no $dir: nothing to stop"; return 0; }
  dir=$(abspath "$dir")
  # Cancel the jobs first, so that their processes do not outlive slurmd
  # (which kills them on slurmctld's word; without slurmd, see below).
  if live_pid "$dir/run/slurmctld.pid" slurmctld >/dev/null &&
    live_pid "$dir/run/slurmd.pid" slurmd >/dev/null && [ -f "$dir/slurm.conf" ]; then
    if SLURM_CONF="$dir/slurm.conf" scancel --user="$(id -un)" 2>/dev/null; then
      # (until no job is pending, running, completing or suspended)
      for ((i = 0; i < 150; i++)); do
        [ -z "$(SLURM_CONF="$dir/slurm.conf" squeue -h -t PD,R,CG,S,CF -o %i 2>/dev/null | head -n1)" ] && break
        sleep 0.2
      done
    fi
  fi
  if pid=$(live_pid "$dir/run/slurmd.pid" slurmd); then daemons+=("slurmd:$pid"); fi
  if pid=$(live_pid "$dir/run/slurmctld.pid" slurmctld); then daemons+=("slurmctld:$pid"); fi
  if [ ${#daemons[@]} -gt 0 ]; then stop_all "${daemons[@]}" || rc=1; fi
  # Job step daemons that this cluster's slurmd left (none, unless slurmd
  # died or slurmctld was gone): they hold its log file open. They and the
  # job processes below them are killed.
  for p in /proc/[0-9]*; do
    comm=""
    read -r comm 2>/dev/null <"$p/comm" || continue
    [ "$comm" = slurmstepd ] || continue
    for fd in "$p"/fd/*; do
      if [ "$(readlink "$fd" 2>/dev/null)" = "$dir/log/slurmd.log" ]; then
        stepds+=("slurmstepd:${p#/proc/}")
        for pid in $(descendants "${p#/proc/}"); do stepds+=("job process:$pid"); done
        break
      fi
    done
  done
  if [ ${#stepds[@]} -gt 0 ]; then STOP_WAIT=2 stop_all "${stepds[@]}" || rc=1; fi
  # munged last: the others use it until they are gone.
  if pid=$(live_pid "$dir/munge/munged.pid" munged); then stop_all "munged:$pid" || rc=1; fi
  rm -f "$dir/run/slurmd.pid" "$dir/run/slurmctld.pid"
  return $rc
}

usage() {
  echo "usage: $0 check | start DIR | stop DIR" >&2
  exit 2
}

case "${1:-}" in
  check) [ $# -eq 1 ] || usage; cmd_check ;;
  start) [ $# -eq 2 ] || usage; cmd_start "$2" ;;
  stop) [ $# -eq 2 ] || usage; cmd_stop "$2" ;;
  *) usage ;;
esac
