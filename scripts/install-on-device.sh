#!/bin/sh
# install-on-device.sh: installs a lenscap bundle on a camera board (POSIX sh; works with BusyBox).
#
#   sh install-on-device.sh [--bundle lenscap-<v>-linux-<arch>.tar.gz] [--node /usr/local/bin/node]
#                           [--camera-device /dev/video0] [--encoder-device /dev/video11]
#                           [--init auto|systemd|sysv|none] [--start] [--root DIR]
#
# Without --bundle it installs the extracted bundle it sits in. It checks every file against the
# bundle's SHA256SUMS first and installs nothing on a mismatch. Then:
#   /opt/lenscap            the bundle (root-owned, read-only to the agent)
#   lenscap system user     in the `video` group, no login shell
#   /var/lib/lenscap        state dir, 0700 lenscap (identity, trust, audit, event queue)
#   /etc/lenscap/agent.json config, 0640 root:lenscap; an existing one is kept (new default saved
#                           beside it as agent.json.dist)
#   /usr/local/bin/lenscap  launcher bound to the chosen node
#   the service             systemd unit (hardened, watchdog) or a SysV/BusyBox init script; the
#                           unit may open the camera and the hardware encoder node(s) only (found in
#                           sysfs, or given with --encoder-device, repeatable)
# --root DIR installs into an image tree instead of the running system: users are written into
# DIR/etc/passwd and DIR/etc/group directly and no service is started.
# Never prints or touches key material; provisioning is a separate step (docs/shipping.md).
set -eu

BUNDLE=""
NODE=""
CAMERA_DEVICE=/dev/video0
ENCODER_DEVICES=""
INIT=auto
START=0
ROOT=/
USER_NAME=lenscap
MIN_NODE_MAJOR=18

say() { printf 'install-on-device: %s\n' "$*"; }
die() { printf 'install-on-device: error: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --bundle) BUNDLE="${2:?--bundle needs a file}"; shift 2 ;;
    --node) NODE="${2:?--node needs a path}"; shift 2 ;;
    --camera-device) CAMERA_DEVICE="${2:?--camera-device needs a path}"; shift 2 ;;
    --encoder-device) case "${2:-}" in /dev/*) ENCODER_DEVICES="$ENCODER_DEVICES $2" ;; *) die "--encoder-device must be a /dev path" ;; esac; shift 2 ;;
    --init) INIT="${2:?--init needs auto|systemd|sysv|none}"; shift 2 ;;
    --start) START=1; shift ;;
    --root) ROOT="${2:?--root needs a directory}"; shift 2 ;;
    -h|--help) sed -n '2,/^set -eu$/p' "$0" | sed -e '/^set -eu$/d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
case "$INIT" in auto|systemd|sysv|none) ;; *) die "--init must be auto, systemd, sysv or none" ;; esac
case "$CAMERA_DEVICE" in /dev/*) ;; *) die "--camera-device must be a /dev path" ;; esac
[ -d "$ROOT" ] || die "--root $ROOT is not a directory"
ROOT=$(cd "$ROOT" && pwd)
if [ "$ROOT" = / ]; then P=""; else P="$ROOT"; fi
[ "$(id -u)" = 0 ] || [ -n "$P" ] || die "run as root (it creates a system user and a service)"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/lenscap-install.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM

# --- the bundle -------------------------------------------------------------------------------
if [ -n "$BUNDLE" ]; then
  [ -f "$BUNDLE" ] || die "no such bundle: $BUNDLE"
  tar -xzf "$BUNDLE" -C "$TMP" || die "cannot extract $BUNDLE"
  SRC=""
  for d in "$TMP"/*/; do [ -f "$d/MANIFEST.json" ] && SRC="${d%/}"; done
  [ -n "$SRC" ] || die "$BUNDLE holds no MANIFEST.json: not a lenscap bundle"
else
  SRC=$(cd "$(dirname "$0")" && pwd)
  [ -f "$SRC/MANIFEST.json" ] || die "run from an extracted bundle or pass --bundle FILE"
fi
[ -f "$SRC/SHA256SUMS" ] || die "bundle has no SHA256SUMS"
command -v sha256sum >/dev/null 2>&1 || die "sha256sum not found (BusyBox: enable it)"
if ! (cd "$SRC" && sha256sum -c SHA256SUMS >"$TMP/sums.log" 2>&1); then
  grep -v ': OK$' "$TMP/sums.log" | head -5 >&2
  die "bundle checksum mismatch: nothing installed"
fi
VERSION=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$SRC/MANIFEST.json" | head -1)
ARCH=$(sed -n 's/^ *"arch": *"\([^"]*\)".*/\1/p' "$SRC/MANIFEST.json" | head -1)
say "bundle lenscap $VERSION ($ARCH), checksums OK"

# --- node -------------------------------------------------------------------------------------
if [ -z "$NODE" ]; then
  NODE=$(command -v node 2>/dev/null || true)
  [ -n "$NODE" ] || die "no node on PATH; pass --node /path/to/node (Node 20 recommended, see docs/shipping.md)"
fi
if [ -z "$P" ]; then
  [ -x "$NODE" ] || die "node $NODE is not executable"
  NODE_VERSION=$("$NODE" -p 'process.versions.node' 2>/dev/null) || die "$NODE does not run"
  NODE_MAJOR=${NODE_VERSION%%.*}
  [ "$NODE_MAJOR" -ge "$MIN_NODE_MAJOR" ] 2>/dev/null || die "node $NODE_VERSION is too old (need >= $MIN_NODE_MAJOR, 20 recommended)"
  [ "$NODE_MAJOR" -ge 20 ] || say "warning: node $NODE_VERSION: the bundle targets Node 20 (Node 18 runs it, but node-media-server 4 declares >= 20)"
  say "node $NODE_VERSION at $NODE"
else
  [ -x "$P$NODE" ] || [ -x "$NODE" ] || say "warning: $NODE not found in $ROOT; the service will use it as given"
fi

# --- files ------------------------------------------------------------------------------------
mkdir -p "$P/opt"
NEW="$P/opt/.lenscap.new.$$"
OLD="$P/opt/.lenscap.old.$$"
rm -rf "$NEW"
mkdir -p "$NEW"
(cd "$SRC" && tar -cf - .) | (cd "$NEW" && tar -xf -)
if [ "$(id -u)" = 0 ]; then chown -R 0:0 "$NEW"; fi
chmod -R go-w "$NEW"
chmod 0755 "$NEW"
# Swap in one step so a half-copied tree is never the installed one.
if [ -e "$P/opt/lenscap" ]; then mv "$P/opt/lenscap" "$OLD"; fi
mv "$NEW" "$P/opt/lenscap"
rm -rf "$OLD"
say "installed /opt/lenscap"

# --- user -------------------------------------------------------------------------------------
group_exists() { grep -q "^$1:" "$P/etc/group" 2>/dev/null; }
user_exists() { grep -q "^$1:" "$P/etc/passwd" 2>/dev/null; }
free_id() { # first id in 100..999 unused in both passwd and group of the target root
  id=100
  while [ $id -lt 1000 ]; do
    if ! cut -d: -f3 "$P/etc/passwd" "$P/etc/group" 2>/dev/null | grep -qx "$id"; then echo $id; return 0; fi
    id=$((id + 1))
  done
  return 1
}
nologin=/usr/sbin/nologin
[ -x "$P$nologin" ] || nologin=/sbin/nologin
[ -x "$P$nologin" ] || nologin=/bin/false
if [ -n "$P" ]; then
  mkdir -p "$P/etc"
  touch "$P/etc/passwd" "$P/etc/group"
  if ! group_exists video; then echo "video:x:$(free_id):" >>"$P/etc/group"; fi
  if ! user_exists "$USER_NAME"; then
    uid=$(free_id) || die "no free system id"
    group_exists "$USER_NAME" || echo "$USER_NAME:x:$uid:" >>"$P/etc/group"
    gid=$(grep "^$USER_NAME:" "$P/etc/group" | cut -d: -f3)
    echo "$USER_NAME:x:$uid:$gid:lenscap camera agent:/var/lib/lenscap:$nologin" >>"$P/etc/passwd"
    if [ -f "$P/etc/shadow" ]; then echo "$USER_NAME:!:1::::::" >>"$P/etc/shadow"; fi
  fi
  # Add to video: append the name to the member list unless it is there already.
  awk -F: -v OFS=: -v u="$USER_NAME" '$1=="video" { n=split($4,m,","); f=0; for(i=1;i<=n;i++) if(m[i]==u) f=1; if(!f) $4=($4==""?u:$4","u) } {print}' \
    "$P/etc/group" >"$TMP/group" && cat "$TMP/group" >"$P/etc/group"
else
  if ! group_exists video; then
    if command -v groupadd >/dev/null 2>&1; then groupadd -r video; else addgroup -S video; fi
  fi
  if ! id "$USER_NAME" >/dev/null 2>&1; then
    if command -v useradd >/dev/null 2>&1; then
      useradd --system --user-group --home-dir /var/lib/lenscap --no-create-home --shell "$nologin" --comment "lenscap camera agent" "$USER_NAME"
    else
      addgroup -S "$USER_NAME"
      adduser -S -D -H -h /var/lib/lenscap -s "$nologin" -G "$USER_NAME" -g "lenscap camera agent" "$USER_NAME"
    fi
  fi
  if ! id -Gn "$USER_NAME" | tr ' ' '\n' | grep -qx video; then
    if command -v usermod >/dev/null 2>&1; then usermod -aG video "$USER_NAME"; else addgroup "$USER_NAME" video; fi
  fi
fi
UID_N=$(grep "^$USER_NAME:" "$P/etc/passwd" | cut -d: -f3)
GID_N=$(grep "^$USER_NAME:" "$P/etc/passwd" | cut -d: -f4)
say "user $USER_NAME ($UID_N:$GID_N) in group video"

# --- state dir and config ---------------------------------------------------------------------
own() { if [ "$(id -u)" = 0 ]; then chown "$1" "$2"; fi; }
mkdir -p "$P/var/lib/lenscap"
chmod 0700 "$P/var/lib/lenscap"
own "$UID_N:$GID_N" "$P/var/lib/lenscap"
mkdir -p "$P/etc/lenscap"
chmod 0750 "$P/etc/lenscap"
own "0:$GID_N" "$P/etc/lenscap"
if [ -f "$P/etc/lenscap/agent.json" ]; then
  cp "$SRC/packaging/agent.json" "$P/etc/lenscap/agent.json.dist"
  chmod 0640 "$P/etc/lenscap/agent.json.dist"
  own "0:$GID_N" "$P/etc/lenscap/agent.json.dist"
  say "kept existing /etc/lenscap/agent.json (new default: agent.json.dist)"
else
  cp "$SRC/packaging/agent.json" "$P/etc/lenscap/agent.json"
  chmod 0640 "$P/etc/lenscap/agent.json"
  own "0:$GID_N" "$P/etc/lenscap/agent.json"
  say "wrote /etc/lenscap/agent.json"
fi

mkdir -p "$P/usr/local/bin"
printf '#!/bin/sh\n# lenscap launcher (written by install-on-device.sh)\nexec "%s" /opt/lenscap/bin/lenscap.js "$@"\n' "$NODE" >"$P/usr/local/bin/lenscap"
chmod 0755 "$P/usr/local/bin/lenscap"

# --- service ----------------------------------------------------------------------------------
if [ "$INIT" = auto ]; then
  if [ -z "$P" ] && [ -d /run/systemd/system ]; then INIT=systemd
  elif [ -n "$P" ] && [ -x "$P/lib/systemd/systemd" ]; then INIT=systemd
  elif [ -d "$P/etc/init.d" ]; then INIT=sysv
  else INIT=none
  fi
fi
# Hardware H.264 encoders (V4L2 mem2mem, e.g. bcm2835-codec-encode) the agent may use, from sysfs.
if [ -z "$ENCODER_DEVICES" ] && [ -d "$P/sys/class/video4linux" ]; then
  for n in "$P"/sys/class/video4linux/video*/name; do
    [ -f "$n" ] || continue
    case "$(cat "$n")" in *[Ee]nc*) d=${n%/name}; ENCODER_DEVICES="$ENCODER_DEVICES /dev/${d##*/}" ;; esac
  done
fi
ENCODER_LINES=""
for d in $ENCODER_DEVICES; do ENCODER_LINES="${ENCODER_LINES}DeviceAllow=$d rw\n"; done
fill() {
  sed -e "s|@NODE@|$NODE|g" -e "s|@CAMERA_DEVICE@|$CAMERA_DEVICE|g" "$1" \
    | awk -v lines="$ENCODER_LINES" '$0 == "#@ENCODER_DEVICES@" { printf "%s", lines; next } { print }' >"$2"
}
case "$INIT" in
  systemd)
    mkdir -p "$P/etc/systemd/system"
    fill "$SRC/packaging/lenscap.service" "$P/etc/systemd/system/lenscap.service"
    chmod 0644 "$P/etc/systemd/system/lenscap.service"
    if [ -z "$P" ] && command -v systemctl >/dev/null 2>&1; then
      systemctl daemon-reload
      systemctl enable lenscap.service >/dev/null 2>&1 || say "warning: systemctl enable failed"
      if [ $START = 1 ]; then systemctl restart lenscap.service; fi
    else
      mkdir -p "$P/etc/systemd/system/multi-user.target.wants"
      ln -sf /etc/systemd/system/lenscap.service "$P/etc/systemd/system/multi-user.target.wants/lenscap.service"
    fi
    say "service: systemd unit /etc/systemd/system/lenscap.service (enabled)"
    ;;
  sysv)
    mkdir -p "$P/etc/init.d"
    if [ -f "$P/etc/init.d/rcS" ] && ! command -v update-rc.d >/dev/null 2>&1; then
      target=/etc/init.d/S90lenscap # Buildroot/BusyBox rcS runs S??* in order
    else
      target=/etc/init.d/lenscap
    fi
    fill "$SRC/packaging/lenscap.init" "$P$target"
    chmod 0755 "$P$target"
    if [ -z "$P" ] && [ "$target" = /etc/init.d/lenscap ] && command -v update-rc.d >/dev/null 2>&1; then
      update-rc.d lenscap defaults >/dev/null 2>&1 || true
    fi
    if [ -z "$P" ] && [ $START = 1 ]; then "$target" start; fi
    say "service: init script $target"
    ;;
  none) say "service: none installed (--init none)" ;;
esac
say "done. Next: provision this camera (docs/shipping.md), then start the service."
