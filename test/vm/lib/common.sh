# dlm-rv VM harness: host-side helpers, sourced by run.sh and kernels.sh (bash, as root).
# Everything downloaded or built goes under $VM_CACHE (test/vm/cache/, git-ignored):
#   debs/                 kernel .deb files (apt-get download)
#   kernels/<KV>/         dpkg -x of the kernel package + depmod (boot/vmlinuz-<KV>, lib/modules/<KV>)
#   initrd/<KV>.cpio.gz   busybox initramfs for that kernel
#   bin/                  guest programs built on the host (dlmload)
#   tmp/                  per-run scratch (disk images), removed after the run

VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VM_ROOT=$(cd "$VM_DIR/../.." && pwd)
VM_CACHE=${VM_CACHE:-$VM_DIR/cache}

# Exit codes of run.sh besides the guest script's own.
VM_RC_SETUP=100     # host: packages, kernel download, build, disk image
VM_RC_BOOT=101      # guest never ran the script to the end (boot, modules, cluster stack, crash)
VM_RC_TIMEOUT=102   # --timeout reached (host killed qemu, or the guest killed the script)

VM_T0=${VM_T0:-$(date +%s.%N)}
vm_elapsed() { awk -v a="${1:-$VM_T0}" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
vm_log() { echo "[vm +$(vm_elapsed)s] $*" >&2; }
vm_die() { echo "[vm] ERROR: $*" >&2; exit "$VM_RC_SETUP"; }

# ---------------------------------------------------------------- packages
# Host packages; the guest runs the host's root, so guest tools are installed here too.
VM_PKGS="qemu-system-x86 busybox-static cpio kmod file corosync dlm-controld libdlm-dev gfs2-utils
 gcc libc6-dev iproute2 xz-utils zstd coreutils util-linux procps perl-base"
VM_APT_UPDATED=0
vm_apt_update() {
  [ "$VM_APT_UPDATED" = 1 ] && return 0
  vm_log "apt-get update"
  apt-get update -q >/dev/null 2>&1 || apt-get update -q >&2 || true
  VM_APT_UPDATED=1
}
vm_ensure_packages() {
  local missing p
  missing=$(for p in $VM_PKGS "$@"; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"; done)
  [ -z "$missing" ] && return 0
  [ "$(id -u)" = 0 ] || vm_die "missing packages ($(echo $missing)) and not root"
  vm_log "apt-get install $(echo $missing)"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q --no-install-recommends $missing >/dev/null 2>&1; then
    vm_apt_update
    apt-get install -y -q --no-install-recommends $missing >&2 || vm_die "apt-get install failed: $(echo $missing)"
  fi
}

# ---------------------------------------------------------------- kernels
# A kernel is named by series (6.1, 6.12) or by its full release (6.1.0-56-amd64, 6.12.117+deb12-amd64).
# 6.1  = what Debian's linux-image-amd64 depends on (bookworm's current 6.1), -unsigned variant
# 6.12 = the newest linux-image-6.12.*+deb12-amd64-unsigned apt knows of
VM_SERIES="6.1 6.12"
_vm_resolve_apt() {   # $1 series -> prints package name, or nothing
  case "$1" in
    6.1)  apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2 "-unsigned"; exit}' ;;
    6.12) apt-cache pkgnames linux-image-6.12. 2>/dev/null | grep -E '^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$' | sort -V | tail -1 ;;
    [0-9]*.*-*) apt-cache show "linux-image-$1-unsigned" >/dev/null 2>&1 && echo "linux-image-$1-unsigned" ;;
  esac
}
_vm_cached_release() {  # $1 series -> newest already extracted release of that series
  local pat
  case "$1" in 6.1) pat='6.1.0-*-amd64';; 6.12) pat='6.12.*+deb12-amd64';; *) pat="$1";; esac
  (cd "$VM_CACHE/kernels" 2>/dev/null && for d in $pat; do [ -e "$d/.ok" ] && echo "$d"; done) | sort -V | tail -1
}
# vm_kernel_pkg SERIES|RELEASE -> prints the package name (apt-get update once if apt knows nothing)
vm_kernel_pkg() {
  local pkg
  pkg=$(_vm_resolve_apt "$1")
  if [ -z "$pkg" ] && [ "$(id -u)" = 0 ]; then vm_apt_update; pkg=$(_vm_resolve_apt "$1"); fi
  echo "$pkg"
}
# vm_kernel_release SERIES|RELEASE -> prints the release (uname -r) that would be used
vm_kernel_release() {
  local pkg kv
  pkg=$(vm_kernel_pkg "$1")
  if [ -n "$pkg" ]; then kv=${pkg#linux-image-}; echo "${kv%-unsigned}"; return 0; fi
  _vm_cached_release "$1"   # offline: fall back to what is already extracted
}
vm_kernel_tree() { echo "$VM_CACHE/kernels/$1"; }
# vm_kernel_prepare SERIES|RELEASE -> downloads (once), extracts (once), depmod; prints the release
vm_kernel_prepare() {
  local kv pkg tree deb
  kv=$(vm_kernel_release "$1")
  [ -n "$kv" ] || vm_die "no Debian kernel package found for '$1' (apt-cache knows none; no cached tree)"
  tree=$(vm_kernel_tree "$kv")
  if [ ! -e "$tree/.ok" ]; then
    pkg="linux-image-$kv-unsigned"
    mkdir -p "$VM_CACHE/debs" "$VM_CACHE/kernels"
    deb=$(ls "$VM_CACHE/debs/${pkg}"_*.deb 2>/dev/null | sort -V | tail -1)
    if [ -z "$deb" ]; then
      vm_log "apt-get download $pkg"
      (cd "$VM_CACHE/debs" && { apt-get download -q "$pkg" >/dev/null 2>&1 || { vm_apt_update; apt-get download -q "$pkg" >&2; }; }) \
        || vm_die "apt-get download $pkg failed"
      deb=$(ls "$VM_CACHE/debs/${pkg}"_*.deb 2>/dev/null | sort -V | tail -1)
      [ -n "$deb" ] || vm_die "download of $pkg left no .deb"
    fi
    vm_log "extracting $(basename "$deb")"
    rm -rf "$tree.tmp"; mkdir -p "$tree.tmp"
    dpkg -x "$deb" "$tree.tmp" || vm_die "dpkg -x $deb failed"
    [ -f "$tree.tmp/boot/vmlinuz-$kv" ] || vm_die "$deb has no boot/vmlinuz-$kv"
    depmod -b "$tree.tmp" "$kv" || vm_die "depmod failed for $kv"
    rm -rf "$tree"; mv "$tree.tmp" "$tree"; touch "$tree/.ok"
  fi
  if [ ! -e "$tree/.pvh" ]; then
    _vm_extract_vmlinux "$tree/boot/vmlinuz-$kv" "$tree/boot/vmlinux-$kv"
    touch "$tree/.pvh"
  fi
  echo "$kv"
}
# The bzImage's payload, decompressed, is an ELF vmlinux that qemu boots directly through its PVH
# entry note: no in-guest decompression (1-3 s less per boot under TCG; also avoids a KVM emulation
# failure seen in 6.12's zstd decompressor on nested KVM). Left absent when it cannot be made.
_vm_extract_vmlinux() {  # bzImage out
  local bz=$1 out=$2 ss po pl off magic dec
  ss=$(od -An -tu1 -j $((0x1f1)) -N1 "$bz" | tr -d ' '); [ "$ss" = 0 ] && ss=4
  po=$(od -An -tu4 -j $((0x248)) -N4 "$bz" | tr -d ' ')
  pl=$(od -An -tu4 -j $((0x24c)) -N4 "$bz" | tr -d ' ')
  [ -n "$po" ] && [ -n "$pl" ] && [ "$pl" -gt 4 ] || return 0
  off=$(( (ss + 1) * 512 + po ))
  magic=$(od -An -tx1 -j "$off" -N6 "$bz" | tr -d ' \n')
  case "$magic" in
    fd377a585a00*) dec="xz -dc --single-stream";;
    28b52ffd*) dec="zstd -qdc";;
    1f8b*) dec="gzip -dc";;
    *) return 0;;
  esac
  # the payload ends with the 4-byte uncompressed size
  if dd if="$bz" iflag=skip_bytes,count_bytes skip="$off" count=$((pl - 4)) bs=1M status=none | $dec > "$out.tmp" 2>/dev/null &&
     [ "$(od -An -c -j1 -N3 "$out.tmp" | tr -d ' ')" = ELF ] &&
     { ! command -v readelf >/dev/null || readelf -n "$out.tmp" 2>/dev/null | grep -q 'Xen.*(0x00000012)'; }; then
    mv "$out.tmp" "$out"
  else
    rm -f "$out.tmp"
  fi
}
# vm_kernel_image RELEASE -> the file qemu boots (vmlinux via PVH when available; VM_BOOT=bzimage forces vmlinuz)
vm_kernel_image() {
  local t; t=$(vm_kernel_tree "$1")
  if [ "${VM_BOOT:-pvh}" != bzimage ] && [ -f "$t/boot/vmlinux-$1" ]; then echo "$t/boot/vmlinux-$1"; else echo "$t/boot/vmlinuz-$1"; fi
}
vm_kernel_series() {  # release -> series label
  case "$1" in 6.1.*) echo 6.1;; 6.12.*) echo 6.12;; *) echo "${1%%-*}" | cut -d. -f1-2;; esac
}

# ---------------------------------------------------------------- initramfs
# Tiny busybox initramfs: virtio-pci + 9p + overlay modules (decompressed, insmod order) and guest/init.
vm_initrd() {  # $1 release -> prints the path of the initramfs (rebuilt when guest/init changes)
  local kv=$1 tree out t m name path order=()
  tree=$(vm_kernel_tree "$kv"); out="$VM_CACHE/initrd/$kv.cpio.gz"
  if [ -f "$out" ] && [ "$out" -nt "$VM_DIR/guest/init" ] && [ "$out" -nt "$VM_DIR/lib/common.sh" ]; then echo "$out"; return 0; fi
  file -L /bin/busybox | grep -q 'statically linked' || vm_die "/bin/busybox is not static (need busybox-static)"
  mkdir -p "$VM_CACHE/initrd"
  t=$(mktemp -d "$VM_CACHE/initrd/tmp.XXXXXX")
  mkdir -p "$t"/{bin,proc,sys,dev,mods,lower,rw,newroot}
  cp /bin/busybox "$t/bin/busybox"; ln -s busybox "$t/bin/sh"
  for m in virtio_pci 9pnet_virtio 9p overlay; do
    while read -r _ path _; do
      name=$(basename "$path"); name=${name%%.ko*}
      [[ " ${order[*]} " == *" $name "* ]] && continue
      case "$path" in
        *.ko) cp "$path" "$t/mods/$name.ko";;
        *.ko.xz) xz -dc "$path" > "$t/mods/$name.ko";;
        *.ko.zst) zstd -qdc "$path" > "$t/mods/$name.ko";;
        *) vm_die "unknown module format $path";;
      esac
      order+=("$name")
    done < <(modprobe -d "$tree" -S "$kv" --show-depends "$m" | grep '^insmod')
  done
  printf '%s\n' "${order[@]}" > "$t/mods/order"
  cp "$VM_DIR/guest/init" "$t/init"; chmod 755 "$t/init"
  (cd "$t" && find . | cpio -o -H newc --quiet | gzip -1) > "$out.tmp" && mv "$out.tmp" "$out"
  rm -rf "$t"
  echo "$out"
}

# ---------------------------------------------------------------- guest programs
vm_build_programs() {
  mkdir -p "$VM_CACHE/bin"
  local src=$VM_DIR/dlmload.c bin=$VM_CACHE/bin/dlmload
  if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ]; then
    vm_log "gcc dlmload"
    gcc -O2 -Wall -Wextra -o "$bin.tmp" "$src" -ldlm_lt && mv "$bin.tmp" "$bin" || vm_die "building dlmload failed"
  fi
}

# ---------------------------------------------------------------- accelerator
# kvm only when it really works *and* is fast: /dev/kvm can exist on a nested host where KVM boots a
# kernel 50-100x slower than TCG (seen here: Firecracker L1, >2 min to reach the kernel's ACPI init),
# or fails (MSR/emulation errors). The probe boots the kernel + initramfs with vm_probe=1 (the
# init powers off at once) under KVM; kvm if that ends well within VM_KVM_PROBE_S (10) seconds.
# The verdict is cached per host boot in cache/accel.<boot_id>.
vm_accel_detect() {  # $1 release, $2 initramfs
  local kv=$1 initrd=$2 bid cachef t0 el log
  if ! { [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; }; then echo tcg; return; fi
  bid=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null || echo unknown)
  cachef=$VM_CACHE/accel.$bid
  if [ -s "$cachef" ]; then cut -d' ' -f1 "$cachef"; return; fi
  rm -f "$VM_CACHE"/accel.*
  log=$(mktemp)
  t0=$(date +%s.%N)
  timeout "${VM_KVM_PROBE_S:-10}" qemu-system-x86_64 -accel kvm -smp 1 -m 256 -nodefaults -no-user-config \
    -no-reboot -display none -serial "file:$log" -kernel "$(vm_kernel_image "$kv")" -initrd "$initrd" \
    -append "console=ttyS0 panic=-1 loglevel=1 vm_probe=1" >/dev/null 2>&1
  el=$(vm_elapsed "$t0")
  if grep -q 'vm-init: probe ok' "$log"; then
    echo "kvm probe-boot ${el}s" > "$cachef"
  else
    echo "tcg kvm-probe-failed-after ${el}s" > "$cachef"
  fi
  rm -f "$log"
  vm_log "accelerator probe: $(cat "$cachef")"
  cut -d' ' -f1 "$cachef"
}
