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

# two nodes, both in step (barriers): the same directory and the same files from both nodes
gfs2_work_shared() {  # MOUNTPOINT
  local M=$1 f=${GFS2_FILES:-40} r=${GFS2_ROUNDS:-8} k i x lines L other=$((3 - VM_NODE))
  if [ "$VM_NODE" = 1 ]; then
    mkdir "$M/shared" "$M/common" || return 1
    for k in 1 2 3 4 5; do echo "init c$k" > "$M/common/c$k"; done
  fi
  vm_barrier g-dirs || return 1
  # both create files in the same directory (directory glock ping-pong)
  for i in $(seq 1 "$f"); do echo "node$VM_NODE f$i" > "$M/shared/n$VM_NODE-f$i"; done
  # both append to the same five files, interleaved (inode glock EX ping-pong, blocking callbacks),
  # each append under flock: gfs2's O_APPEND across nodes is racy without the application's own
  # file locking (fs/gfs2/file.c); unlocked appends lost a line now and then (three-node runs)
  perl -e 'use Fcntl qw(:flock); my ($m, $me, $r) = @ARGV;
           for my $x (1 .. $r) { for my $k (1 .. 5) {
             open(my $fh, ">>", "$m/common/c$k") or die "open c$k: $!\n";
             flock($fh, LOCK_EX) or die "flock c$k: $!\n";
             print $fh "node$me round $x\n" or die "write c$k: $!\n";
             close($fh) or die "close c$k: $!\n" } }' "$M" "$VM_NODE" "$r" || return 1
  vm_barrier g-written || return 1
  # both read everything (shared PR glocks)
  lines=0; for x in "$M"/shared/* "$M"/common/*; do mapfile -t L < "$x"; lines=$((lines + ${#L[@]})); done
  echo "node$VM_NODE reads $lines lines (expected $((2 * f + 5 + 2 * r * 5)))"
  [ "$lines" = $((2 * f + 5 + 2 * r * 5)) ] || { echo "CONTENT MISMATCH"; return 1; }
  vm_barrier g-read || return 1
  # both rename their own files in the shared directory
  perl -e 'for my $p (@ARGV) { (my $q = $p) =~ s{-f(\d+)$}{-r$1}; rename($p, $q) or die "rename $p: $!\n" }' "$M"/shared/n$VM_NODE-f* || return 1
  ls -l "$M/shared" > /dev/null 2>&1   # races with the other node's renames on purpose
  vm_barrier g-renamed || return 1
  # each node removes the other node's files
  rm -f "$M"/shared/n$other-r* || return 1
  vm_barrier g-removed || return 1
  echo "node$VM_NODE after removal: $(ls "$M/shared" | wc -l) files in shared/ (expected 0)"
  vm_barrier g-counted || return 1
  [ "$VM_NODE" = 1 ] && { rm -rf "$M/shared" "$M/common" || return 1; }
  vm_barrier g-cleaned || return 1
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
