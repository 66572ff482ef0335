#!/usr/bin/env bash
# QEMU ARM board test for CI (needs root: debootstrap, chroot, binfmt_misc). Called from .ci/run
# after `npm test`. Installs the host packages, mounts binfmt_misc, builds (or reuses) the arm64
# guest image, then runs `npm run test:arm`, printing each phase's duration and the test's report.
# The image cache lives outside the clone (LENSCAP_QEMU_CACHE, default /var/cache/lenscap-qemu) so
# CI on a kept machine reuses it; it is keyed by a hash of the recipe, so a changed recipe rebuilds.
# The guest's packages come from the host's own apt mirror (scripts/qemu/host-mirror.sh), or from
# LENSCAP_DEBIAN_MIRROR when set.
# Fails (non-zero) when any stage fails, including when the full flow cannot run because an agent
# piece is missing: it never passes by skipping. LENSCAP_TEST_ARM_STAGES=1 (an explicit choice) runs
# the infrastructure stage only; stage 2 is then reported as SKIPPED and NOT RUN.
set -euo pipefail
cd "$(dirname "$0")/.."
export LENSCAP_QEMU_CACHE="${LENSCAP_QEMU_CACHE:-/var/cache/lenscap-qemu}"
export DEBIAN_FRONTEND=noninteractive
t_all=$(date +%s)
declare -a summary=()
cur_phase=""
phase_start() { cur_phase="$1"; t_phase=$(date +%s); printf '\n=== arm: %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }
phase_end() { cur_phase=""; local d=$(( $(date +%s) - t_phase )); summary+=("$(printf '%-28s %5ss' "$1" "$d")"); printf '=== arm: %s done in %ss\n' "$1" "$d"; }
print_summary() {
  local rc=$?
  if [ -n "$cur_phase" ]; then summary+=("$(printf '%-28s %5ss  FAILED' "$cur_phase" "$(( $(date +%s) - t_phase ))")"); fi
  printf '\n=== arm: phase durations\n'
  for l in "${summary[@]}"; do printf '  %s\n' "$l"; done
  printf '  %-28s %5ss\n' total "$(( $(date +%s) - t_all ))"
  if [ -f .qemu-cache/last-run/report.txt ]; then cat .qemu-cache/last-run/report.txt; fi
  printf '=== arm: %s\n' "$([ $rc = 0 ] && echo PASSED || echo "FAILED (exit $rc)")"
}
trap print_summary EXIT

[ "$(id -u)" = 0 ] || { echo "arm: needs root (debootstrap/chroot/binfmt)"; exit 1; }

phase_start "host packages"
apt-get update -qq
apt-get install -y -qq --no-install-recommends qemu-system-arm qemu-user-static binfmt-support debootstrap qemu-utils e2fsprogs cpio kmod zstd xz-utils >/dev/null
phase_end "host packages"

phase_start "binfmt_misc"
scripts/qemu/host-setup.sh
phase_end "binfmt_misc"

phase_start "guest image (arm64)"
scripts/qemu/image.sh arm64
phase_end "guest image (arm64)"

if [ "${LENSCAP_TEST_ARM_STAGES:-1,2}" != "1,2" ]; then echo "arm: WARNING: LENSCAP_TEST_ARM_STAGES=$LENSCAP_TEST_ARM_STAGES: the full flow (stage 2) is NOT RUN"; fi
phase_start "npm run test:arm"
npm run test:arm
phase_end "npm run test:arm"
