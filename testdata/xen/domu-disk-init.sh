#!/bin/sh
# /init of the disk test's domU (dom0-disk.sh): the Debian cloud kernel as a
# PV guest whose xvda is a block device of dom0 exported by blkback (the
# kernel NBD device xascript serves, or a loop device). Loads xen-blkfront
# (ext4 is built in), prints /proc/version and /proc/modules (VERSION and
# MODULES sections), mounts xvda and, by xa_disk= on its command line:
#   paper        the paper's sequence in /root (the image holds /root/bar):
#                mkdir foo; touch dummy; rm bar; sync — printing each step
#                between @@XA-BEGIN-DISKOPS@@ and @@XA-END-DISKOPS@@ in the
#                monitor's words; then @@XA-DISK-WAITING@@, and it waits
#                (at most 5 minutes) until dom0 releases it (xl shutdown)
#   bench:LABEL  Figure 7: N = 100 and 1000 empty files created in a fresh
#                folder, then sync, timed here (/proc/uptime, 10 ms), RUNS
#                runs each (xa_runs=, default 3): @@XA-FIG7 LABEL N RUN SECS@@
# then unmounts and powers off (the domain is destroyed).
. /lib/xa-guest.sh
xa_boot
# What its kernel says of itself, for the monitor that reads its memory
# (dom0-disk.sh's nbdwatch: the banner, the modules).
xa_section VERSION /proc/version
xa_section MODULES /proc/modules
# dom0 releases the paper's domU with `xl shutdown`: the kernel then runs
# /sbin/poweroff, which signals this shell (trapped from here on, so that
# an early signal does not end pid 1).
released=
trap 'released=1' USR1
mkdir -p /sbin
printf '#!/bin/sh\nkill -USR1 1\n' >/sbin/poweroff
chmod +x /sbin/poweroff
mode=paper runs=3
for w in $(cat /proc/cmdline); do
    case $w in
    xa_disk=*) mode=${w#xa_disk=} ;;
    xa_runs=*) runs=${w#xa_runs=} ;;
    esac
done
bye() {
    echo "@@XA-DISK-DONE $*@@"
    # xenconsoled copies the console ring to dom0's log file after the
    # fact: a domain that powers off at once can take its last lines (all
    # of them, seen twice) with it.
    sleep 3
    poweroff -f
}
i=0
while [ ! -b /dev/xvda ]; do
    i=$((i + 1))
    [ $i -gt 300 ] && bye "no /dev/xvda after 30 s"
    sleep 0.1
done
mkdir -p /mnt
mount -t ext4 /dev/xvda /mnt || bye "mount /dev/xvda failed"
case $mode in
paper)
    echo "@@XA-BEGIN-DISKOPS@@"
    mkdir /mnt/root/foo && echo "MKDIR: /root/foo"
    touch /mnt/root/dummy && echo "MKFILE: /root/dummy"
    rm /mnt/root/bar && echo "RMFILE: /root/bar"
    sync
    echo "@@XA-END-DISKOPS@@"
    # Up until dom0 releases it (bounded: 5 minutes): the monitor that
    # reads this domain's memory may still be looking.
    echo "@@XA-DISK-WAITING@@"
    i=0
    while [ -z "$released" ] && [ $i -lt 3000 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    ;;
bench:*)
    label=${mode#bench:}
    for n in 100 1000; do
        r=1
        while [ $r -le "$runs" ]; do
            d=/mnt/bench/$label-$n-$r
            mkdir -p "$d"
            sync
            read -r t0 _ </proc/uptime
            # Redirections, not touch: no fork per file, as the paper's
            # benchmark timed the file system, not process creation.
            f=0
            while [ $f -lt "$n" ]; do
                : >"$d/f$f"
                f=$((f + 1))
            done
            sync
            read -r t1 _ </proc/uptime
            echo "@@XA-FIG7 $label $n $r $(awk "BEGIN{printf \"%.2f\", $t1-$t0}")@@"
            r=$((r + 1))
        done
    done
    ;;
esac
umount /mnt || bye "umount failed"
bye ok
