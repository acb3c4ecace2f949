#!/bin/sh
# /init of the fswatch guest (busybox ash), for integration/fswatche2e: its
# data disk /dev/vda (an ext4 image served by xascript over NBD) is mounted
# on /mnt with a 60 s journal commit, so only `sync` puts a change on the
# disk, while the guest's dentry cache shows it at once. It waits for "go"
# on its second serial port (ttyS1, once the host's fswatch watches), then:
#   0. lists the folder with ls -l: the files the image came with enter the
#      dcache, which is not a change;
#   1. creates /root/ephemeral and removes it a second later, before any
#      flush: the memory view sees it, the disk never does;
#   2. creates /root/held through a background `sleep` that keeps it open as
#      its stdout, then syncs: both views see it, and the process is named
#      (the guest keeps it until "next" on ttyS1);
#   3. ends that sleep, creates /root/plain and syncs: no process has it
#      open, and the shell working in the folder is named instead.
# and waits for "done" on ttyS1, to unmount and power off. Paths are printed
# as the disk sees them (/mnt/root/x is /root/x). Markers:
#   XA-UP                  disk mounted, waiting for go
#   XA-LOOKED NAME...      the names ls -l looked up
#   XA-DID OP PATH INO     an operation made (INO: the inode number, ls -i)
#   XA-HELD PID PATH       PID holds PATH open (fd 1)
#   XA-CWD PID PATH        PID (this shell) works in PATH
#   XA-SYNCED [WHAT]       sync returned
#   XA-FAIL ...            something failed: the run is invalid
. /lib/xa-guest.sh
xa_boot

M=/mnt
fail() { echo "XA-FAIL $*"; }
ino() { set -- $(ls -id "$1"); echo "$1"; }

xa_idle_fd
_i=0
while [ ! -b /dev/vda ] && [ $_i -lt 100 ]; do
    read -r -t 0.1 _ <&3
    _i=$((_i + 1))
done
mkdir -p $M
mount -t ext4 -o commit=60 /dev/vda $M || fail mount
cd $M/root || fail cd
stty -F /dev/ttyS1 raw -echo clocal 2>/dev/null || fail stty
exec 4<>/dev/ttyS1
echo "XA-UP"
read -r _go <&4
[ "$_go" = go ] || fail "ttyS1 said $_go, not go"

# 0. the files the image came with enter the dcache (lstat): not a change.
ls -l >/dev/null || fail ls
echo "XA-LOOKED $(ls | tr '\n' ' ')"
sleep 1

: >ephemeral || fail create ephemeral
echo "XA-DID MKFILE /root/ephemeral $(ino ephemeral)"
sleep 1
rm ephemeral || fail rm ephemeral
echo "XA-DID RMFILE /root/ephemeral"
# Apart, so that the memory view sees the removal before the next file.
sleep 2

sleep 100000 >held &
_pid=$!
_n=0
while [ "$(readlink /proc/$_pid/fd/1)" != "$M/root/held" ]; do
    _n=$((_n + 1))
    [ $_n -lt 500 ] || { fail "sleep $_pid never opened held"; break; }
done
echo "XA-DID MKFILE /root/held $(ino held)"
echo "XA-HELD $_pid /root/held"
sleep 1
sync || fail sync
echo "XA-SYNCED"
# The holder stays until the host has seen fswatch name it: memory is read
# when the disk event arrives, which on a loaded host is seconds later.
read -r _next <&4
[ "$_next" = next ] || fail "ttyS1 said $_next, not next"

# 3. with the holder gone, a file the shell makes and closes at once: no
#    process has it open, and the shell (pid 1, working in the folder) is
#    the last process there.
kill $_pid
wait $_pid
: >plain || fail create plain
echo "XA-DID MKFILE /root/plain $(ino plain)"
echo "XA-CWD $$ /root"
# sync from outside the folder: at the disk event it still runs, and in the
# folder it would be the last process there.
(cd / && sync) || fail sync
echo "XA-SYNCED plain"

read -r _done <&4
cd /
umount $M || fail umount
sync
echo "XA-DONE"
poweroff -f
while :; do read -r _ <&3; done
