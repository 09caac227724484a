#!/bin/bash
# Guest script: a node that CRASHES while holding DLM locks, and the survivor recovering without it.
# gfs2 (lock_dlm) on a disk shared by two nodes; both create and read files in one directory, then
# node2 appends to its own files and to half of node1's (its glocks go to EX), reads the other half
# (PR) and creates one more file (the directory glock EX), syncs, and keeps all of that cached;
# node2 then saves its trace and results, says it crashes on purpose (vm-rc 0, vm-crashed, and its
# file of stage2's vm-end barrier, which it will never reach) and reboots hard (sysrq b: no unmount,
# no unlock; qemu runs with -no-reboot, so it exits).
# Its collector dies with it.  Node1 waits until dlm_controld has recovered the lockspace without
# node2, then reads and appends to every file of the directory (each one's glock was held EX or PR
# by node2 when it died: the DLM purges node2's locks in recovery, gfs2 replays node2's journal, then
# node1 is granted), checks the content (node2's synced appends survived), removes the directory,
# unmounts, stops the collector and tracefs.
#   test/vm/run.sh --kernel 6.12 --nodes 2 --script test/vm/guest/gfs2-crash.sh
# env: GFS2_FILES (20, per node)  TRACE (1)  COLLECTOR / COLLECTOR_READY  COLLECTOR_EXPECT_RC (0)
#      CRASH_RECOVERY_TIMEOUT (180 s: node1's bound on each of: seeing the crash, dlm recovery, the
#      first access after it)
# Files in node<N>/: gfs2.out, trace-gfs2.{txt,stats,counts}, collector-gfs2.log (node1: .rc too),
#      purge-traceable.txt (dlm_recover_purge in available_filter_functions);  node2: inodes.txt
#      (ls -i of the directory before the crash), glocks.txt (debugfs, before the crash), held.txt (its
#      glocks on the directory's files by state), dlm-locks.txt (dlm_tool lockdebug), vm-crashed,
#      vm-logs/dmesg.txt;  node1: recovery.txt (dlm_tool ls while waiting), recovery-dmesg.txt,
#      crash-timeline.txt (from its trace, in seconds after node1 saw vm-crashed: the dlm_ls_stop/
#      start, dlm_recover_purge, dlm_recover_grant kprobes, the first request and the first grant on
#      an inode glock node2 held EX or PR)
# The trace also holds kprobe events (group dlmrv: ls_stop, ls_start, purge, purge_ret, grant on
# dlm_ls_stop, dlm_ls_start, dlm_recover_purge, dlm_recover_grant) and trace_marker lines
# ("dlmrv ..."); tracecount.awk counts dlm_* events only.
# Exit: node1: 0 ok, 1 gfs2 workload / recovery failed, 2 tracefs, 3/4 collector (as gfs2-1node.sh);
#      node2 never exits: it writes vm-rc 0 itself before crashing (1 if it is still alive after).
. "$VM_DIR/guest/lib.sh"
export VM_WORKLOAD=gfs2
. "$VM_DIR/guest/gfs2-work.sh"
TRACE=${TRACE:-1}
F=${GFS2_FILES:-20}
RTO=${CRASH_RECOVERY_TIMEOUT:-180}
M=$GFS2_MNT
[ "$VM_NODES" = 2 ] || { vm_log "needs --nodes 2"; exit 1; }
[ -b "${VM_GFS2_DEV:-}" ] || { vm_log "no gfs2 disk"; exit 1; }
mark() { [ "$TRACE" = 1 ] && echo "dlmrv $*" > $VM_T/trace_marker; vm_log "$*"; }
grep -w dlm_recover_purge $VM_T/available_filter_functions > purge-traceable.txt 2>&1
vm_log "dlm_recover_purge traceable: $(cat purge-traceable.txt)"

rc=0
if [ "$TRACE" = 1 ]; then
  vm_trace_start || exit 2
  # recovery landmarks on the same timeline (kprobes: dlm is a module, loaded by stage2)
  {
    echo 'p:dlmrv/ls_stop dlm_ls_stop'
    echo 'p:dlmrv/ls_start dlm_ls_start'
    echo 'p:dlmrv/purge dlm_recover_purge'
    echo 'r:dlmrv/purge_ret dlm_recover_purge'
    echo 'p:dlmrv/grant dlm_recover_grant'
  } >> $VM_T/kprobe_events && echo 1 > $VM_T/events/dlmrv/enable \
    || vm_log "kprobes on dlm recovery functions: FAILED (timeline without them)"
fi
vm_collector_start || exit 3
vm_barrier c-start || exit 1
gfs2_mount || { vm_barrier c-mounted 10; exit 1; }
vm_barrier c-mounted || exit 1

# ---- before the crash, both nodes
work_before() {
  local i x L
  if [ "$VM_NODE" = 1 ]; then mkdir "$M/shared" || return 1; fi
  vm_barrier c-dir || return 1
  for i in $(seq 1 "$F"); do echo "node$VM_NODE f$i" > "$M/shared/n$VM_NODE-f$i"; done
  vm_barrier c-created || return 1
  # each reads the other's files (PR on both nodes)
  for x in "$M"/shared/n$((3 - VM_NODE))-f*; do mapfile -t L < "$x"; [ "${#L[@]}" = 1 ] || { echo "CONTENT MISMATCH $x"; return 1; }; done
  vm_barrier c-read || return 1
  if [ "$VM_NODE" = 2 ]; then
    # node2 alone: EX on its own files and on node1's odd ones, PR on node1's even ones, EX on
    # the directory; synced (so its writes must survive), glocks left cached
    for i in $(seq 1 "$F"); do echo "node2 append" >> "$M/shared/n2-f$i"; done
    for i in $(seq 1 2 "$F"); do echo "node2 append" >> "$M/shared/n1-f$i"; done
    for i in $(seq 2 2 "$F"); do mapfile -t L < "$M/shared/n1-f$i"; done
    echo "node2 last" > "$M/shared/n2-last"
    sync
    ls -i "$M/shared" > inodes.txt || return 1
    echo "node2: $(wc -l < inodes.txt) files in shared/ (expected $((2 * F + 1)))"
    [ "$(wc -l < inodes.txt)" = $((2 * F + 1)) ] || return 1
  fi
  return 0
}
work_before > gfs2.out 2>&1 || rc=1
cat gfs2.out
vm_barrier c-armed || exit 1

if [ "$VM_NODE" = 2 ]; then
  # ---- node2: record what it holds, then die with it
  gl=/sys/kernel/debug/gfs2/$VM_CLUSTER:$VM_GFS2_FS/glocks
  cat "$gl" > glocks.txt 2>&1
  # its glocks on the directory's inodes (type 2) by state, from inodes.txt (decimal) and glocks.txt
  awk 'FNR == NR { ino[sprintf("%x", $1)] = $2; next }
       /^G:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^s:/) s = substr($i, 3); if ($i ~ /^n:/) n = substr($i, 3) }
               split(n, p, "/"); if (p[1] == 2 && (p[2] in ino)) { c[s]++; if (s != "UN") f[s] = f[s] " " ino[p[2]] } }
       END { for (s in c) printf "%s %d:%s\n", s, c[s], f[s] }' inodes.txt glocks.txt | sort > held.txt
  dlm_tool lockdebug "$VM_GFS2_FS" > dlm-locks.txt 2>&1
  vm_log "node2 holds, on the $(wc -l < inodes.txt) inodes of shared/: $(awk '{ print $1, $2 }' held.txt | tr '\n' ' ')"
  if [ "$TRACE" = 1 ]; then
    echo 0 > $VM_T/events/dlmrv/enable 2>/dev/null
    vm_trace_stop gfs2 || { [ "$rc" = 0 ] && rc=2; }
    gfs2_check_counts trace-gfs2.counts || { [ "$rc" = 0 ] && rc=2; }
  fi
  mkdir -p vm-logs; dmesg > vm-logs/dmesg.txt 2>&1
  if [ "$rc" != 0 ]; then vm_log "node2: something failed before the crash (rc=$rc): not crashing"; exit "$rc"; fi
  # stage2.sh will never write vm-rc nor reach its end barrier: do both now (node1's stage2 would
  # otherwise wait 120 s for node2 at vm-end)
  : > /out/.vm/barrier/vm-end.node2
  echo 0 > vm-rc
  echo 1 > /proc/sys/kernel/sysrq
  vm_log "node2 crashes NOW on purpose (sysrq b), holding its locks; collector pid $VM_COLLECTOR_PID dies with it"
  echo "crashed on purpose: sysrq b at uptime $(cut -d' ' -f1 /proc/uptime)" > vm-crashed
  echo b > /proc/sysrq-trigger
  sleep 30
  vm_log "node2 still alive 30 s after sysrq b: FAILED"; rm -f vm-crashed /out/.vm/barrier/vm-end.node2
  exit 1
fi

# ---- node1: the survivor.  Never waits for node2 from here on.
wait_for() {  # WHAT SECONDS COMMAND...: run COMMAND every 0.2 s until it succeeds, at most SECONDS
  local what=$1 to=$2 end; end=$(vm_deadline "$2"); shift 2
  until "$@"; do vm_before "$end" || { vm_log "$what: not after ${to}s: FAILED"; return 1; }; sleep 0.2; done
}
t_up() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v a="$1" -v b="$(t_up)" 'BEGIN { printf "%.2f", b - a }'; }
recovered() {  # dlm_tool ls: the lockspace's members are node1 alone, no change pending, not stopped
  local o; o=$(dlm_tool ls 2>&1); { echo "== $(t_up)"; echo "$o"; } >> recovery.txt
  awk -v ls="$VM_GFS2_FS" '$1 == "name" { in_ls = ($2 == ls) } in_ls && $1 == "members" { m = $2 " " NF }
       in_ls && $1 == "new" { pending = 1 } in_ls && $1 == "flags" && /stop/ { pending = 1 }
       END { exit !(m == "1 2" && !pending) }' <<< "$o"
}
after_crash() {   # read and append to every file of the directory, check what node2 left
  local x L n bad=0 t0; t0=$(t_up)
  mapfile -t L < "$M/shared/n2-f1" || return 1
  mark "first access after the crash: n2-f1 read after $(since "$t0") s (${#L[@]} lines)"
  for x in "$M"/shared/*; do
    mapfile -t L < "$x"; n=${#L[@]}
    case "${x##*/}" in n2-last) e=1;; n2-f*) e=2;; n1-f*) i=${x##*-f}; e=$(( i % 2 ? 2 : 1 ));; *) echo "UNEXPECTED FILE $x"; bad=1; continue;; esac
    [ "$n" = "$e" ] || { echo "CONTENT MISMATCH ${x##*/}: $n lines, expected $e: ${L[*]}"; bad=1; }
    echo "node1 after crash" >> "$x" || bad=1
    mapfile -t L < "$x"; [ "${#L[@]}" = $((e + 1)) ] || { echo "APPEND LOST ${x##*/}: ${#L[@]} lines"; bad=1; }
  done
  mark "read and appended to $(ls "$M/shared" | wc -l) files after $(since "$t0") s (node2's content: $([ "$bad" = 0 ] && echo intact || echo MISMATCH))"
  rm -rf "$M/shared" || return 1
  mark "removed shared/ after $(since "$t0") s"
  return "$bad"
}

crashed_or_failed() {  # node2 crashed on purpose, or its script ended without crashing (its vm-rc not 0)
  [ -f /out/node2/vm-crashed ] || { [ -s /out/node2/vm-rc ] && [ "$(< /out/node2/vm-rc)" != 0 ]; }
}
wait_for "node2's crash marker" "$RTO" crashed_or_failed || exit 1
[ -f /out/node2/vm-crashed ] || { vm_log "node2 did not crash: its script failed (rc $(< /out/node2/vm-rc))"; exit 1; }
T0=$(t_up)
mark "crash seen (node2: $(cat /out/node2/vm-crashed))"
wait_for "dlm recovery without node2" "$RTO" recovered || { tail -20 recovery.txt; exit 1; }
mark "dlm_tool ls: lockspace $VM_GFS2_FS recovered, members 1, $(since "$T0") s after the crash was seen"
# the access blocks until the kernel's recovery and gfs2's journal replay end: bounded from here
after_crash >> gfs2.out 2>&1 &
AP=$!
end=$(vm_deadline "$RTO")
while kill -0 "$AP" 2>/dev/null && vm_before "$end"; do sleep 0.2; done
if kill -0 "$AP" 2>/dev/null; then
  vm_log "access to node2's files still blocked ${RTO}s after recovery: FAILED"; cat gfs2.out
  dlm_tool ls; dmesg | tail -30; exit 1
fi
wait "$AP" || rc=1
cat gfs2.out
mark "post-crash work done $(since "$T0") s after the crash was seen (rc=$rc)"
dmesg | grep -iE 'gfs2|dlm' | tail -25 > recovery-dmesg.txt
gfs2_umount || rc=1
if [ -n "${COLLECTOR:-}" ]; then
  vm_collector_stop; crc=$?
  [ "$crc" = "${COLLECTOR_EXPECT_RC:-0}" ] || { [ "$rc" = 0 ] && rc=4; }
fi
if [ "$TRACE" = 1 ]; then
  echo 0 > $VM_T/events/dlmrv/enable 2>/dev/null
  vm_trace_stop gfs2 || { [ "$rc" = 0 ] && rc=2; }
  gfs2_check_counts trace-gfs2.counts || { [ "$rc" = 0 ] && rc=2; }
  echo > $VM_T/kprobe_events
  # the recovery on node1's timeline: resources node2 held = inode glocks (type 2) of the files in
  # node2's held.txt (EX / SH), their res_name as the dlm tracepoints print it (hex of "%8x%16x")
  awk 'function hexname(t, n,   s, i, o) { s = sprintf("%8x%16x", t, n); o = ""
         for (i = 1; i <= length(s); i++) { c = substr(s, i, 1); o = o (c == " " ? "20" : sprintf("%02x", index("0123456789abcdef", c) < 11 ? 47 + index("0123456789abcdef", c) : 86 + index("0123456789abcdef", c))) }
         return o }
       FILENAME ~ /inodes.txt$/ { ino[$2] = $1; next }
       FILENAME ~ /held.txt$/ { if ($1 == "EX" || $1 == "SH") for (i = 3; i <= NF; i++) if ($i in ino) { held[hexname(2, ino[$i])] = $1; nheld++ }; next }
       { ts = ""; for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\.[0-9]+:$/) { ts = substr($i, 1, length($i) - 1); ev = $(i + 1); break }
         if (ts == "") next
         if ($0 ~ /tracing_mark_write: dlmrv crash seen/) { tc = ts; print "crash seen (node2 marker)   " ts; next }
         if (tc == "") next
         if ($0 ~ /tracing_mark_write: dlmrv /) { sub(/.*tracing_mark_write: dlmrv /, ""); printf "+%8.3f s  %s\n", ts - tc, $0; next }
         if (ev ~ /^(ls_stop|ls_start|purge|purge_ret|grant):$/) { printf "+%8.3f s  kprobe %s\n", ts - tc, ev; kp[ev]++; next }
         r = ""; for (i = 1; i <= NF; i++) if ($i ~ /^res_name=/) r = substr($i, 10); sub(/^0x/, "", r)
         if (!(r in held)) next
         if (ev == "dlm_lock_start:" && !(r in req)) { req[r] = ts; nreq++; if (nreq == 1) printf "+%8.3f s  first request on a resource node2 held (%s): %s\n", ts - tc, held[r], $0 }
         if (ev == "dlm_ast:" && $0 ~ /sb_status=0( |$)/ && !(r in gr)) { gr[r] = ts; ngr++; if (ngr == 1) { first = ts - tc; printf "+%8.3f s  FIRST GRANT on a resource node2 held (%s): %s\n", ts - tc, held[r], $0 } } }
       END { printf "resources node2 held (EX/SH inode glocks): %d; requested after the crash: %d; granted after the crash: %d\n", nheld, nreq, ngr
             printf "kprobes after the crash: ls_stop %d, ls_start %d, purge %d, purge_ret %d, grant %d\n", kp["ls_stop:"], kp["ls_start:"], kp["purge:"], kp["purge_ret:"], kp["grant:"]
             if (ngr) printf "crash seen -> first grant on a resource node2 held: %.3f s\n", first }' \
    /out/node2/inodes.txt /out/node2/held.txt trace-gfs2.txt > crash-timeline.txt 2>&1
  cut -c1-200 crash-timeline.txt
fi
exit $rc
