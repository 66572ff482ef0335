#!/usr/bin/env bash
# Prints the Debian package mirror the guest image is built from: LENSCAP_DEBIAN_MIRROR when set,
# else the host's own apt configuration (deb822 *.sources, then one-line sources.list / *.list): the
# first enabled `deb` entry for a Debian release suite with the main component. The same mirror the
# host already trusts and reaches (a CI proxy, a local cache, a snapshot), never a host name of ours.
# Fails naming LENSCAP_DEBIAN_MIRROR when none is found (e.g. a non-Debian host).
# Usage: scripts/qemu/host-mirror.sh [APT_DIR]   (APT_DIR defaults to /etc/apt; tests pass a fake one)
set -euo pipefail
APT_DIR="${1:-/etc/apt}"
if [ -n "${LENSCAP_DEBIAN_MIRROR:-}" ]; then
  echo "$LENSCAP_DEBIAN_MIRROR"
  exit 0
fi
# Release suites only: -security, -updates and -backports live elsewhere or lack the full archive.
SUITES='^(bullseye|bookworm|trixie|forky|duke|sid|oldoldstable|oldstable|stable|testing|unstable)$'

mirror=""
shopt -s nullglob
for f in "$APT_DIR"/sources.list.d/*.sources; do
  mirror="$(awk -v suites="$SUITES" '
    function flush() {
      if (uris != "" && enabled && types ~ /(^| )deb( |$)/ && comps ~ /(^| )main( |$)/) {
        n = split(suite, s, " "); ok = 0
        for (i = 1; i <= n; i++) if (s[i] ~ suites) ok = 1
        if (ok) { split(uris, u, " "); print u[1]; found = 1; exit }
      }
      uris = ""; types = ""; suite = ""; comps = ""; enabled = 1
    }
    BEGIN { enabled = 1 }
    /^[ \t]*#/ { next }
    /^[ \t]*$/ { flush(); next }
    { key = tolower($1); sub(/:$/, "", key); $1 = ""; val = $0; sub(/^[ \t]+/, "", val) }
    key == "types" { types = val }
    key == "uris" { uris = val }
    key == "suites" { suite = val }
    key == "components" { comps = val }
    key == "enabled" { enabled = (tolower(val) != "no") }
    END { if (!found) flush() }
  ' "$f")"
  [ -n "$mirror" ] && break
done
if [ -z "$mirror" ]; then
  for f in "$APT_DIR/sources.list" "$APT_DIR"/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    # deb [options] URI SUITE COMPONENT...
    mirror="$(awk -v suites="$SUITES" '
      $1 != "deb" { next }
      { i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ } }
      $(i + 1) ~ suites {
        for (j = i + 2; j <= NF; j++) if ($j == "main") { print $i; exit }
      }
    ' "$f")"
    [ -n "$mirror" ] && break
  done
fi
if [ -z "$mirror" ]; then
  echo "no Debian mirror in $APT_DIR (sources.list.d/*.sources, sources.list): set LENSCAP_DEBIAN_MIRROR=<mirror URL>" >&2
  exit 1
fi
echo "${mirror%/}"
