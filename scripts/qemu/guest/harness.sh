#!/bin/sh
# Guest side of the QEMU board test, baked into the image: brings up the network (slirp's fixed
# addresses), mounts the host's 9p share and runs the scenario the host put there, then powers off.
# Never carries any project file itself: the bundle, token and scenario all come from the share.
SHARE=/mnt/host
mkdir -p "$SHARE"
modprobe 9pnet_virtio 2>/dev/null
if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 hostshare "$SHARE"; then
  echo "harness: cannot mount the host share" >/dev/console
  echo o >/proc/sysrq-trigger
fi
cut -d' ' -f1 /proc/uptime >"$SHARE/boot.uptime"
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
if [ -f "$SHARE/scenario.sh" ]; then
  sh "$SHARE/scenario.sh" >"$SHARE/guest.log" 2>&1
  echo $? >"$SHARE/scenario.rc.tmp" && mv "$SHARE/scenario.rc.tmp" "$SHARE/scenario.rc"
else
  echo "harness: no scenario.sh in the share" >/dev/console
  echo 99 >"$SHARE/scenario.rc"
fi
sync
echo s >/proc/sysrq-trigger
echo o >/proc/sysrq-trigger
