#!/bin/sh
# /guest-script of the L1 image (busybox sh, run by mkguest's /init after it
# loaded the kvm, virtio-9p and overlay modules). Mounts the host root
# read-only over 9p, makes it writable with a tmpfs overlay, gives it fresh
# proc/sys/dev, and runs the scenario runner chrooted into it. Nothing here
# writes to the host.
. /etc/vireo-harness.env
H=/host
# Keep the L1 console for results (and the demo's L2 console): kernel
# messages up to warnings only, which include the register dump and stack of
# a soft-lockup report (the harness reads where a stuck CPU was); the runner
# shows new L1 kernel messages when a scenario fails.
dmesg -n 5
say() { echo "@@vh $*"; }

mkdir -p /lower /rw $H
if ! mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /lower; then
    say "ERROR L1: cannot mount the host root over 9p (is -virtfs ...mount_tag=hostroot given?)"
    exit 1
fi
# A writable view of the host root: an overlay whose upper layer is a tmpfs,
# so every host path (also under /tmp) stays visible and writes stay in L1.
mount -t tmpfs -o size=1g,mode=755 tmpfs /rw
mkdir -p /rw/upper /rw/work
if ! mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay $H; then
    say "ERROR L1: cannot mount an overlay of the host root"
    exit 1
fi
mount -t proc proc $H/proc
mount -t sysfs sysfs $H/sys
mount -t devtmpfs devtmpfs $H/dev
mkdir -p $H/dev/pts $H/dev/shm 2>/dev/null
# what udev would add: bash's process substitution needs /dev/fd
ln -sf /proc/self/fd $H/dev/fd
ln -sf /proc/self/fd/0 $H/dev/stdin
ln -sf /proc/self/fd/1 $H/dev/stdout
ln -sf /proc/self/fd/2 $H/dev/stderr
mount -t devpts devpts $H/dev/pts
# /tmp on the scratch disk (ext4: tests open disk images with O_DIRECT,
# which tmpfs refuses), the build directory shared writable (what jobs write
# there, e.g. benchmark results, reaches the host), and a loopback interface
# (control and metrics endpoints listen on 127.0.0.1). A checkout or build
# under the host's /tmp (a CI clone) is bound back over the scratch disk at
# its own path.
if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 hostbuild "$H$BUILD"; then
    say "ERROR L1: cannot mount the build directory over 9p (mount_tag=hostbuild)"
    exit 1
fi
under_tmp=
for p in "$REPO" "$BUILD"; do
    case $p in /tmp/*) mkdir -p "/keep$p" && mount -o rbind "$H$p" "/keep$p" && under_tmp="$under_tmp $p" ;; esac
done
if ! mount -t ext4 -o noatime "$SCRATCH_DEV" $H/tmp; then
    say "ERROR L1: cannot mount the scratch disk $SCRATCH_DEV on /tmp"
    exit 1
fi
chmod 1777 $H/tmp
for p in $under_tmp; do
    mkdir -p "$H$p" && mount -o rbind "/keep$p" "$H$p" || { say "ERROR L1: cannot bind $p back over the scratch /tmp"; exit 1; }
done
ip link set lo up
# L1 runs without KASLR, so one copy of its symbols per kernel lets the
# harness name the functions where a locked-up L1's CPUs were.
syms="$H$BUILD/qemu/kallsyms-$(uname -r)"
[ -s "$syms" ] || { mkdir -p "$H$BUILD/qemu" && cat /proc/kallsyms >"$syms.tmp" && mv "$syms.tmp" "$syms"; }
mkdir -p $H/tmp/vireo-l1
mount -t tracefs nodev $H/sys/kernel/tracing 2>/dev/null
mount -t bpf bpf $H/sys/fs/bpf 2>/dev/null
cp /etc/vireo-harness.env $H/tmp/vireo-l1/harness.env

if [ ! -c /dev/kvm ]; then
    say "ERROR L1: no /dev/kvm after loading kvm_amd (does the L1 CPU have svm?)"
    exit 1
fi
chroot $H /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp TMPDIR=/tmp LANG=C.UTF-8 \
    /bin/bash "$REPO/tests/qemu/l1-runner" /tmp/vireo-l1/harness.env
say "L1-DONE rc=$?"
