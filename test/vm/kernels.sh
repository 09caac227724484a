#!/bin/bash
# Print, or prepare, the Debian kernels the VM harness boots.
#
#   test/vm/kernels.sh                 one line per series: SERIES RELEASE STATE TREE
#   test/vm/kernels.sh --prepare [K..] download (once), extract (once) and depmod; K = 6.1, 6.12 or a release
#   test/vm/kernels.sh --release K     print only the release K resolves to (e.g. 6.12.117+deb12-amd64)
#
# 6.1  = the kernel Debian's linux-image-amd64 depends on (bookworm's current 6.1), -unsigned package
# 6.12 = the newest linux-image-6.12.*+deb12-amd64-unsigned that apt knows of
# Files live in test/vm/cache/ (git-ignored): debs/, kernels/<release>/. Nothing is fetched twice.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

mode=list; ks=()
while [ $# -gt 0 ]; do
  case "$1" in
    --prepare) mode=prepare;;
    --release) mode=release;;
    -h|--help) sed -n '2,10p' "$0"; exit 0;;
    -*) echo "unknown option $1" >&2; exit 2;;
    *) ks+=("$1");;
  esac
  shift
done
[ ${#ks[@]} -gt 0 ] || ks=($VM_SERIES)

case $mode in
  release)
    for k in "${ks[@]}"; do kv=$(vm_kernel_release "$k"); [ -n "$kv" ] || { echo "no kernel for $k" >&2; exit 1; }; echo "$kv"; done ;;
  prepare)
    vm_ensure_packages
    for k in "${ks[@]}"; do
      kv=$(vm_kernel_prepare "$k")
      echo "$(vm_kernel_series "$kv") $kv ready $(vm_kernel_tree "$kv")"
    done ;;
  list)
    for k in "${ks[@]}"; do
      kv=$(vm_kernel_release "$k")
      if [ -z "$kv" ]; then echo "$k - unknown -"; continue; fi
      t=$(vm_kernel_tree "$kv")
      if [ -e "$t/.ok" ]; then st=ready; else st=not-prepared; fi
      echo "$(vm_kernel_series "$kv") $kv $st $t"
    done ;;
esac
