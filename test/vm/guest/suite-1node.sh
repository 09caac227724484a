#!/bin/bash
# Guest script: libdlm.sh then gfs2-1node.sh in one boot (saves a boot, ~10-20 s under TCG).
#   test/vm/run.sh --kernel 6.1 --nodes 1 --script test/vm/guest/suite-1node.sh
# Same env and files as the two scripts; a COLLECTOR is started once per workload, so name its files
# after $VM_WORKLOAD (e.g. --record $VM_NODE_OUT/$VM_WORKLOAD.cap).
# Exit: the first non-zero exit code of the two (both always run).
rc=0
for s in libdlm gfs2-1node; do
  bash "$VM_DIR/guest/$s.sh"; r=$?
  echo "suite: $s rc=$r" | tee -a suite.txt
  [ "$rc" = 0 ] && rc=$r
done
exit $rc
