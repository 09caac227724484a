# gfs2 workloads for the VM guest scripts (sourced; needs guest/lib.sh). Few process executions
# on purpose (bash builtins for file I/O, one perl per rename batch): every exec costs tens of ms
# under TCG.
GFS2_MNT=${GFS2_MNT:-/mnt/gfs2}

gfs2_mount() {
  mkdir -p "$GFS2_MNT"
  vm_log "gfs2 mount $VM_GFS2_DEV (lock table ${VM_CLUSTER}:${VM_GFS2_FS})"
  if ! mount -t gfs2 -o noatime "$VM_GFS2_DEV" "$GFS2_MNT"; then
    vm_log "gfs2 mount FAILED"; dmesg | tail -20; return 1
  fi
  vm_log "gfs2 mounted"
}

gfs2_umount() {
  sync
  if ! umount "$GFS2_MNT"; then vm_log "gfs2 umount FAILED"; return 1; fi
  vm_log "gfs2 unmounted"
}

# one node: N directories x F files: create+write, append, stat, read, rename in place, rename
# across directories, check, remove, rmdir
gfs2_work_local() {  # MOUNTPOINT
  local M=$1 n=${GFS2_DIRS:-4} f=${GFS2_FILES:-60} d i lines=0 files=0 x L
  mkdir $(for d in $(seq 1 "$n"); do echo "$M/d$d"; done) || return 1
  for d in $(seq 1 "$n"); do for i in $(seq 1 "$f"); do echo "d$d f$i" > "$M/d$d/f$i"; done; done
  for d in $(seq 1 "$n"); do for i in $(seq 1 "$f"); do echo "append d$d f$i" >> "$M/d$d/f$i"; done; done
  ls -l "$M"/d* > /dev/null
  # rename every file in place (f -> r), then move the odd ones to the next directory
  perl -e 'for my $p (@ARGV) { (my $q = $p) =~ s{/f(\d+)$}{/r$1}; rename($p, $q) or die "rename $p: $!\n" }' "$M"/d*/f* || return 1
  perl -e 'my ($m, $n, $f) = @ARGV; for my $d (1 .. $n) { my $t = $d % $n + 1;
             for (my $i = 1; $i <= $f; $i += 2) { rename("$m/d$d/r$i", "$m/d$t/x$d-$i") or die "rename d$d/r$i: $!\n" } }' "$M" "$n" "$f" || return 1
  for x in "$M"/d*/*; do mapfile -t L < "$x"; lines=$((lines + ${#L[@]})); files=$((files + 1)); done
  echo "files $files (expected $((n * f))), lines $lines (expected $((2 * n * f)))"
  [ "$files" = $((n * f)) ] && [ "$lines" = $((2 * n * f)) ] || { echo "CONTENT MISMATCH"; return 1; }
  rm -f "$M"/d*/* && rmdir "$M"/d* || return 1
  echo "after removal: $(ls -A "$M" | wc -l) entries"
}

# every node in step (barriers): the same directories and the same files from all nodes
# (2 or 3 nodes; with two, the next node and the one before are the same, the other one)
gfs2_work_shared() {  # MOUNTPOINT
  local M=$1 f=${GFS2_FILES:-$(( VM_NODES == 2 ? 40 : 24 ))} r=${GFS2_ROUNDS:-$(( VM_NODES == 2 ? 8 : 6 ))} N=$VM_NODES me=$VM_NODE k i x lines L F
  local next=$((VM_NODE % VM_NODES + 1)) prev=$(( (VM_NODE + VM_NODES - 2) % VM_NODES + 1 ))
  if [ "$me" = 1 ]; then
    mkdir "$M/shared" "$M/common" || return 1
    for k in 1 2 3 4 5; do echo "init c$k" > "$M/common/c$k"; done
  fi
  vm_barrier g-dirs || return 1
  # all create files in the same directory (directory glock EX among them)
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
  # all read everything (shared PR glocks on every node)
  lines=0; for x in "$M"/shared/* "$M"/common/*; do mapfile -t L < "$x"; lines=$((lines + ${#L[@]})); done
  echo "node$me reads $lines lines (expected $((N * f + 5 + N * r * 5)))"
  [ "$lines" = $((N * f + 5 + N * r * 5)) ] || { echo "CONTENT MISMATCH"; gfs2_shared_explain "$M" "$f" "$r"; return 1; }
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
  # each removes the files of the node before it (renamed by the next one)
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
gfs2_shared_explain() {  # MOUNTPOINT FILES ROUNDS
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

# sanity of a tracefs count file of a gfs2 run
gfs2_check_counts() {  # COUNTS_FILE
  awk '{ c[$1] = $2 }
       END { bad = 0
             if (c["requests"] + 0 == 0) { print "  no dlm_lock_start at all"; bad = 1 }
             if (c["tp.dlm_lock_start"] != c["tp.dlm_lock_end"]) { print "  dlm_lock_start/end unpaired"; bad = 1 }
             if (c["tp.dlm_unlock_start"] != c["tp.dlm_unlock_end"]) { print "  dlm_unlock_start/end unpaired"; bad = 1 }
             if (c["trace_overrun"] + 0 != 0) { print "  trace overrun"; bad = 1 }
             printf "  requests %d (failed %d), releases %d (cancels %d), completions 0:%d -11:%d -35:%d -65537:%d -65538:%d, blockings %d\n",
               c["requests"], c["request_failed"], c["releases"], c["releases_cancel"], c["completion_0"], c["completion_-11"],
               c["completion_-35"], c["completion_-65537"], c["completion_-65538"], c["blockings"]
             exit bad }' "$1"
}
