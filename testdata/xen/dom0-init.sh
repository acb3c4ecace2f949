#!/bin/sh
# /init of dom0's initramfs (busybox ash) for the Xen end-to-end test
# (xen-e2e.sh): bring up the Xen toolstack as design.md's recipe says, then
# hand over to /xa/run.sh, which the harness puts into the initramfs on every
# run together with the xascript binary. Whatever happens, dom0 ends with
# `poweroff -f`, which makes Xen power the machine off and QEMU exit.
export PATH=/bin:/sbin:/usr/lib/xen-4.17/bin:/xa
export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu
/bin/busybox --install -s /bin

fail() {
    echo "@@XA-DOM0-FAIL $*@@"
    poweroff -f
}
stamp() { # NAME: dom0's uptime at a milestone, for the timings
    read -r up _ </proc/uptime
    echo "@@XA-T $1 $up@@"
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /dev/shm
# Only emergencies on the console: kernel messages would land in the middle
# of the sections the test parses.
echo 1 >/proc/sys/kernel/printk
stamp dom0-init

while read -r m; do
    insmod "/lib/modules/$m.ko" || fail "insmod $m"
done </modules.order
mount -t xenfs xenfs /proc/xen || fail "mount xenfs"

mkdir -p /run/xen /run/xenstored /run/lock /var/lib/xen/dump /var/lib/xenstored \
    /var/log/xen/console
xenstored --pid-file=/run/xenstored.pid || fail "xenstored"
i=0
until [ -S /run/xenstored/socket ]; do
    i=$((i + 1))
    [ $i -gt 100 ] && fail "xenstored socket"
    sleep 0.1
done
xen-init-dom0 >/var/log/xen/init-dom0.log 2>&1 || {
    cat /var/log/xen/init-dom0.log
    fail "xen-init-dom0"
}
xenconsoled --log=guest --log-dir=/var/log/xen/console --pid-file=/run/xen/xenconsoled.pid ||
    fail "xenconsoled"
stamp dom0-xen-up

if [ -x /xa/run.sh ]; then
    /xa/run.sh
else
    echo "@@XA-DOM0-FAIL no /xa/run.sh@@"
fi
stamp dom0-done
echo "@@XA-DOM0-DONE@@"
poweroff -f
