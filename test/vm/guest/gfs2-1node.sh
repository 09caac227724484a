#!/bin/bash
# Guest script: gfs2 (lock_dlm) stress on one node: mount, create / write / append / read / stat /
# rename (within and across directories) / remove in several directories, rmdir, unmount.
# Thousands of DLM requests from the kernel's own lock user (gfs2 glocks).
#   test/vm/run.sh --kernel 6.1 --nodes 1 --script test/vm/guest/gfs2-1node.sh
# env: GFS2_DIRS (4)  GFS2_FILES (60, per directory)  TRACE (1)  COLLECTOR / COLLECTOR_READY
#      COLLECTOR_EXPECT_RC (0)
# Files in node1/: gfs2.out, trace-gfs2.{txt,stats,counts}, collector-<workload>.log/.rc
# Exit: 0 ok, 1 gfs2 workload failed (mount, content check, unmount), 2 tracefs: no requests, trace
#      overrun, or start/end counts unpaired, 3 collector did not start, 4 collector exit code
. "$VM_DIR/guest/lib.sh"
export VM_WORKLOAD=gfs2
. "$VM_DIR/guest/gfs2-work.sh"
TRACE=${TRACE:-1}
[ -b "${VM_GFS2_DEV:-}" ] || { vm_log "no gfs2 disk (run.sh --disk-mb 0?)"; exit 1; }
rc=0
if [ "$TRACE" = 1 ]; then vm_trace_start || exit 2; fi
vm_collector_start || exit 3
gfs2_mount || exit 1
gfs2_work_local "$GFS2_MNT" > gfs2.out 2>&1 || rc=1
cat gfs2.out
gfs2_umount || rc=1
if [ -n "${COLLECTOR:-}" ]; then
  vm_collector_stop; crc=$?
  [ "$crc" = "${COLLECTOR_EXPECT_RC:-0}" ] || { [ "$rc" = 0 ] && rc=4; }
fi
if [ "$TRACE" = 1 ]; then
  vm_trace_stop gfs2 || { [ "$rc" = 0 ] && rc=2; }
  gfs2_check_counts trace-gfs2.counts || { [ "$rc" = 0 ] && rc=2; }
fi
exit $rc
