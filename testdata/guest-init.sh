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
. /lib/xa-guest.sh
xa_boot

xa_truth_sections

xa_tasks_ready

while :; do read -r _ <&3; done
