#!/bin/sh
# /init of the live disk guest (integration/bitmape2e): mounts its data disk
# /dev/vda (a plain image file QEMU opened itself; no tap) on /mnt, prints
# @@XA-READY@@ and serves commands on its second serial port (ttyS1), as
# testdata/live-guest.sh's guest does: for each line it reads it prints
# @@XA-BEGIN-CMD@@, the output of `sh -c LINE` and @@XA-END-CMD rc=N@@.
#   xa.fs=ext2|ext3|ext4  the filesystem type to mount (default ext4)
. /lib/xa-guest.sh
xa_boot

FS=ext4
read -r _cmdline </proc/cmdline
for _w in $_cmdline; do
    case $_w in
    xa.fs=*) FS=${_w#xa.fs=} ;;
    esac
done
mkdir -p /mnt
mount -t "$FS" /dev/vda /mnt || echo "XA-FAIL mount"
stty -F /dev/ttyS1 raw -echo clocal 2>/dev/null || echo "XA-STTY-FAIL"
echo "@@XA-READY@@"
exec 4<>/dev/ttyS1
# The command loop is a child of pid 1 (see live-guest.sh: pid 1 ignores
# SIGCHLD so that a background command's orphans do not break its reads).
(
while :; do
    if read -r line <&4; then
        echo "@@XA-BEGIN-CMD@@" >&4
        sh -c "$line" >&4 2>&1 </dev/null
        echo "@@XA-END-CMD rc=$?@@" >&4
    else
        sleep 1
    fi
done
) &
trap '' CHLD
xa_idle_fd
while :; do read -r _ <&3; done
