#!/bin/sh
# /init of the kdump capture kernel's initramfs (busybox ash), packed by
# build-kdump.sh and loaded by kdump-init.sh with kexec_file_load(2). The
# crashed kernel's memory is /proc/vmcore here; it is copied as it is to the
# virtio disk (/dev/vda, larger than the guest's RAM) for the host to cut to
# the size printed in the VMCORE-SIZE marker.
. /lib/xa-guest.sh
xa_boot   # /modules.order: virtio_blk and virtio_pci with their dependencies

xa_fail() {
    echo "@@XA-KDUMP-FAIL $*@@"
    poweroff -f
}

echo "@@XA-CAPTURE-UP@@"
i=0
while [ ! -b /dev/vda ] && [ "$i" -lt 30 ]; do
    sleep 1
    i=$((i + 1))
done
[ -b /dev/vda ] || xa_fail "no /dev/vda"
[ -f /proc/vmcore ] || xa_fail "no /proc/vmcore"
size=$(stat -c %s /proc/vmcore)
echo "@@XA-VMCORE-SIZE $size@@"
rc=0
dd if=/proc/vmcore of=/dev/vda bs=1M || rc=$?
sync
echo "@@XA-VMCORE-DONE $rc@@"
poweroff -f
