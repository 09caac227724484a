#!/bin/bash
# dlm-rv VM harness: boot Debian's kernel in qemu as 1, 2 or 3 DLM nodes and run a guest script there.
#
#   test/vm/run.sh --kernel 6.1|6.12|RELEASE --nodes 1|2|3 --script PATH [options]
#
#   --nodes N          1: a dummy NIC; 2: the guests linked by a point-to-point UDP tunnel on
#                      127.0.0.1; 3: one L2 segment, a UDP multicast group on 127.0.0.1 (a random
#                      239.x.y.z group and a free port per run, so concurrent runs do not mix)
#   --script PATH      guest script (bash), a path on this machine's root (the guest sees the host
#                      root read-only, at the same paths); without it the guest only boots the stack
#   --out DIR          result dir (default test/vm/cache/out/<series>-<n>node-<script name>); emptied
#                      first if it holds an earlier run; gets console-node<N>.log, run.txt and, from
#                      the guest, node<N>/ (the script's files, vm-status, vm-rc, vm-logs/)
#   --timeout S        whole run, boot included (default 600); past it qemu is killed
#   --env NAME=VALUE   pass a variable to the guest script (repeatable); COLLECTOR, COLLECTOR_READY,
#                      COLLECTOR_READY_TIMEOUT, COLLECTOR_STOP_TIMEOUT, COLLECTOR_EXPECT_RC are passed from the environment
#   --accel auto|kvm|tcg   (default auto, or $VM_ACCEL: kvm only if a probe boot under KVM ends within
#                      10 s, else tcg; the verdict is cached per host boot)
#   --verifier-port P  give every guest a second NIC (qemu user networking, restricted: nothing but
#                      this) on which 10.0.2.100:7010 reaches 127.0.0.1:P on this machine, for a
#                      central verifier (collect.js --serve) running here; the guests get
#                      VM_VERIFIER=10.0.2.100:7010
#   --mem MB (1024)  --smp N (kvm: cores / nodes; tcg: 1)  --disk-mb MB (256; 0 = no disk)  -v|--verbose (console)
#   --prepare          install, download, build only; boot nothing
#
# Exit code: the guest script's (the first non-zero over the nodes), or 100 host setup failed,
# 101 a guest did not run the script to its end (boot, cluster stack, crash: see console-node<N>.log),
# 102 timeout.  Needs root (apt-get, qemu); installs what is missing.  See docs/vm.md.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"

KERNEL=6.12 NODES=1 SCRIPT= OUT= TIMEOUT=600 ACCEL=${VM_ACCEL:-auto} MEM=1024 SMP= DISK_MB=256
VERBOSE=0 PREPARE=0 ENVS=() VPORT=
usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d'; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --kernel) KERNEL=$2; shift;;
    --nodes) NODES=$2; shift;;
    --script) SCRIPT=$2; shift;;
    --out) OUT=$2; shift;;
    --timeout) TIMEOUT=$2; shift;;
    --env) ENVS+=("$2"); shift;;
    --accel) ACCEL=$2; shift;;
    --mem) MEM=$2; shift;;
    --smp) SMP=$2; shift;;
    --disk-mb) DISK_MB=$2; shift;;
    --verifier-port) VPORT=$2; shift;;
    -v|--verbose) VERBOSE=1;;
    --prepare) PREPARE=1;;
    -h|--help) usage 0;;
    *) echo "unknown argument: $1" >&2; usage;;
  esac
  shift || usage
done
case "$NODES" in 1|2|3) ;; *) echo "--nodes must be 1, 2 or 3" >&2; exit 2;; esac
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] || { echo "--timeout must be seconds" >&2; exit 2; }
[ -z "$VPORT" ] || [[ "$VPORT" =~ ^[0-9]+$ && "$VPORT" -ge 1 && "$VPORT" -le 65535 ]] || { echo "--verifier-port must be a TCP port" >&2; exit 2; }
for e in "${ENVS[@]}"; do [[ "$e" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || { echo "bad --env '$e' (NAME=VALUE)" >&2; exit 2; }; done
if [ -n "$SCRIPT" ]; then
  SCRIPT=$(readlink -f "$SCRIPT"); [ -r "$SCRIPT" ] || { echo "script $SCRIPT not readable" >&2; exit 2; }
fi
[ "$(id -u)" = 0 ] || vm_die "run as root (apt-get, qemu, 9p export of /)"
case "$VM_DIR$VM_CACHE" in *[[:space:]]*) vm_die "the harness path must not contain spaces (kernel command line)";; esac

# ---- 1-3: packages, kernel, programs, initramfs (serialized between concurrent runs)
mkdir -p "$VM_CACHE"
exec 9>"$VM_CACHE/.lock"; flock 9
vm_ensure_packages
KV=$(vm_kernel_prepare "$KERNEL") || exit $VM_RC_SETUP
KSERIES=$(vm_kernel_series "$KV")
TREE=$(vm_kernel_tree "$KV")
vm_build_programs
INITRD=$(vm_initrd "$KV") || exit $VM_RC_SETUP
flock -u 9
vm_log "kernel $KV ($TREE), initramfs $(du -h "$INITRD" | cut -f1)"
[ "$PREPARE" = 1 ] && { vm_log "prepared"; exit 0; }

KIMG=$(vm_kernel_image "$KV")
if [ "$ACCEL" = auto ]; then ACCEL=$(vm_accel_detect "$KV" "$INITRD"); fi
case "$ACCEL" in
  kvm) QACCEL=(-accel kvm);;
  tcg) QACCEL=(-accel tcg,thread=multi);;
  *) echo "--accel must be auto, kvm or tcg" >&2; exit 2;;
esac
# TCG: one vCPU per guest by default. With 2 vCPUs under multi-threaded TCG, Debian's kernels
# sporadically die at boot ("Oops: int3" in patched kernel text: cross-vCPU code patching races
# with TCG's translation cache); a single vCPU never showed it, and is barely slower here.
NCPU=$(nproc)
if [ -z "$SMP" ]; then if [ "$ACCEL" = kvm ]; then SMP=$(( NCPU / NODES )); else SMP=1; fi; fi
[ "$SMP" -ge 1 ] || SMP=1

# ---- 4. result dir, settings for the guest, shared disk
sname=boot; [ -n "$SCRIPT" ] && { sname=$(basename "$SCRIPT"); sname=${sname%.sh}; }
[ -n "$OUT" ] || OUT=$VM_CACHE/out/$KSERIES-${NODES}node-$sname
mkdir -p "$OUT" || vm_die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)
case "$OUT" in *[[:space:]]*) vm_die "--out must not contain spaces";; esac
if [ -n "$(ls -A "$OUT")" ]; then
  [ -d "$OUT/.vm" ] || vm_die "$OUT is not empty and holds no earlier run (no .vm/): refusing to clean it"
  rm -rf "${OUT:?}"/* "$OUT"/.vm
fi
mkdir -p "$OUT/.vm/barrier"
CLUSTER=dlmrv FS=fs1
{
  q() { printf 'export %s=%q\n' "$1" "$2"; }
  q VM_SCRIPT "$SCRIPT"
  q VM_SCRIPT_TIMEOUT "$(( TIMEOUT > 90 ? TIMEOUT - 45 : TIMEOUT * 2 / 3 ))"
  q VM_ACCEL "$ACCEL"; q VM_KSERIES "$KSERIES"; q VM_ROOT "$VM_ROOT"; q VM_BIN "$VM_CACHE/bin"
  q VM_CLUSTER "$CLUSTER"; q VM_GFS2_FS "$FS"
  for v in COLLECTOR COLLECTOR_READY COLLECTOR_READY_TIMEOUT COLLECTOR_STOP_TIMEOUT COLLECTOR_EXPECT_RC; do
    [ -n "${!v+x}" ] && q "$v" "${!v}"
  done
  [ -n "$VPORT" ] && q VM_VERIFIER 10.0.2.100:7010
  for e in "${ENVS[@]}"; do q "${e%%=*}" "${e#*=}"; done
} > "$OUT/.vm/env"

TMP=$(mktemp -d "$VM_CACHE/tmp.XXXXXX")
PIDS=()
cleanup() {
  local p; for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
DISK=()
if [ "$DISK_MB" -gt 0 ]; then
  truncate -s "${DISK_MB}M" "$TMP/gfs2.img"
  mkfs.gfs2 -O -p lock_dlm -t "$CLUSTER:$FS" -j "$NODES" -J 16 "$TMP/gfs2.img" >"$TMP/mkfs.log" 2>&1 \
    || { cat "$TMP/mkfs.log" >&2; vm_die "mkfs.gfs2 failed"; }
  DISK=(-drive "file=$TMP/gfs2.img,format=raw,if=none,id=d0,cache=writeback,file.locking=off"
        -device virtio-blk-pci,drive=d0,share-rw=on)
fi
PORT= MCAST=
udp_port_free() { ! ss -Huln | awk '{print $4}' | grep -qE ":($(IFS='|'; echo "$*"))\$"; }
if [ "$NODES" = 2 ]; then   # two free UDP ports on loopback for the point-to-point tunnel
  for i in $(seq 1 50); do
    p=$(( 20000 + (RANDOM % 20000) * 2 ))
    if udp_port_free "$p" "$((p + 1))"; then PORT=$p; break; fi
  done
  [ -n "$PORT" ] || vm_die "no free UDP port pair on 127.0.0.1"
elif [ "$NODES" -gt 2 ]; then   # one shared segment: a multicast group on loopback, random per run
  # (qemu binds each guest's socket to the group address: only this group's datagrams reach it;
  # a free port on top makes a clash with a concurrent run's group or tunnel unlikely twice over)
  for i in $(seq 1 50); do
    p=$(( 20000 + RANDOM % 40000 ))
    if udp_port_free "$p"; then PORT=$p; break; fi
  done
  [ -n "$PORT" ] || vm_die "no free UDP port on 127.0.0.1"
  MCAST=239.$(( RANDOM % 254 + 1 )).$(( RANDOM % 254 + 1 )).$(( RANDOM % 254 + 1 )):$PORT
fi

# ---- 5. boot
qemu_node() {  # $1 node id
  local id=$1 net=()
  if [ "$NODES" = 2 ]; then
    local me=$(( PORT + id - 1 )) peer=$(( PORT + 2 - id ))
    net=(-netdev "socket,id=n0,udp=127.0.0.1:$peer,localaddr=127.0.0.1:$me"
         -device "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:0$id,romfile=")
  elif [ -n "$MCAST" ]; then   # every guest sends to the group and hears all (its own frames too)
    net=(-netdev "socket,id=n0,mcast=$MCAST,localaddr=127.0.0.1"
         -device "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:0$id,romfile=")
  fi
  if [ -n "$VPORT" ]; then   # restrict=on: the guest reaches nothing but the forwarded port
    net+=(-netdev "user,id=n1,restrict=on,guestfwd=tcp:10.0.2.100:7010-tcp:127.0.0.1:$VPORT"
          -device "virtio-net-pci,netdev=n1,mac=52:54:00:12:35:0$id,romfile=")
  fi
  exec timeout --kill-after=10 "$TIMEOUT" qemu-system-x86_64 "${QACCEL[@]}" -smp "$SMP" -m "$MEM" \
    -nodefaults -no-user-config -no-reboot -display none -serial "file:$OUT/console-node$id.log" \
    -kernel "$KIMG" -initrd "$INITRD" \
    -append "console=ttyS0 panic=-1 loglevel=4 vm_dir=$VM_DIR vm_kdir=$TREE vm_node=$id vm_nodes=$NODES" \
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
    -virtfs "local,path=$OUT,mount_tag=vmout,security_model=none,multidevs=remap" \
    "${net[@]}" "${DISK[@]}"
}
vm_log "booting $NODES guest(s): $ACCEL, -smp $SMP -m $MEM, script ${SCRIPT:-none}, out $OUT${MCAST:+, segment udp mcast $MCAST}"
TB=$(date +%s.%N)
for id in $(seq 1 "$NODES"); do
  qemu_node "$id" > "$OUT/.vm/qemu-node$id.log" 2>&1 &
  PIDS+=($!)
done
TAIL=
if [ "$VERBOSE" = 1 ]; then
  sleep 0.2; tail -q -n +1 -F $(for id in $(seq 1 "$NODES"); do echo "$OUT/console-node$id.log"; done) >&2 2>/dev/null &
  TAIL=$!
fi
QRC=()
for i in "${!PIDS[@]}"; do wait "${PIDS[$i]}"; QRC[$i]=$?; done
PIDS=()
[ -n "$TAIL" ] && { sleep 0.3; kill "$TAIL" 2>/dev/null; wait "$TAIL" 2>/dev/null; }
WALL=$(vm_elapsed "$TB")

# ---- 6. verdict
rc=0; timedout=0; noboot=0; lines=()
for id in $(seq 1 "$NODES"); do
  q=${QRC[$((id - 1))]}; d=$OUT/node$id; nrc=-
  [ -f "$d/vm-rc" ] && nrc=$(cat "$d/vm-rc")
  st=$(grep -m1 'FAILED' "$d/vm-status" 2>/dev/null | sed 's/^VM-T node[0-9]* //')
  t_q=$(awk '/corosync quorate/{print $3; exit}' "$d/vm-status" 2>/dev/null)
  t_s=$(awk '/script start/{print $3; exit}' "$d/vm-status" 2>/dev/null)
  t_e=$(awk '/script end/{print $3; exit}' "$d/vm-status" 2>/dev/null)
  if [ "$q" = 124 ] || [ "$q" = 137 ]; then timedout=1; st="qemu killed after ${TIMEOUT}s${st:+; $st}"
  elif [ -f "$d/vm-timedout" ]; then timedout=1; st="script timed out in the guest"
  elif [ "$nrc" = - ]; then noboot=1; [ -n "$st" ] || st="no script result (qemu rc=$q)"
  elif [ "$nrc" != 0 ] && [ "$rc" = 0 ]; then rc=$nrc; fi
  lines+=("node$id: script rc=$nrc, quorate at ${t_q:-?}s, script ${t_s:-?}s..${t_e:-?}s guest uptime${st:+, $st}")
done
[ "$noboot" = 1 ] && rc=$VM_RC_BOOT
[ "$timedout" = 1 ] && rc=$VM_RC_TIMEOUT
{
  echo "kernel $KV ($KSERIES), nodes $NODES, accel $ACCEL, smp $SMP, mem $MEM"
  echo "script ${SCRIPT:-none}"
  printf '%s\n' "${lines[@]}"
  echo "guests ran ${WALL}s (wall), total $(vm_elapsed)s, exit $rc"
} > "$OUT/run.txt"
sed 's/^/[vm] /' "$OUT/run.txt" >&2
if [ "$rc" = "$VM_RC_BOOT" ] || [ "$rc" = "$VM_RC_TIMEOUT" ]; then
  for id in $(seq 1 "$NODES"); do echo "---- last lines of $OUT/console-node$id.log" >&2; tail -25 "$OUT/console-node$id.log" >&2; done
fi
exit "$rc"
