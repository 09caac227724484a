#!/bin/bash
# Guest script: gfs2 (lock_dlm) on a disk shared by two or three nodes (the host ran mkfs.gfs2 -j N),
# all nodes in step through barriers (gfs2-work.sh gfs2_work_shared): all create files in the same
# directory, append to the same files under flock (EX glock ping-pong, blocking callbacks every
# way), read everything, rename their own files, rename the next node's files, remove the files of
# the node before them, node1 removes the directories; then they unmount one after the other from
# the highest id down, each once the previous one is gone (each node sees those above it leave the
# lockspace).
#   test/vm/run.sh --kernel 6.12 --nodes 2|3 --script test/vm/guest/gfs2-shared.sh
# env: GFS2_FILES (per node; 40 on 2 nodes, 24 on 3)  GFS2_ROUNDS (8 / 6)  TRACE (1)  COLLECTOR / COLLECTOR_READY
#      COLLECTOR_EXPECT_RC (0)
# Files in node<N>/: gfs2.out, trace-gfs2.{txt,stats,counts,recvfrom}, collector-<workload>.log/.rc;
#      node1/messages.txt: per node, its dlm_send_message count against the dlm_recv_message counts
#      of the others with that node as the sender (h_nodeid), and their sum
# Exit: as gfs2-1node.sh (1 workload or mount failure, 2 tracefs counts, 3/4 collector).
. "$VM_DIR/guest/lib.sh"
export VM_WORKLOAD=gfs2
. "$VM_DIR/guest/gfs2-work.sh"
TRACE=${TRACE:-1}
[ "$VM_NODES" -ge 2 ] || { vm_log "needs --nodes 2 or 3"; exit 1; }
[ -b "${VM_GFS2_DEV:-}" ] || { vm_log "no gfs2 disk"; exit 1; }

rc=0
if [ "$TRACE" = 1 ]; then vm_trace_start || exit 2; fi
vm_collector_start || exit 3
vm_barrier g-start || exit 1
gfs2_mount || { vm_barrier g-mounted 10; exit 1; }
vm_barrier g-mounted || exit 1
gfs2_work_shared "$GFS2_MNT" > gfs2.out 2>&1 || rc=1
cat gfs2.out
# the highest node leaves first, each next one once the one above it is gone (barrier g-umount<k>:
# node k has unmounted), node1 last
for ((k = VM_NODES; k >= 2; k--)); do
  [ "$VM_NODE" = "$k" ] && { gfs2_umount || rc=1; }
  vm_barrier "g-umount$k"
done
[ "$VM_NODE" = 1 ] && { gfs2_umount || rc=1; }
if [ -n "${COLLECTOR:-}" ]; then
  vm_collector_stop; crc=$?
  [ "$crc" = "${COLLECTOR_EXPECT_RC:-0}" ] || { [ "$rc" = 0 ] && rc=4; }
fi
if [ "$TRACE" = 1 ]; then
  vm_barrier g-traced
  vm_trace_stop gfs2 || { [ "$rc" = 0 ] && rc=2; }
  gfs2_check_counts trace-gfs2.counts || { [ "$rc" = 0 ] && rc=2; }
  # this node's dlm_recv_message by sender ("from<N> COUNT")
  awk '/ dlm_recv_message: / { for (i = 1; i <= NF; i++) if ($i ~ /^h_nodeid=/) { n[substr($i, 10)]++; break } }
       END { for (k in n) print "from" k, n[k] }' trace-gfs2.txt > trace-gfs2.recvfrom
  vm_barrier g-saved
  if [ "$VM_NODE" = 1 ]; then   # bash builtins: every exec costs under TCG
    declare -A sent recv
    for ((s = 1; s <= VM_NODES; s++)); do
      while read -r k v; do [ "$k" = tp.dlm_send_message ] && sent[$s]=$v; done < "/out/node$s/trace-gfs2.counts"
      while read -r k v; do recv[$s.${k#from}]=$v; done < "/out/node$s/trace-gfs2.recvfrom"
    done
    for ((s = 1; s <= VM_NODES; s++)); do
      line="node$s dlm_send_message ${sent[$s]:-0}"; sum=0
      for ((d = 1; d <= VM_NODES; d++)); do
        [ "$d" = "$s" ] && continue
        n=${recv[$d.$s]:-0}; sum=$((sum + n)); line+=", node$d dlm_recv_message from node$s $n"
      done
      if [ "$sum" = "${sent[$s]:-0}" ]; then line+=" (sum $sum, equal)"; else line+=" (sum $sum, DIFFERENT)"; fi
      echo "$line"
    done | tee messages.txt
  fi
fi
exit $rc
