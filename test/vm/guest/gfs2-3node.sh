#!/bin/bash
# Guest script: gfs2 (lock_dlm) on a disk shared by three nodes (the host ran mkfs.gfs2 -j 3), all
# nodes in step through barriers: all create files in the same directory, append to the same files
# under flock (EX glock ping-pong among three, blocking callbacks every way), read everything,
# rename their own files, rename the next node's files, remove the files of the node before them
# (renamed by a third one), node1 removes the directories; then they unmount one after the other:
# node3, node2, node1, each once the previous one is gone (node2 sees node3 leave the lockspace,
# node1 sees both leave).
#   test/vm/run.sh --kernel 6.12 --nodes 3 --script test/vm/guest/gfs2-3node.sh
# env: GFS2_FILES (24, per node)  GFS2_ROUNDS (6)  TRACE (1)  COLLECTOR / COLLECTOR_READY
#      COLLECTOR_EXPECT_RC (0)
# Files in node<N>/: gfs2.out, trace-gfs2.{txt,stats,counts,recvfrom}, collector-<workload>.log/.rc;
#      node1/messages.txt: per node, its dlm_send_message count against the dlm_recv_message counts
#      of the others with that node as the sender (h_nodeid), and their sum
# Exit: as gfs2-1node.sh (1 workload or mount failure, 2 tracefs counts, 3/4 collector).
. "$VM_DIR/guest/lib.sh"
export VM_WORKLOAD=gfs2
. "$VM_DIR/guest/gfs2-work.sh"
TRACE=${TRACE:-1}
[ "$VM_NODES" = 3 ] || { vm_log "needs --nodes 3"; exit 1; }
[ -b "${VM_GFS2_DEV:-}" ] || { vm_log "no gfs2 disk"; exit 1; }

# every node in step (barriers): the same directories and the same files from all nodes
gfs2_work_3node() {  # MOUNTPOINT
  local M=$1 f=${GFS2_FILES:-24} r=${GFS2_ROUNDS:-6} N=$VM_NODES me=$VM_NODE k i x lines L F
  local next=$((VM_NODE % VM_NODES + 1)) prev=$(( (VM_NODE + VM_NODES - 2) % VM_NODES + 1 ))
  if [ "$me" = 1 ]; then
    mkdir "$M/shared" "$M/common" || return 1
    for k in 1 2 3 4 5; do echo "init c$k" > "$M/common/c$k"; done
  fi
  vm_barrier g-dirs || return 1
  # all create files in the same directory (directory glock EX among three)
  for i in $(seq 1 "$f"); do echo "node$me f$i" > "$M/shared/n$me-f$i"; done
  # all append to the same five files, interleaved (inode glocks EX ping-pong, blocking callbacks),
  # each append under flock (gfs2: a cluster-wide flock glock, one more DLM lock per file): gfs2
  # refreshes the size for O_APPEND under a shared glock it drops before the write takes its
  # exclusive one ("There is still a race, but provided the app is using its own file locking..."
  # in fs/gfs2/file.c), and unlocked appends from three nodes lost a line in 2 of 7 runs
  perl -e 'use Fcntl qw(:flock); my ($m, $me, $r) = @ARGV;
           for my $x (1 .. $r) { for my $k (1 .. 5) {
             open(my $fh, ">>", "$m/common/c$k") or die "open c$k: $!\n";
             flock($fh, LOCK_EX) or die "flock c$k: $!\n";
             print $fh "node$me round $x\n" or die "write c$k: $!\n";
             close($fh) or die "close c$k: $!\n" } }' "$M" "$me" "$r" || return 1
  vm_barrier g-written || return 1
  # all read everything (shared PR glocks on three nodes)
  lines=0; for x in "$M"/shared/* "$M"/common/*; do mapfile -t L < "$x"; lines=$((lines + ${#L[@]})); done
  echo "node$me reads $lines lines (expected $((N * f + 5 + N * r * 5)))"
  [ "$lines" = $((N * f + 5 + N * r * 5)) ] || { echo "CONTENT MISMATCH"; gfs2_3node_explain "$M" "$f" "$r"; return 1; }
  vm_barrier g-read || return 1
  # each renames its own files in the shared directory, listing it while the others rename theirs
  perl -e 'for my $p (@ARGV) { (my $q = $p) =~ s{-f(\d+)$}{-r$1}; rename($p, $q) or die "rename $p: $!\n" }' "$M"/shared/n$me-f* || return 1
  ls -l "$M/shared" > /dev/null 2>&1
  vm_barrier g-renamed || return 1
  # each renames the next node's files (inodes last held by that node) and appends to one of them
  perl -e 'for my $p (@ARGV) { (my $q = $p) =~ s{-r(\d+)$}{-x$1}; rename($p, $q) or die "rename $p: $!\n" }' "$M"/shared/n$next-r* || return 1
  echo "renamed by node$me" >> "$M/shared/n$next-x1" || return 1
  vm_barrier g-xrenamed || return 1
  F=("$M"/shared/*-x*)
  echo "node$me sees ${#F[@]} files renamed across nodes (expected $((N * f)))"
  [ "${#F[@]}" = $((N * f)) ] || { echo "NAME MISMATCH"; return 1; }
  mapfile -t L < "$M/shared/n$me-x1"
  [ "${#L[@]}" = 2 ] && [ "${L[1]}" = "renamed by node$prev" ] || { echo "CONTENT MISMATCH in n$me-x1: ${L[*]}"; return 1; }
  vm_barrier g-checked || return 1
  # each removes the files of the node before it (renamed by the third one)
  rm -f "$M"/shared/n$prev-x* || return 1
  vm_barrier g-removed || return 1
  F=("$M"/shared/*); [ -e "${F[0]}" ] || F=()
  echo "node$me after removal: ${#F[@]} files in shared/ (expected 0)"
  [ "${#F[@]}" = 0 ] || return 1
  vm_barrier g-counted || return 1
  # every node drops its cached dentries and inodes before node1 removes the directories: a node
  # whose shared/ dentry is still pinned by child dentries (the removed files' negative ones) cannot
  # evict that inode when node1 asks for it (iopen glock EX), keeps its iopen glock shared, and the
  # deallocation waits for that node's unmount; with node3 unmounting first, 6.12's umount of node3
  # then stalled for two minutes ("1 glocks left after 61 seconds; still waiting") until node2 let go
  echo 2 > /proc/sys/vm/drop_caches
  vm_barrier g-dropped || return 1
  [ "$me" = 1 ] && { rm -rf "$M/shared" "$M/common" || return 1; }
  vm_barrier g-cleaned || return 1
}

# after a wrong line count: which file, which line (what every node wrote is known)
gfs2_3node_explain() {  # MOUNTPOINT FILES ROUNDS
  local M=$1 f=$2 r=$3 n i k x L F
  F=("$M"/shared/*); echo "  shared/: ${#F[@]} entries (expected $((VM_NODES * f)))"
  for ((n = 1; n <= VM_NODES; n++)); do for ((i = 1; i <= f; i++)); do
    x=$M/shared/n$n-f$i
    if [ ! -e "$x" ]; then echo "  missing: shared/n$n-f$i"; continue; fi
    mapfile -t L < "$x"; [ "${#L[@]}" = 1 ] && [ "${L[0]}" = "node$n f$i" ] || echo "  shared/n$n-f$i: ${#L[@]} lines: ${L[*]}"
  done; done
  for k in 1 2 3 4 5; do
    mapfile -t L < "$M/common/c$k"
    echo "  common/c$k: ${#L[@]} lines (expected $((1 + VM_NODES * r))), size $(stat -c %s "$M/common/c$k"), first: '${L[0]}'"
    for ((n = 1; n <= VM_NODES; n++)); do for ((i = 1; i <= r; i++)); do
      printf '%s\n' "${L[@]}" | grep -qxF "node$n round $i" || echo "  common/c$k: no 'node$n round $i'"
    done; done
  done
}

rc=0
if [ "$TRACE" = 1 ]; then vm_trace_start || exit 2; fi
vm_collector_start || exit 3
vm_barrier g-start || exit 1
gfs2_mount || { vm_barrier g-mounted 10; exit 1; }
vm_barrier g-mounted || exit 1
gfs2_work_3node "$GFS2_MNT" > gfs2.out 2>&1 || rc=1
cat gfs2.out
# node3 leaves first, then node2 once node3 is gone, then node1 once node2 is gone
case "$VM_NODE" in
  3) gfs2_umount || rc=1; vm_barrier g-umount3; vm_barrier g-umount2;;
  2) vm_barrier g-umount3; gfs2_umount || rc=1; vm_barrier g-umount2;;
  1) vm_barrier g-umount3; vm_barrier g-umount2; gfs2_umount || rc=1;;
esac
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
