# dlm-rv VM harness: helpers for guest scripts.  Source it:   . "$VM_DIR/guest/lib.sh"
#
# Environment every guest script gets (set by stage2.sh):
#   VM_NODE (1|2) VM_NODES  VM_OUT=/out (shared by all nodes, written back to the host's --out dir)
#   VM_NODE_OUT=/out/node<N> (this node's results; the script's cwd)  VM_DIR (test/vm on the host root)
#   VM_ROOT (the project checkout)  VM_BIN (host-built guest programs: dlmload)  VM_KERNEL (uname -r)
#   VM_KSERIES (6.1|6.12)  VM_ACCEL (kvm|tcg)  VM_CLUSTER (corosync cluster name)  VM_GFS2_FS (fs name)
#   VM_GFS2_DEV (/dev/vda when a disk is attached; 2 nodes: formatted by the host with -j 2)
#   and every --env NAME=VALUE given to run.sh.  Each example script sets VM_WORKLOAD (libdlm, gfs2)
#   before it starts the collector.
#
# Functions:
#   vm_log MSG...                  "VM-T node<N> <uptime> MSG" on the console and in vm-status
#   vm_barrier NAME [TIMEOUT_S]    wait until every node reached NAME (files in /out/.vm/barrier)
#   vm_trace_start                 tracefs: enable events/dlm only, clear the buffer, tracing on
#   vm_trace_stop NAME             tracing off; save trace-NAME.txt, trace-NAME.stats, trace-NAME.counts
#   vm_collector_start             if $COLLECTOR is set: start it in the background (bash -c, so it may
#                                  use guest variables: $VM_NODE_OUT, $VM_WORKLOAD...), wait for a line
#                                  matching $COLLECTOR_READY (ERE, default "attached") in its output,
#                                  collector-$VM_WORKLOAD.log (COLLECTOR_READY_TIMEOUT, 60 s)
#   vm_collector_stop              SIGINT the collector's process group, wait for it (COLLECTOR_STOP_TIMEOUT, 60 s, then
#                                  SIGKILL); its exit code goes to collector-$VM_WORKLOAD.rc and is returned
#   vm_compare EXPECT COUNTS       compare "expect KEY N" lines with "KEY N" lines; 0 if all equal
VM_T=/sys/kernel/tracing

# deadlines in microseconds from bash's clock (no process): under TCG every exec costs tens of ms
# or more, so wait loops are bounded by time, not by a number of iterations
vm_deadline() { echo $(( ${EPOCHREALTIME/./} + $1 * 1000000 )); }   # SECONDS -> deadline
vm_before() { (( ${EPOCHREALTIME/./} < $1 )); }                      # DEADLINE -> still before it?

vm_log() {
  local l="VM-T node${VM_NODE:-?} $(cut -d' ' -f1 /proc/uptime) $*"
  echo "$l"; [ -n "${VM_NODE_OUT:-}" ] && echo "$l" >> "$VM_NODE_OUT/vm-status"
  return 0
}

vm_barrier() {   # NAME [TIMEOUT_S]: rendezvous of all nodes through the shared /out
  local name=$1 to=${2:-${VM_BARRIER_TIMEOUT:-120}} d=/out/.vm/barrier n end
  [ "${VM_NODES:-1}" -gt 1 ] || return 0
  local -a f
  mkdir -p "$d"; : > "$d/$name.node$VM_NODE"
  end=$(vm_deadline "$to")
  while :; do
    f=("$d/$name".node*); n=${#f[@]}   # a glob, not ls | grep: no process per poll
    [ "$n" -ge "$VM_NODES" ] && return 0
    vm_before "$end" || break
    sleep 0.2
  done
  vm_log "barrier $name TIMEOUT after ${to}s ($n of $VM_NODES nodes)"
  return 1
}

vm_trace_start() {
  [ -d $VM_T/events/dlm ] || { vm_log "tracefs: no events/dlm"; return 1; }
  echo 0 > $VM_T/tracing_on
  echo "${VM_TRACE_BUF_KB:-4096}" > $VM_T/buffer_size_kb
  echo 0 > $VM_T/events/enable
  echo 1 > $VM_T/events/dlm/enable
  echo > $VM_T/trace
  echo 1 > $VM_T/tracing_on
  vm_log "tracefs: $(ls $VM_T/events/dlm | grep -v -E '^(enable|filter)$' | wc -l) dlm events on, buffer $(cat $VM_T/buffer_size_kb) KiB/cpu"
}

vm_trace_stop() {   # NAME
  local name=${1:-dlm} o c ov
  o=$VM_NODE_OUT/trace-$name
  echo 0 > $VM_T/tracing_on
  cat $VM_T/trace > "$o.txt"
  for c in $VM_T/per_cpu/cpu*; do echo "== $c"; cat "$c/stats"; done > "$o.stats"
  ov=$(awk '/^overrun:|^dropped events:/{s += $NF} END{print s + 0}' "$o.stats")
  { awk -f "$VM_DIR/tracecount.awk" "$o.txt" | sort; echo "trace_overrun $ov"; } > "$o.counts"
  echo 0 > $VM_T/events/dlm/enable
  echo > $VM_T/trace
  echo 1 > $VM_T/tracing_on
  vm_log "tracefs $name: $(grep -c -v '^#' "$o.txt") events, overrun $ov; $(grep '^tp\.' "$o.counts" | sed 's/^tp\.dlm_//' | tr ' \n' '= ')"
  [ "$ov" = 0 ]
}

VM_COLLECTOR_PID=
vm_collector_start() {
  [ -n "${COLLECTOR:-}" ] || return 0
  local re=${COLLECTOR_READY:-attached} to=${COLLECTOR_READY_TIMEOUT:-60} end
  local log=$VM_NODE_OUT/collector-${VM_WORKLOAD:-run}.log
  vm_log "collector start: $COLLECTOR"
  : > "$log"
  # background jobs of a non-interactive shell ignore SIGINT: restore it for the collector; its own
  # session / process group, so that the stop signal reaches all of it, as a Ctrl-C would
  ( exec setsid env --default-signal=INT,QUIT,TERM bash -c "exec $COLLECTOR" ) >> "$log" 2>&1 &
  VM_COLLECTOR_PID=$!
  end=$(vm_deadline "$to")
  while vm_before "$end"; do
    if grep -qE "$re" "$log" 2>/dev/null; then vm_log "collector ready (pid $VM_COLLECTOR_PID): $(grep -m1 -E "$re" "$log")"; return 0; fi
    if ! kill -0 "$VM_COLLECTOR_PID" 2>/dev/null; then
      wait "$VM_COLLECTOR_PID"; echo $? > "$VM_NODE_OUT/collector-${VM_WORKLOAD:-run}.rc"
      vm_log "collector exited (rc=$(cat "$VM_NODE_OUT/collector-${VM_WORKLOAD:-run}.rc")) before it was ready; log:"; tail -20 "$log"
      VM_COLLECTOR_PID=; return 1
    fi
    sleep 0.1
  done
  vm_log "collector not ready after ${to}s (no line matching /$re/); stopping it; log:"; tail -20 "$log"
  COLLECTOR_STOP_TIMEOUT=5 vm_collector_stop
  return 1
}

vm_collector_stop() {
  [ -n "$VM_COLLECTOR_PID" ] || return 0
  local to=${COLLECTOR_STOP_TIMEOUT:-60} rc end
  kill -INT -- "-$VM_COLLECTOR_PID" 2>/dev/null || kill -INT "$VM_COLLECTOR_PID" 2>/dev/null
  end=$(vm_deadline "$to")
  while vm_before "$end" && kill -0 "$VM_COLLECTOR_PID" 2>/dev/null; do sleep 0.1; done
  if kill -0 "$VM_COLLECTOR_PID" 2>/dev/null; then
    vm_log "collector still running ${to}s after SIGINT: SIGKILL"
    kill -KILL -- "-$VM_COLLECTOR_PID" 2>/dev/null || kill -KILL "$VM_COLLECTOR_PID"
  fi
  wait "$VM_COLLECTOR_PID"; rc=$?
  echo "$rc" > "$VM_NODE_OUT/collector-${VM_WORKLOAD:-run}.rc"
  vm_log "collector stopped: rc=$rc"
  VM_COLLECTOR_PID=
  return "$rc"
}

vm_compare() {   # EXPECT_FILE COUNTS_FILE: "expect KEY N" vs "KEY N"
  local exp=$1 cnt=$2
  awk 'FNR == NR { if ($1 == "expect") { e[$2] = $3; order[++n] = $2 }; next } { c[$1] = $2 }
       END { bad = 0
             for (i = 1; i <= n; i++) { k = order[i]; got = (k in c) ? c[k] : 0; ok = (got == e[k]); if (!ok) bad++
                            printf "  %-20s expected %6d  counted %6d  %s\n", k, e[k], got, ok ? "ok" : "MISMATCH" }
             exit bad != 0 }' "$exp" "$cnt"
}
