#!/bin/bash
# dlm-rv VM harness, guest stage 2: runs as PID 1 on a tmpfs overlay of the host root.
# Sets up mounts, modules (dlm and gfs2 explicitly: no autoload, and dlm must be loaded before any
# BPF object so libbpf finds its BTF), the network, corosync + dlm_controld, waits for quorum, runs
# the caller's guest script, saves logs, powers off.  /out is the writable result share; the host
# wrote the run's settings to /out/.vm/env.  Progress lines "VM-T node<N> <uptime> ..." go to the
# console and to /out/node<N>/vm-status; the script's exit code to /out/node<N>/vm-rc.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 TERM=dumb
for a in $(cat /proc/cmdline); do case "$a" in vm_*=*) export "$a";; esac; done
ID=${vm_node:-1}; NODES=${vm_nodes:-1}
# shellcheck disable=SC1091
[ -f /out/.vm/env ] && . /out/.vm/env
export VM_NODE=$ID VM_NODES=$NODES VM_OUT=/out VM_NODE_OUT=/out/node$ID VM_DIR=$vm_dir
export VM_KERNEL=$(uname -r)
if [ "${VM_XTRACE:-0}" = 1 ]; then PS4='+ ${EPOCHREALTIME} '; set -x; fi
mkdir -p "$VM_NODE_OUT"
STATUS=$VM_NODE_OUT/vm-status
up() { cut -d' ' -f1 /proc/uptime; }
mark() { local l="VM-T node$ID $(up) $*"; echo "$l"; echo "$l" >> "$STATUS"; }
finish() {
  trap - EXIT
  mark "poweroff"
  sync; echo o > /proc/sysrq-trigger; sleep 60
}
trap finish EXIT
fatal() { mark "FAILED: $*"; dmesg > "$VM_NODE_OUT/dmesg.txt" 2>&1; exit 1; }
. "$vm_dir/guest/lib.sh"
mark "stage2 start, kernel $VM_KERNEL, accel ${VM_ACCEL:-?}, $(nproc) cpu"

# ---- mounts
# /run fresh (the host's pid files and sockets would mislead corosync & co); /tmp stays the host's,
# written through the overlay, so guest scripts kept in the host's /tmp are visible
mount -t tmpfs tmpfs /run
mkdir -p /dev/pts /dev/shm /run/lock
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
hostname "node$ID"
echo "127.0.0.1 localhost" > /etc/hosts
for n in $(seq 1 "$NODES"); do echo "192.168.100.$n node$n" >> /etc/hosts; done

# ---- modules: no udev, no autoload; dlm first (before anything BPF), gfs2 explicitly
modprobe virtio_blk 2>/dev/null
modprobe dlm || fatal "modprobe dlm"
modprobe gfs2 || fatal "modprobe gfs2"
mountpoint -q /sys/kernel/config || mount -t configfs configfs /sys/kernel/config || fatal "configfs"
# libdlm and dlm_controld open /dev/misc/dlm-control, /dev/misc/dlm_<lockspace>...; devtmpfs creates
# them directly in /dev, so /dev/misc is made a link to /dev (works for any lockspace name)
ln -sfn . /dev/misc

# ---- network: a dummy NIC (1 node) or the qemu UDP tunnel between the guests (2 nodes, MAC
# 52:54:00:12:34:*); with run.sh --verifier-port also a NIC (52:54:00:12:35:*) to the host's verifier
ip link set lo up
IP=192.168.100.$ID
nic_by_mac() {   # MAC-PREFIX: the interface name, waiting up to 10 s for the driver
  local end i; end=$(vm_deadline 10)
  while :; do
    for i in /sys/class/net/*; do case "$(cat "$i/address" 2>/dev/null)" in "$1"*) echo "${i##*/}"; return 0;; esac; done
    vm_before "$end" || return 1
    sleep 0.1
  done
}
if [ "$NODES" -gt 1 ] || [ -n "${VM_VERIFIER:-}" ]; then modprobe virtio_net || fatal "modprobe virtio_net"; fi
if [ "$NODES" -gt 1 ]; then
  IF=$(nic_by_mac 52:54:00:12:34:) || fatal "no virtio NIC for the cluster"
else
  modprobe dummy numdummies=0 || fatal "modprobe dummy"
  ip link add dlm0 type dummy; IF=dlm0
fi
ip addr add "$IP/24" dev "$IF" && ip link set "$IF" up || fatal "network setup on $IF"
if [ -n "${VM_VERIFIER:-}" ]; then
  VIF=$(nic_by_mac 52:54:00:12:35:) || fatal "no virtio NIC for the verifier"
  ip addr add 10.0.2.15/24 dev "$VIF" && ip link set "$VIF" up || fatal "network setup on $VIF"
  VNOTE=", verifier $VM_VERIFIER via $VIF=10.0.2.15"
fi
[ -b /dev/vda ] && export VM_GFS2_DEV=/dev/vda
mark "modules+net: $(lsmod | awk 'NR>1{print $1}' | grep -E '^(dlm|gfs2|configfs)$' | xargs), $IF=$IP${VNOTE:-}"

# ---- cluster stack: corosync (knet) + dlm_controld without fencing
CLUSTER=${VM_CLUSTER:-dlmrv}
mkdir -p /etc/corosync /var/log/corosync /var/lib/corosync /var/log/dlm_controld /var/run/dlm_controld
{
  echo "totem {"
  echo "  version: 2"; echo "  cluster_name: $CLUSTER"; echo "  transport: knet"
  echo "  crypto_cipher: none"; echo "  crypto_hash: none"; echo "  token: ${VM_TOKEN_MS:-5000}"
  echo "}"
  echo "nodelist {"
  for n in $(seq 1 "$NODES"); do echo "  node {"; echo "    ring0_addr: 192.168.100.$n"; echo "    name: node$n"; echo "    nodeid: $n"; echo "  }"; done
  echo "}"
  echo "quorum {"; echo "  provider: corosync_votequorum"; [ "$NODES" = 2 ] && echo "  two_node: 1"; echo "}"
  echo "logging {"; echo "  to_logfile: yes"; echo "  logfile: /var/log/corosync/corosync.log"
  echo "  to_syslog: no"; echo "  to_stderr: no"; echo "  timestamp: on"; echo "}"
} > /etc/corosync/corosync.conf
vm_barrier vm-boot "${VM_BARRIER_TIMEOUT:-120}" || fatal "the other node did not boot"
mark "corosync start"
corosync || fatal "corosync did not start"
QT=${VM_QUORUM_TIMEOUT:-120}
end=$(vm_deadline "$QT")
while ! corosync-quorumtool -s 2>/dev/null | grep -q 'Quorate: *Yes' && vm_before "$end"; do sleep 0.2; done
corosync-quorumtool -s 2>/dev/null | grep -q 'Quorate: *Yes' || { cp /var/log/corosync/corosync.log "$VM_NODE_OUT/" 2>/dev/null; fatal "corosync not quorate after ${QT}s"; }
mark "corosync quorate"
dlm_controld --enable_fencing 0 || fatal "dlm_controld did not start"
end=$(vm_deadline "$QT")
while ! dlm_tool status 2>/dev/null | grep -q 'quorate 1' && vm_before "$end"; do sleep 0.2; done
dlm_tool status 2>/dev/null | grep -q 'quorate 1' || fatal "dlm_controld not quorate after ${QT}s"
mark "dlm_controld up: $(dlm_tool status 2>/dev/null | head -1)"

# ---- the caller's script
RC=
if [ -z "${VM_SCRIPT:-}" ]; then
  mark "no script given (boot test only)"; RC=0
elif [ ! -r "$VM_SCRIPT" ]; then
  mark "FAILED: script $VM_SCRIPT not readable in the guest"; RC=127
else
  ST=${VM_SCRIPT_TIMEOUT:-600}
  mark "script start: $VM_SCRIPT (timeout ${ST}s)"
  t0=$(up)
  (cd "$VM_NODE_OUT" && exec timeout --kill-after=5 "$ST" env --default-signal=INT,QUIT bash "$VM_SCRIPT") 2>&1 \
    | tee "$VM_NODE_OUT/script.log"
  RC=${PIPESTATUS[0]}
  el=$(awk -v a="$t0" -v b="$(up)" 'BEGIN{printf "%.1f", b-a}')
  if [ "$RC" = 124 ] && awk -v e="$el" -v s="$ST" 'BEGIN{exit !(e >= s)}'; then
    echo timeout > "$VM_NODE_OUT/vm-timedout"; mark "script TIMEOUT after ${el}s"
  fi
  mark "script end: rc=$RC after ${el}s"
fi
echo "$RC" > "$VM_NODE_OUT/vm-rc"

# ---- logs
mkdir -p "$VM_NODE_OUT/vm-logs"
dmesg > "$VM_NODE_OUT/vm-logs/dmesg.txt" 2>&1
cp /var/log/corosync/corosync.log "$VM_NODE_OUT/vm-logs/" 2>/dev/null
dlm_tool dump > "$VM_NODE_OUT/vm-logs/dlm_controld.dump" 2>&1
if grep -qE 'BUG:|Oops|WARNING:|Call Trace|general protection' "$VM_NODE_OUT/vm-logs/dmesg.txt"; then
  mark "WARNING: kernel BUG/WARNING/Oops in dmesg (vm-logs/dmesg.txt)"
fi
vm_barrier vm-end "${VM_BARRIER_TIMEOUT:-120}" || mark "the other node did not reach the end"
mark "done"
