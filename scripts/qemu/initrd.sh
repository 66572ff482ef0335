#!/usr/bin/env bash
# Builds a small initrd on the host for the guest kernel: BusyBox from the guest rootfs, the
# modules needed to mount the virtio root disk (with their dependencies, resolved by modprobe
# against the rootfs), and a tiny /init that switches to the rootfs' own init.
# Avoids Debian's initramfs-tools, which takes minutes under emulation.
# Usage: initrd.sh ROOTFS KERNEL_VERSION OUT.img
set -euo pipefail
ROOT="$1"; KVER="$2"; OUT="$3"
T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT
mkdir -p "$T"/{bin,dev,proc,sys,newroot,lib/modules}
cp "$ROOT/bin/busybox" "$T/bin/busybox"
for a in sh mount umount switch_root insmod mkdir cat sleep echo grep; do ln -s busybox "$T/bin/$a"; done
: >"$T/modules.order"
for m in virtio_pci virtio_blk ext4 crc32c_generic; do
  modprobe -d "$ROOT" -S "$KVER" --show-depends "$m" 2>/dev/null | awk '$1=="insmod"{print $2}' | while read -r f; do
    rel="${f#"$ROOT"}"
    dst="$T/lib/modules/$(basename "$rel")"
    [ -e "$dst" ] && continue
    case "$rel" in
      *.ko.xz) xz -dc "$f" >"${dst%.xz}"; echo "${dst%.xz}" ;;
      *.ko.zst) zstd -qdc "$f" >"${dst%.zst}"; echo "${dst%.zst}" ;;
      *) cp "$f" "$dst"; echo "$dst" ;;
    esac | sed "s|^$T||" >>"$T/modules.order"
  done
done
cat >"$T/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules.order); do insmod "$m" 2>/dev/null; done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
mount -t ext4 -o rw /dev/vda /newroot || { echo "initrd: cannot mount /dev/vda"; exec sh; }
umount /proc /sys
mount --move /dev /newroot/dev 2>/dev/null || umount /dev
exec switch_root /newroot /sbin/init
INIT
chmod +x "$T/init"
( cd "$T" && find . | cpio -o -H newc --quiet | gzip -9 ) >"$OUT"
echo "  initrd: $(du -h "$OUT" | cut -f1) with $(wc -l <"$T/modules.order") modules" >&2
