#!/bin/bash
# Run the standard VM checks: the harness selftest, dlmload + gfs2 on one node under 6.1 and 6.12,
# gfs2 on two nodes under 6.12. Prints one line per run and closes with "N passed, N failed".
#
#   test/vm/all.sh [-j 2] [--out DIR] [--kernels "6.1 6.12"] [-- run.sh options, e.g. --env COLLECTOR=...]
#     -j 2   two single-node runs at a time (never more than 2 guests); default 1
# Results: DIR/<kernel>-<script>/ (default test/vm/cache/out/all/). Exit 0 when all passed.
set -uo pipefail
VMD=$(cd "$(dirname "$0")" && pwd)
JOBS=1 OUTBASE=$VMD/cache/out/all KERNELS="6.1 6.12" EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    -j) JOBS=$2; shift;;
    --out) OUTBASE=$2; shift;;
    --kernels) KERNELS=$2; shift;;
    --) shift; EXTRA=("$@"); break;;
    -h|--help) sed -n '2,8p' "$0"; exit 0;;
    *) echo "unknown argument $1" >&2; exit 2;;
  esac
  shift
done
mkdir -p "$OUTBASE"
# prepare once (packages, kernels, build) so that parallel runs do not queue on the cache lock
for k in $KERNELS; do "$VMD/run.sh" --kernel "$k" --prepare "${EXTRA[@]}" >/dev/null 2>&1 || { echo "prepare $k failed" >&2; exit 100; }; done

runs=()   # "kernel nodes script timeout"
first=${KERNELS%% *}
runs+=("$first 1 selftest 240")
for k in $KERNELS; do runs+=("$k 1 suite-1node 300"); done
last=${KERNELS##* }
runs+=("$last 2 gfs2-shared 420")

pass=0 fail=0
run_one() {  # kernel nodes script timeout
  local out=$OUTBASE/$1-$3 t0 rc
  t0=$(date +%s)
  "$VMD/run.sh" --kernel "$1" --nodes "$2" --script "$VMD/guest/$3.sh" --timeout "$4" --out "$out" "${EXTRA[@]}" > "$out.log" 2>&1
  rc=$?
  echo "$rc $(( $(date +%s) - t0 ))" > "$out.result"
}
i=0
while [ $i -lt ${#runs[@]} ]; do
  set -- ${runs[$i]}
  mkdir -p "$OUTBASE/$1-$3"
  if [ "$JOBS" -ge 2 ] && [ "$2" = 1 ] && [ $((i + 1)) -lt ${#runs[@]} ] && [ "$(echo ${runs[$((i + 1))]} | cut -d' ' -f2)" = 1 ]; then
    run_one "$@" & p=$!
    set -- ${runs[$((i + 1))]}; mkdir -p "$OUTBASE/$1-$3"
    run_one "$@"; wait $p
    i=$((i + 2))
  else
    run_one "$@"; i=$((i + 1))
  fi
done
for r in "${runs[@]}"; do
  set -- $r
  read -r rc secs < "$OUTBASE/$1-$3.result"
  if [ "$rc" = 0 ]; then pass=$((pass + 1)); st=ok; else fail=$((fail + 1)); st="FAILED (exit $rc)"; fi
  printf '%-5s %d node(s) %-12s %4ss  %s   %s\n' "$1" "$2" "$3" "$secs" "$st" "$OUTBASE/$1-$3"
done
echo "vm: $pass passed, $fail failed"
[ "$fail" = 0 ]
