#!/bin/bash
# Guest script: dlmload (deterministic libdlm contention, see test/vm/dlmload.c) on one node.
#   test/vm/run.sh --kernel 6.12 --nodes 1 --script test/vm/guest/libdlm.sh
# env: DLMLOAD_ROUNDS (2)  DLMLOAD_LS (dlmload)  TRACE (1: count the events with tracefs and compare
#      them with dlmload's expectations)  COLLECTOR / COLLECTOR_READY (see guest/lib.sh)
#      COLLECTOR_EXPECT_RC (0)
# Files in node1/: dlmload.out (step log + "ops"/"expect" summary), trace-libdlm.{txt,stats,counts},
#      compare.txt, collector-<workload>.log/.rc.
# Exit: 0 ok, 1 dlmload saw an unexpected DLM answer, 2 tracefs counts differ from the expectations
#      (or the trace overran), 3 the collector did not start, 4 the collector's exit code was not
#      COLLECTOR_EXPECT_RC.
. "$VM_DIR/guest/lib.sh"
export VM_WORKLOAD=libdlm
ROUNDS=${DLMLOAD_ROUNDS:-2} LS=${DLMLOAD_LS:-dlmload} TRACE=${TRACE:-1}
rc=0
if [ "$TRACE" = 1 ]; then vm_trace_start || exit 2; fi
vm_collector_start || exit 3
vm_log "dlmload -l $LS -r $ROUNDS -x"
"$VM_BIN/dlmload" -l "$LS" -r "$ROUNDS" -x > dlmload.out 2>&1; drc=$?
vm_log "dlmload rc=$drc: $(grep '^dlmload:' dlmload.out | tail -1)"
grep UNEXPECTED dlmload.out
[ "$drc" = 0 ] || rc=1
if [ -n "${COLLECTOR:-}" ]; then
  vm_collector_stop; crc=$?
  [ "$crc" = "${COLLECTOR_EXPECT_RC:-0}" ] || { [ "$rc" = 0 ] && rc=4; }
fi
if [ "$TRACE" = 1 ]; then
  vm_trace_stop libdlm || { [ "$rc" = 0 ] && rc=2; }
  echo "dlmload expectations vs tracefs counts (kernel $VM_KERNEL):" > compare.txt
  vm_compare dlmload.out trace-libdlm.counts >> compare.txt || { [ "$rc" = 0 ] && rc=2; }
  grep -E '^(ops|vanished_on_kill|ast_swapped)' dlmload.out trace-libdlm.counts | sed 's/^[^:]*://' >> compare.txt
  cat compare.txt
fi
exit $rc
