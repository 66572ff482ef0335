# QEMU board test, guest side, stage 2 (sourced by scenario.sh when FULL=1): the full flow.
# env.sh gives SERIAL, TOKEN, PROV_URL, BROKER_URL, FWD_PORTS, GATE_PORT. The host drives the
# timing through files in the share: start-agent (host → guest), stop-agent (host → guest).
set -u
# The host's dev cloud is at 10.0.2.100 (guestfwd); the forwarder makes it 127.0.0.1 in the guest
# too, so the URLs and certificate names are the ones the dev cloud printed.
node "$S/forward.mjs" $FWD_PORTS >/tmp/forward.log 2>&1 &
sleep 1
mark forwarder-up

install -m 0644 "$S/provisioning-ca.pem" /etc/lenscap/provisioning-ca.pem
runuser -u lenscap -- /usr/local/bin/lenscap provision --serial "$SERIAL" --url "$PROV_URL" \
  --token "$TOKEN" --ca /etc/lenscap/provisioning-ca.pem --state-dir /var/lib/lenscap || fail "lenscap provision"
check "device key is 0600 lenscap" test "$(stat -c '%a %U' /var/lib/lenscap/identity/device.key)" = "600 lenscap"
# Public material the host needs to check the gate's TLS certificate (never the key).
cat /var/lib/lenscap/identity/device-ca.pem >"$S/device-ca.pem"
mark provisioned

cat >/etc/lenscap/agent.json <<JSON
{
  "serial": "$SERIAL",
  "stateDir": "/var/lib/lenscap",
  "log": { "level": "info" },
  "cloud": { "url": "$BROKER_URL", "protocolVersion": $CLOUD_PROTO, "backoff": { "initialDelayMaxMs": 0 } },
  "camera": { "driver": "v4l2", "device": "/dev/video0", "width": 320, "height": 180, "fps": 15 },
  "gate": { "host": "0.0.0.0", "port": $GATE_PORT, "tls": true, "firstKeyframeTimeoutSeconds": 120 },
  "stream": { "mode": "on-demand" },
  "events": { "postRollSeconds": 2, "maxClipSeconds": 12, "cooldownSeconds": 600, "analysisFps": 2 }
}
JSON
# firstKeyframeTimeoutSeconds: ffmpeg alone needs ~12 s to its first keyframe under TCG and a cold
# play ~28 s end to end; the default 20 s suits a real board, not an emulated one.
runuser -u lenscap -- /usr/local/bin/lenscap config check /etc/lenscap/agent.json >/dev/null || fail "config check"

# Motion events (issue 16): vivid's picture must be still until the host asks for motion: no OSD
# text (its frame counter and clock change every frame), no movement (the default).
v4l2-ctl -d /dev/video0 -c osd_text_mode=2 -c horizontal_movement=3 || { v4l2-ctl -d /dev/video0 -l; fail "v4l2-ctl: still picture"; }
# The label's claim code, for the host's owner claim (a test board: a real one prints it on the label).
cat /var/lib/lenscap/owner/claim-secret >"$S/claim-code"

wait_share start-agent 300 || fail "host never said start-agent"
mark agent-start
systemctl start lenscap.service || { systemctl status lenscap --no-pager; journalctl -u lenscap --no-pager | tail -40; fail "systemctl start lenscap"; }
mark agent-started
# The agent's journal, live in the share, so a failed host-side step can be read afterwards
# (.qemu-cache/last-run/share/agent-journal.log).
journalctl -u lenscap -f -o short-monotonic --no-pager >"$S/agent-journal.log" 2>&1 &
# The agent's own figures on this board (idle, then ffmpeg alone on the capture's arguments), in
# the background while the host drives the flow: arm-idle.json, arm-ffmpeg.json (issue 18 goal 4).
node "$S/arm-figures.mjs" "$S" >/tmp/arm-figures.log 2>&1 &
systemctl show -p MainPID -p ActiveState -p NRestarts lenscap.service

# Motion: the host has claimed the camera (owner-held membership with a viewer key), turned events
# on with cmd/events (off by default) and asks for movement; vivid's pattern then moves and one snapshot + one clip must be sealed and spooled.
wait_share motion-on 600 || { journalctl -u lenscap --no-pager | tail -60; fail "host never said motion-on"; }
v4l2-ctl -d /dev/video0 -c horizontal_movement=6 || fail "v4l2-ctl: horizontal movement"
mark motion-on
# The clip ends at maxClipSeconds (12) even while vivid keeps moving; the 600 s cooldown keeps it to
# one event (the emulated board cannot keep up with overlapping events: at a 30 s cooldown every
# snapshot took over 60 s beside the capture and the next event's clip). The journal is the witness (an upload sink may already have taken the spool files).
sealed() { journalctl -u lenscap --no-pager -o cat | grep '"msg":"artifact sealed"' | grep -c "\"kind\":\"$1\""; }
i=0
while [ $i -lt 2400 ] && { [ "$(sealed snapshot)" -lt 1 ] || [ "$(sealed clip)" -lt 1 ]; }; do sleep 0.5; i=$((i + 5)); done
v4l2-ctl -d /dev/video0 -c horizontal_movement=3
journalctl -u lenscap --no-pager -o cat | grep -E '"msg":"(motion event|artifact sealed|motion detection started)"|ERR_EVENTS' | tail -8
ls -l /var/lib/lenscap/events/spool/ 2>&1 | tail -4
check "one motion snapshot sealed on the board" test "$(sealed snapshot)" -eq 1
check "one motion clip sealed on the board" test "$(sealed clip)" -eq 1
cp /var/lib/lenscap/events/spool/*.sealed "$S/" 2>/dev/null || true
mark motion-recorded

wait_share stop-agent 600 || { journalctl -u lenscap --no-pager | tail -60; fail "host never said stop-agent"; }
check "agent still active before stop (no watchdog kill, no restart)" test "$(systemctl show -p NRestarts --value lenscap.service)" = 0
mark agent-stop
systemctl stop lenscap.service
mark agent-stopped
systemctl show -p ExecMainStatus -p ExecMainCode -p Result -p ActiveState lenscap.service | tee "$S/agent-stop.txt"
journalctl -u lenscap --no-pager -o cat >"$S/agent.journal" 2>&1
check "unit result success" grep -qx 'Result=success' "$S/agent-stop.txt"
# systemd counts death by SIGTERM as success too; the agent must have handled it and exited 0.
check "agent handled SIGTERM and exited 0" sh -c "grep -qx 'ExecMainCode=1' '$S/agent-stop.txt' && grep -qx 'ExecMainStatus=0' '$S/agent-stop.txt'"
check "no ffmpeg left behind" sh -c '! pgrep -x ffmpeg >/dev/null'
# ffmpeg alone runs now that the camera is free; a failed measurement is reported, not a failed flow.
mark camera-free
i=0; while ! grep -qE '^(ffmpeg-measured|arm-figures-failed) ' "$S/marks" && [ $i -lt 3000 ]; do sleep 0.1; i=$((i + 1)); done
cat /tmp/arm-figures.log
mark stage2-done
