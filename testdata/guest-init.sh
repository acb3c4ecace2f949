#!/bin/sh
# /init of the test guests' initramfs (busybox ash).  It loads the modules
# listed in /modules.order, prints the guest's own view of itself between
# @@XA-BEGIN-X@@ / @@XA-END-X@@ markers on the serial console, prints
# @@XA-READY@@ and then blocks for good, so the host can pause the guest and
# take its memory while nothing moves.
#
# Everything that forks (mount, insmod, cat, grep) happens before the task
# list is taken; the task list and the wait after it use only shell builtins,
# so the tasks printed are exactly this shell (pid 1) and kernel threads.
export PATH=/bin

/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

# Keep kernel messages (module banners and the like) out of the data below.
echo 1 >/proc/sys/kernel/printk
# Root sees real addresses in /proc/kallsyms and /proc/modules only with 0.
echo 0 >/proc/sys/kernel/kptr_restrict

while read -r m; do
    insmod "/lib/modules/$m.ko" || echo "XA-INSMOD-FAIL $m"
done </modules.order

section() { # NAME FILE...
    local name=$1
    shift
    echo "@@XA-BEGIN-$name@@"
    cat "$@"
    echo "@@XA-END-$name@@"
}
section VERSION /proc/version
section CMDLINE /proc/cmdline
section MODULES /proc/modules
section IOMEM /proc/iomem
section ZONES /proc/zoneinfo
section KALLSYMS /proc/kallsyms

# A FIFO opened read-write never blocks on open and never has data: `read`
# on it is a fork-free sleep.  Let kworkers spawned by the module loads
# settle before the task list is taken.
mkfifo /idle
exec 3<>/idle
read -r -t 2 _ <&3

echo "@@XA-BEGIN-TASKS@@"
for d in /proc/[0-9]*; do
    read -r l <"$d/stat" 2>/dev/null && echo "$l"
done
echo "@@XA-END-TASKS@@"
echo "@@XA-READY@@"

while :; do read -r _ <&3; done
