# Sourced by the guest scenario scripts (run by the image's harness as root from /mnt/host).
S=/mnt/host
. "$S/env.sh"
# Marks: "name guest-uptime-seconds" lines the host reads to time each step.
mark() { echo "$1 $(cut -d' ' -f1 /proc/uptime)" >>"$S/marks"; echo "== $1 ($(cut -d' ' -f1 /proc/uptime) s)"; }
fail() { echo "FAIL: $*"; echo "$*" >"$S/failed"; exit 1; }
check() { desc="$1"; shift; if "$@"; then echo "ok: $desc"; else fail "$desc"; fi; }
# Waits up to $2 seconds for file $1 in the share (the host's answers).
wait_share() { i=0; while [ ! -e "$S/$1" ] && [ $i -lt $(($2 * 10)) ]; do sleep 0.1; i=$((i + 1)); done; [ -e "$S/$1" ]; }
