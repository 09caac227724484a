#!/bin/bash
# Guest script: checks of the harness itself (guest/lib.sh), one node or two.
#   test/vm/run.sh --kernel 6.12 --nodes 1 --script test/vm/guest/selftest.sh
# Exit 0 when every check passed; prints "N passed, N failed".
. "$VM_DIR/guest/lib.sh"
pass=0 fail=0
check() {  # NAME COMMAND...: pass when COMMAND succeeds
  local name=$1; shift
  if "$@"; then pass=$((pass + 1)); echo "ok   $name"; else fail=$((fail + 1)); echo "FAIL $name"; fi
}
T=$(mktemp -d)

# environment
check "VM_* environment" test -n "$VM_NODE" -a -n "$VM_NODES" -a -d "$VM_NODE_OUT" -a -x "$VM_BIN/dlmload" -a -d "$VM_ROOT"
check "cwd is VM_NODE_OUT" test "$PWD" = "$VM_NODE_OUT"
check "dlm module loaded" grep -q '^dlm ' /proc/modules
check "gfs2 module loaded" grep -q '^gfs2 ' /proc/modules
check "dlm module BTF" test -e /sys/kernel/btf/dlm
check "tracefs dlm events" test -d /sys/kernel/tracing/events/dlm
check "dlm_controld quorate" sh -c 'dlm_tool status | grep -q "quorate 1"'
check "/dev/misc/dlm-control" test -c /dev/misc/dlm-control
check "node runs" sh -c 'command -v node >/dev/null && node -e "process.exit(0)"'
check "barrier" vm_barrier selftest 60

# collector lifecycle
printf '#!/bin/bash\ntrap "echo got INT; exit 0" INT\nsleep 0.5; echo "attached: ok"\nwhile :; do sleep 0.1; done\n' > "$T/good"
printf '#!/bin/bash\necho "cannot attach" >&2; exit 9\n' > "$T/early"
printf '#!/bin/bash\ntrap "" INT\necho attached; while :; do sleep 0.1; done\n' > "$T/stubborn"
printf '#!/bin/bash\ntrap "exit 5" INT\necho READY-X; while :; do sleep 0.1; done\n' > "$T/rc5"
printf '#!/bin/bash\necho attached; exec sleep 30\n' > "$T/default"   # relies on the default SIGINT action
printf '#!/bin/bash\nwhile :; do sleep 0.1; done\n' > "$T/silent"
chmod +x "$T"/*
VM_WORKLOAD=st-good COLLECTOR="$T/good" ; check "collector: ready" vm_collector_start
check "collector: SIGINT, rc 0" vm_collector_stop
check "collector: log kept" grep -q 'got INT' "$VM_NODE_OUT/collector-st-good.log"
VM_WORKLOAD=st-early COLLECTOR="$T/early"; check "collector: early exit detected" eval '! vm_collector_start'
check "collector: early exit rc saved" grep -qx 9 "$VM_NODE_OUT/collector-st-early.rc"
VM_WORKLOAD=st-stubborn COLLECTOR="$T/stubborn" COLLECTOR_STOP_TIMEOUT=2
vm_collector_start; vm_collector_stop; r=$?
check "collector: SIGKILL after the stop timeout (rc 137)" test "$r" = 137
VM_WORKLOAD=st-rc5 COLLECTOR="$T/rc5" COLLECTOR_READY='^READY-'
vm_collector_start; vm_collector_stop; r=$?
check "collector: custom ready regex, rc 5 returned" test "$r" = 5
unset COLLECTOR_READY COLLECTOR_STOP_TIMEOUT
VM_WORKLOAD=st-default COLLECTOR="$T/default"
vm_collector_start; vm_collector_stop; r=$?
check "collector: default SIGINT action works in the background (rc 130)" test "$r" = 130
VM_WORKLOAD=st-silent COLLECTOR="$T/silent" COLLECTOR_READY_TIMEOUT=1
check "collector: never ready -> failure, and stopped (a shell loop: SIGINT to its group)" eval '! vm_collector_start && test -z "$VM_COLLECTOR_PID" && ! pgrep -f "$T/silent" >/dev/null'
unset COLLECTOR COLLECTOR_STOP_TIMEOUT COLLECTOR_READY COLLECTOR_READY_TIMEOUT

# tracefs + dlmload, one round
if [ "$VM_NODE" = 1 ]; then
  VM_WORKLOAD=st-dlmload
  check "trace start" vm_trace_start
  check "dlmload -r 1" sh -c '"$VM_BIN/dlmload" -q -l selftest -r 1 -x > st-dlmload.out'
  check "trace stop (no overrun)" vm_trace_stop st
  check "dlmload counts = tracefs counts" vm_compare st-dlmload.out trace-st.counts
fi
vm_barrier selftest-end 60
rm -rf "$T"
echo "selftest: $pass passed, $fail failed"
[ "$fail" = 0 ]
