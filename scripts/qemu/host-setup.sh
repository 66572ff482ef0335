#!/usr/bin/env bash
# Host preparation for the QEMU board test (Debian 12, as root): the emulator, the tools that build
# the guest image, and binfmt_misc so the ARM rootfs can be finished in a chroot.
# Idempotent; installs nothing when everything is there already.
set -euo pipefail
need=""
for b in qemu-system-aarch64 qemu-aarch64-static update-binfmts debootstrap mkfs.ext4 cpio modprobe zstd xz; do
  command -v "$b" >/dev/null 2>&1 || need=1
done
if [ -n "$need" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends qemu-system-arm qemu-user-static binfmt-support debootstrap qemu-utils e2fsprogs cpio kmod zstd xz-utils >/dev/null
fi
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
update-binfmts --enable qemu-arm >/dev/null 2>&1 || true
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || { echo "binfmt qemu-aarch64 not registered" >&2; exit 1; }
echo "host ready: $(qemu-system-aarch64 --version | head -1)"
