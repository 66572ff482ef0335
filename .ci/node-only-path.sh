#!/usr/bin/env bash
# Builds the PATH of CI's Node-only pass: a directory of symlinks standing for a Debian 12 machine
# with Node 20 and nothing else: node/npm/npx, the programs of Debian's base system (packages of
# priority required, important and standard: coreutils, tar, mount, procps, …) and git/openssl.
# The programs tests may use but a Node-only machine lacks (ffmpeg, ffprobe, mosquitto, chromium,
# nginx, rabbitmq-server, epmd) are never in it, even though CI has them installed: tests that need
# them must skip by name, and ffmpeg must come from @ffmpeg-installer/ffmpeg as the README promises.
# Usage: .ci/node-only-path.sh DIR   (then PATH=DIR; fails when a hidden program is still visible)
set -euo pipefail
dir=${1:?usage: .ci/node-only-path.sh DIR}
rm -rf "$dir"
mkdir -p "$dir"
link() { [ -e "$dir/${1##*/}" ] || ln -s "$1" "$dir/${1##*/}"; }

node_dir=$(dirname "$(command -v node)")
for p in node npm npx corepack; do [ -x "$node_dir/$p" ] && link "$node_dir/$p"; done

pkgs=$(dpkg-query -W -f='${Priority} ${Package}\n' | awk '$1 == "required" || $1 == "important" || $1 == "standard" { print $2 }')
for pkg in $pkgs git openssl; do dpkg -L "$pkg" 2>/dev/null || true; done |
  grep -E '^/(usr/)?s?bin/[^/]+$' | sort -u |
  while read -r f; do if [ -x "$f" ] && [ ! -d "$f" ]; then link "$f"; fi; done
# Names managed by update-alternatives (awk -> mawk, pager, editor, …) are not in any package's file
# list: link each bin-dir symlink whose final target is a program already linked.
declare -A linked=()
for f in "$dir"/*; do linked[$(readlink -f "$f")]=1; done
for f in /usr/local/bin/* /usr/bin/* /bin/* /usr/sbin/* /sbin/*; do
  if [ -L "$f" ] && [ -n "${linked[$(readlink -f "$f")]:-}" ]; then link "$f"; fi
done

# Never visible here, whatever pulled them in (names and their helpers).
hidden='^(ffmpeg|ffprobe|ffplay|mosquitto.*|chromium.*|chrome.*|nginx.*|rabbitmq.*|epmd|erl|erlc|escript)$'
for f in "$dir"/*; do if [[ ${f##*/} =~ $hidden ]]; then rm -f "$f"; fi; done

for p in ffmpeg ffprobe mosquitto chromium nginx rabbitmq-server; do
  if PATH=$dir command -v "$p" >/dev/null; then
    echo "node-only-path: $p is still visible in $dir" >&2
    exit 1
  fi
done
echo "$dir"
