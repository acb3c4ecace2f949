#!/bin/sh
# /init of the domUs' initramfs (busybox ash): the Debian cloud kernel as a
# Xen PV or PVH guest, console hvc0 (which xenconsoled logs in dom0). Loads
# the modules in /modules.order, prints its own view between the markers
# guesttool.py and the Go test parse, then @@XA-READY@@, and idles without
# forking so the module list stays as printed.
. /lib/xa-guest.sh
xa_boot
xa_section VERSION /proc/version
xa_section CMDLINE /proc/cmdline
xa_section MODULES /proc/modules
# Pseudo-physical for PV (the kernel at 16 MiB as on bare metal), guest-physical for PVH.
xa_section IOMEM /proc/iomem
echo "@@XA-READY@@"
xa_idle_fd
while :; do read -r _ <&3; done
