#!/bin/sh
# /init of the domUs' initramfs (busybox ash): the Debian cloud kernel as a
# Xen PV or PVH guest, console hvc0 (which xenconsoled logs in dom0). Loads
# the modules in /modules.order, prints its own view between the markers
# guesttool.py and the Go test parse, then @@XA-READY@@, and idles without
# forking so the module list stays as printed.
export PATH=/bin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo 1 >/proc/sys/kernel/printk
echo 0 >/proc/sys/kernel/kptr_restrict
while read -r m; do
    insmod "/lib/modules/$m.ko" || echo "XA-INSMOD-FAIL $m"
done </modules.order
echo "@@XA-BEGIN-VERSION@@"; cat /proc/version; echo "@@XA-END-VERSION@@"
echo "@@XA-BEGIN-CMDLINE@@"; cat /proc/cmdline; echo "@@XA-END-CMDLINE@@"
echo "@@XA-BEGIN-MODULES@@"; cat /proc/modules; echo "@@XA-END-MODULES@@"
# Pseudo-physical for PV (the kernel at 16 MiB as on bare metal), guest-physical for PVH.
echo "@@XA-BEGIN-IOMEM@@"; cat /proc/iomem; echo "@@XA-END-IOMEM@@"
echo "@@XA-READY@@"
mkfifo /idle
exec 3<>/idle
while :; do read -r _ <&3; done
