#!/bin/busybox sh
# /init of the L1 test VM (see docs/testing.md). It loads KVM and the 9p modules, mounts the
# host's root read-only and the workspace read-write at their host paths, runs the command
# the runner prepared, stores its exit status next to it and powers off.
# Markers on the console (ttyS0) tell the runner how far it got.
/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

say() { echo "$*" > /dev/ttyS0; }
fail() { say "ACI-L1-FAIL: $*"; sync; poweroff -f; sleep 10; }
arg() { for w in $(cat /proc/cmdline); do case "$w" in "$1="*) echo "${w#*=}" ;; esac; done; }

WORK=$(arg aci.work)
RUN=$(arg aci.run)
CACHE=$(arg aci.cache)
[ -n "$WORK" ] && [ -n "$RUN" ] && [ -n "$CACHE" ] || fail "aci.work, aci.run and aci.cache must be on the kernel command line"

while read -r name params; do
    case "$name" in ''|'#'*) continue ;; esac
    insmod "/lib/modules/$name.ko" $params || fail "insmod $name failed"
done < /etc/modules.load
[ -c /dev/kvm ] || fail "no /dev/kvm after loading kvm_amd"
# Create the one long-lived VM now, while nothing else runs (see /bin/hold-kvm's source).
if ! grep -qw aci.nohold /proc/cmdline; then
    /bin/hold-kvm &
    i=0; while [ ! -e /run-kvm-held ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
    [ -e /run-kvm-held ] || fail "hold-kvm did not create its VM"
fi

R=/newroot
mkdir -p $R
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=524288,cache=loose hostroot $R \
    || fail "mounting the host root over 9p failed"
mount -t proc proc $R/proc
mount -t sysfs sysfs $R/sys
mount -t devtmpfs devtmpfs $R/dev
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts $R/dev/pts
mount -t tmpfs tmpfs $R/dev/shm
mount -t cgroup2 cgroup2 $R/sys/fs/cgroup 2>/dev/null
for d in /tmp /run /var/tmp; do mount -t tmpfs -o mode=0755 tmpfs "$R$d"; done
chmod 1777 $R/tmp $R/var/tmp
# The workspace (read-write) and the artifact cache (read-only) are mounted after the tmpfs
# mounts, so they stay visible when they live under /tmp.
mkdir -p "$R$WORK" && mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288,cache=mmap work "$R$WORK" \
    || fail "mounting the workspace $WORK over 9p failed"
mkdir -p "$R$CACHE" && mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=524288,cache=loose cache "$R$CACHE" \
    || fail "mounting the artifact cache $CACHE over 9p failed"
ip link set lo up
hostname aci-l1

say "ACI-L1-READY"
chroot $R /bin/sh "$RUN/run.sh" < /dev/null > /dev/ttyS1 2>&1
rc=$?
echo "$rc" > "$R$RUN/status.tmp" && mv "$R$RUN/status.tmp" "$R$RUN/status"
sync
say "ACI-L1-DONE status=$rc"
poweroff -f
