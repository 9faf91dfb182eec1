#!/usr/bin/env bash
# A single-node SLURM with two fake GPUs for the cluster tests (tests/workflow/test_slurm.py), from Debian's packages.
#
#   tests/workflow/slurm_cluster.sh up      # install (if missing), configure, start; idempotent
#   tests/workflow/slurm_cluster.sh down    # stop the daemons this script started, by their recorded PIDs
#   tests/workflow/slurm_cluster.sh status  # exit 0 when the node answers and is usable
#
# Needs root on Debian/Ubuntu (apt-get, /etc/slurm, mknod). No accounting database: job states come
# from squeue (as on a cluster without slurmdbd). State, logs and PIDs live in $HMFS_SLURM_DIR
# (default /tmp/hmfs-slurm). /etc/slurm/slurm.conf is written only when absent or written by this
# script before: a real cluster's configuration is never replaced.
set -euo pipefail

DIR=${HMFS_SLURM_DIR:-/tmp/hmfs-slurm}
CONF_DIR=/etc/slurm
MARK="# written by hmfs tests/workflow/slurm_cluster.sh"
HOST=$(hostname -s)
# Partition limits the tests rely on: jobs may ask for at most 2 hours (the paper config's 24-hour
# trainings are "never schedulable" here, which the pre-submit check must report).
MAX_TIME_MIN=${HMFS_SLURM_MAX_TIME:-120}

die() { echo "cluster.sh: $*" >&2; exit 1; }

alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

pid_of() { [[ -f "$DIR/pids/$1" ]] && cat "$DIR/pids/$1" || true; }

install_packages() {
    local missing=()
    for cmd in slurmctld slurmd sbatch munged; do command -v "$cmd" >/dev/null || missing+=("$cmd"); done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    [[ $(id -u) -eq 0 ]] || die "SLURM is not installed (${missing[*]} missing) and installing it needs root"
    command -v apt-get >/dev/null || die "SLURM is not installed and this is not a Debian/Ubuntu machine (no apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null \
        || die "apt-get install slurmctld slurmd slurm-client munge failed"
}

write_config() {
    [[ $(id -u) -eq 0 ]] || die "configuring SLURM needs root"
    if [[ -f $CONF_DIR/slurm.conf ]] && ! grep -qF "$MARK" "$CONF_DIR/slurm.conf"; then
        die "$CONF_DIR/slurm.conf exists and was not written by this script: not touching a real cluster"
    fi
    mkdir -p "$DIR"/{state,spool,pids} "$CONF_DIR"
    local cpus mem
    cpus=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)  # nproc alone answers OMP_NUM_THREADS (make test sets 1)
    mem=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
    mem=$((mem * 95 / 100))
    # Fake GPUs: character devices (regular files leave CUDA_VISIBLE_DEVICES empty).
    for i in 0 1; do
        [[ -c /dev/fakegpu$i ]] || { rm -f /dev/fakegpu$i; mknod /dev/fakegpu$i c 195 $i; }
    done
    cat > "$CONF_DIR/slurm.conf.new" <<EOF
$MARK
ClusterName=hmfs-test
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/jobcomp.txt
MpiDefault=none
MinJobAge=300
DefMemPerCPU=1000
ReturnToService=2
KillWait=10
GresTypes=gpu
NodeName=$HOST CPUs=$cpus RealMemory=$mem Gres=gpu:2 State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=$MAX_TIME_MIN State=UP
EOF
    echo "$MARK" > "$CONF_DIR/gres.conf.new"
    echo "NodeName=$HOST Name=gpu File=/dev/fakegpu[0-1]" >> "$CONF_DIR/gres.conf.new"
    mv "$CONF_DIR/slurm.conf.new" "$CONF_DIR/slurm.conf"
    mv "$CONF_DIR/gres.conf.new" "$CONF_DIR/gres.conf"
}

start() {  # start NAME COMMAND...: in the background, PID recorded, unless already running
    local name=$1; shift
    alive "$(pid_of "$name")" && return 0
    "$@" >>"$DIR/$name.out" 2>&1 &
    echo $! > "$DIR/pids/$name"
}

up() {
    install_packages
    write_config
    if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        mkdir -p /run/munge && chown munge:munge /run/munge
        start munged setpriv --reuid=munge --regid=munge --init-groups munged -F
        for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
        munge -n | unmunge >/dev/null 2>&1 || die "munged did not start (see $DIR/munged.out)"
    fi
    start slurmctld slurmctld -D -c -i
    start slurmd slurmd -D
    for _ in $(seq 100); do
        state=$(sinfo -h -o %t 2>/dev/null || true)
        [[ $state == idle || $state == mix || $state == alloc ]] && { echo "SLURM up: node $HOST $state, state in $DIR"; return 0; }
        sleep 0.2
    done
    die "the node did not become idle (sinfo: '${state:-no answer}'); logs in $DIR"
}

down() {
    local name pid
    for name in slurmd slurmctld munged; do
        pid=$(pid_of "$name")
        if alive "$pid"; then
            kill "$pid"
            for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
            alive "$pid" && kill -9 "$pid"
        fi
        rm -f "$DIR/pids/$name"
    done
    rm -f "$DIR/slurmctld.pid" "$DIR/slurmd.pid"
}

case ${1:-} in
    up) up ;;
    down) down ;;
    status) [[ $(sinfo -h -o %t 2>/dev/null) =~ ^(idle|mix|alloc)$ ]] ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
