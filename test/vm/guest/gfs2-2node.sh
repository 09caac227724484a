#!/bin/bash
# Guest script: gfs2 (lock_dlm) on a disk shared by two nodes (the host ran mkfs.gfs2 -j 2), both
# nodes in step through barriers: both create files in the same directory, append to the same files
# (EX glock ping-pong, blocking callbacks both ways), read everything, rename, remove each other's
# files; node2 unmounts first, then node1 (node1 sees node2 leave the lockspace).
#   test/vm/run.sh --kernel 6.12 --nodes 2 --script test/vm/guest/gfs2-2node.sh
# env: GFS2_FILES (40, per node)  GFS2_ROUNDS (8)  TRACE (1)  COLLECTOR / COLLECTOR_READY
#      COLLECTOR_EXPECT_RC (0)
# Files in node<N>/: gfs2.out, trace-gfs2.{txt,stats,counts}, collector-<workload>.log/.rc; node1/messages.txt
#      (dlm_send_message on each node against dlm_recv_message on the other)
# Exit: as gfs2-1node.sh.
. "$VM_DIR/guest/lib.sh"
export VM_WORKLOAD=gfs2
. "$VM_DIR/guest/gfs2-work.sh"
TRACE=${TRACE:-1}
[ "$VM_NODES" = 2 ] || { vm_log "needs --nodes 2"; exit 1; }
[ -b "${VM_GFS2_DEV:-}" ] || { vm_log "no gfs2 disk"; exit 1; }
rc=0
if [ "$TRACE" = 1 ]; then vm_trace_start || exit 2; fi
vm_collector_start || exit 3
vm_barrier g-start || exit 1
gfs2_mount || { vm_barrier g-mounted 10; exit 1; }
vm_barrier g-mounted || exit 1
gfs2_work_shared "$GFS2_MNT" > gfs2.out 2>&1 || rc=1
cat gfs2.out
# node2 leaves first; node1 unmounts once node2 is gone
if [ "$VM_NODE" = 2 ]; then
  gfs2_umount || rc=1; vm_barrier g-umount2
else
  vm_barrier g-umount2; gfs2_umount || rc=1
fi
if [ -n "${COLLECTOR:-}" ]; then
  vm_collector_stop; crc=$?
  [ "$crc" = "${COLLECTOR_EXPECT_RC:-0}" ] || { [ "$rc" = 0 ] && rc=4; }
fi
if [ "$TRACE" = 1 ]; then
  vm_barrier g-traced
  vm_trace_stop gfs2 || { [ "$rc" = 0 ] && rc=2; }
  gfs2_check_counts trace-gfs2.counts || { [ "$rc" = 0 ] && rc=2; }
  vm_barrier g-saved
  if [ "$VM_NODE" = 1 ]; then
    c() { awk -v k="$2" '$1 == k { print $2 }' "/out/node$1/trace-gfs2.counts"; }
    {
      echo "node1 dlm_send_message $(c 1 tp.dlm_send_message), node2 dlm_recv_message $(c 2 tp.dlm_recv_message)"
      echo "node2 dlm_send_message $(c 2 tp.dlm_send_message), node1 dlm_recv_message $(c 1 tp.dlm_recv_message)"
    } | tee messages.txt
  fi
fi
exit $rc
