#!/bin/sh
# /xa/run.sh in dom0 (run by dom0-init.sh once xenstored and xenconsoled are
# up): boot each test domU, wait (bounded) for its @@XA-READY@@, copy its
# console log to dom0's console, then source /xa/tests.sh (a copy of
# testdata/xen/dom0-tests.sh, or XA_XEN_TESTS) with DOMU_NAME, DOMU_ID and
# DOMU_TYPE set. Every xa_run in it prints its command's stdout, stderr and
# exit status between markers that integration/xen_e2e_test.go parses:
#
#   @@XA-BEGIN-CMD <domU> <label>@@
#   @@XA-ARGV <command line>@@
#   <stdout>
#   @@XA-STDERR@@
#   <stderr>
#   @@XA-END-CMD <domU> <label> rc=<exit status> secs=<seconds>@@
#
# /xa/config.sh (written by xen-e2e.sh) may set XA_DOMUS, XA_DOMU_TIMEOUT,
# XA_CMD_TIMEOUT, and XA_XEN_TIMEOUT and XA_XEN_END (below).
[ -f /xa/config.sh ] && . /xa/config.sh
: "${XA_DOMUS:=xa-pv:pv xa-pvh:pvh}"
: "${XA_DOMU_TIMEOUT:=150}"
: "${XA_CMD_TIMEOUT:=120}"
: "${XA_XEN_TIMEOUT:=600}"
CONSOLE_DIR=/var/log/xen/console

stamp() {
    read -r up _ </proc/uptime
    echo "@@XA-T $1 $up@@"
}

xa_uptime() { # whole seconds since dom0 booted
    read -r _u _ </proc/uptime
    echo "${_u%.*}"
}

# The harness kills QEMU XA_XEN_TIMEOUT seconds after it starts it: at
# XA_XEN_END (host epoch seconds, written before QEMU started, so early
# rather than late). dom0's own clocks cannot tell when that is: on a loaded
# host they were seen to run 15 times slower than the host's (dom0's uptime
# moved 35 s while QEMU ran 536 s), since dom0 only counts the time its
# emulated CPU gets. The emulated CMOS clock follows the host's, so xa_clock
# reads it (/sys/class/rtc/rtc0/since_epoch, whole seconds); without it,
# dom0's `date`. xa_left is the seconds left, by that clock; every bounded
# wait of the disk test is measured with it too. Long steps (the disk test's
# benchmark) size themselves by xa_left so that dom0 ends, and says why,
# before QEMU is killed.
XA_RTC=/sys/class/rtc/rtc0/since_epoch
xa_clock() {
    if [ -n "$XA_CLOCK_RTC" ] && { read -r _c <"$XA_RTC"; } 2>/dev/null; then
        echo "$_c"
    else
        date +%s
    fi
}
xa_deadline_init() {
    XA_CLOCK_RTC=
    _how="dom0's clock"
    if { read -r _c <"$XA_RTC"; } 2>/dev/null && [ $((${XA_XEN_END:-0} - _c)) -gt 0 ] &&
        [ $((${XA_XEN_END:-0} - _c)) -le "$XA_XEN_TIMEOUT" ]; then
        XA_CLOCK_RTC=1
        _how="the emulated RTC (dom0's clock: $(($(date +%s) - _c)) s off)"
    fi
    _left=$((${XA_XEN_END:-0} - $(xa_clock)))
    if [ "$_left" -le 0 ] || [ "$_left" -gt "$XA_XEN_TIMEOUT" ]; then
        # No clock agrees with the host's: pretend dom0 booted 60 s after
        # QEMU started (it takes 10-30 s on a quiet host).
        XA_XEN_END=$(($(date +%s) + XA_XEN_TIMEOUT - 60 - $(xa_uptime)))
        _how="dom0's uptime (its clock says $(date -u +%FT%TZ))"
        _left=$((XA_XEN_END - $(xa_clock)))
    fi
    echo "@@XA-NOTE ${_left}s left before the harness's timeout, by $_how@@"
}
xa_left() { echo $((XA_XEN_END - $(xa_clock))); }
xa_deadline_init

# xa_run LABEL COMMAND [ARG...]: run COMMAND (killed after XA_CMD_TIMEOUT s)
# and print its output between markers. For a pipeline use sh -c '...'.
xa_run() {
    _label=$1
    shift
    echo "@@XA-BEGIN-CMD $DOMU_NAME $_label@@"
    echo "@@XA-ARGV $*@@"
    read -r _t0 _ </proc/uptime
    timeout -s KILL "$XA_CMD_TIMEOUT" "$@" >/tmp/xa-out 2>/tmp/xa-err </dev/null
    _rc=$?
    read -r _t1 _ </proc/uptime
    awk 1 /tmp/xa-out
    echo "@@XA-STDERR@@"
    awk 1 /tmp/xa-err
    echo "@@XA-END-CMD $DOMU_NAME $_label rc=$_rc secs=$(awk "BEGIN{printf \"%.2f\", $_t1-$_t0}")@@"
}

domu_cfg() { # NAME TYPE
    cat <<CFG
name = "$1"
type = "$2"
kernel = "/xa-domu/vmlinuz"
ramdisk = "/xa-domu/initramfs.cpio"
extra = "console=hvc0 quiet panic=1 rdinit=/init"
memory = 128
vcpus = 1
on_reboot = "destroy"
on_crash = "destroy"
CFG
    # PVH under QEMU TCG needs the TSC passed through (design.md).
    [ "$2" = pvh ] && echo 'tsc_mode = "native"'
}

# wait_ready NAME: 0 once the domU printed @@XA-READY@@; 1 if it died or
# the time ran out.
wait_ready() {
    _log=$CONSOLE_DIR/guest-$1.log
    _i=0
    while ! grep -q '@@XA-READY@@' "$_log" 2>/dev/null; do
        if ! _err=$(xl domid "$1" 2>&1 >/dev/null); then
            # xl itself fails now and then while the domain is fine (seen:
            # a PVH domU that went on to print READY): ask again before
            # calling the domain gone.
            sleep 1
            grep -q '@@XA-READY@@' "$_log" 2>/dev/null && return 0
            if ! _err2=$(xl domid "$1" 2>&1 >/dev/null); then
                echo "@@XA-DOMU-FAIL $1 domain is gone (xl domid: $(echo $_err $_err2 | tr '@' ' '))@@"
                return 1
            fi
            echo "@@XA-NOTE xl domid $1 failed once: $(echo $_err | tr '@' ' ')@@"
        fi
        _i=$((_i + 1))
        if [ $_i -gt $((XA_DOMU_TIMEOUT * 2)) ]; then
            echo "@@XA-DOMU-FAIL $1 no READY after ${XA_DOMU_TIMEOUT}s@@"
            return 1
        fi
        sleep 0.5
    done
}

dump_console() { # NAME
    echo "@@XA-BEGIN-DOMU $1@@"
    # The log keeps the guest's \r\n; drop the \r so the markers inside stay whole lines.
    tr -d '\r' <"$CONSOLE_DIR/guest-$1.log" 2>/dev/null
    echo "@@XA-END-DOMU@@"
}

echo "@@XA-BEGIN-DOM0INFO@@"
uname -a
cat /proc/xen/capabilities 2>/dev/null && echo
ls -l /dev/xen /proc/xen /run/xenstored 2>&1
xl info 2>&1 | grep -E '^(xen_version|xen_caps|nr_cpus|total_memory|free_memory|xen_commandline)'
echo "@@XA-END-DOM0INFO@@"

for spec in $XA_DOMUS; do
    name=${spec%%:*}
    type=${spec#*:}
    domu_cfg "$name" "$type" >"/xa/$name.cfg"
    # A domU that dies while booting gets one more try: under nested
    # emulation the PVH guest has been seen (about 1 run in 4) to vanish in
    # early boot with nothing on its console; what xascript is tested on is
    # the running guest, not its boot. Xen's log goes to the serial log
    # each time, so a second failure is explained there.
    ok=
    for try in 1 2; do
        stamp "create-$name"
        if ! xl create "/xa/$name.cfg" >"/tmp/create-$name.log" 2>&1; then
            cat "/tmp/create-$name.log"
            echo "@@XA-DOMU-FAIL $name xl create failed@@"
            break
        fi
        if wait_ready "$name"; then
            ok=1
            break
        fi
        echo "@@XA-BEGIN-XLDMESG $name try $try@@"
        xl dmesg 2>&1 | tail -n 40
        echo "@@XA-END-XLDMESG@@"
        echo "@@XA-BEGIN-FAILED-CONSOLE $name try $try@@"
        tr -d '\r' <"$CONSOLE_DIR/guest-$name.log" 2>/dev/null | tail -n 40 | sed 's/@@/##/g' # no markers
        echo "@@XA-END-FAILED-CONSOLE@@"
        xl destroy "$name" >/dev/null 2>&1
        if [ "$try" = 1 ]; then
            echo "@@XA-DOMU-RETRY $name@@"
            : >"$CONSOLE_DIR/guest-$name.log" # the next boot's console only
        fi
    done
    stamp "ready-$name"
    dump_console "$name"
    [ -n "$ok" ] || continue
    DOMU_NAME=$name
    DOMU_TYPE=$type
    DOMU_ID=$(xl domid "$name")
    echo "@@XA-DOMID $name $DOMU_ID@@"
    echo "@@XA-BEGIN-XLLIST@@"
    xl list
    echo "@@XA-END-XLLIST@@"
    # A cache of xascript's own per domU: each domU's first command takes the
    # cold path (nothing prepared yet), the later ones the warm path.
    XASCRIPT_CACHE_DIR=/tmp/xascript-cache-$name
    export DOMU_NAME DOMU_ID DOMU_TYPE XASCRIPT_CACHE_DIR
    . /xa/tests.sh
    stamp "tested-$name"
done
# The disk test (dom0-disk.sh: a domU whose disk xascript serves through
# /dev/nbd0), when the harness put it in.
[ -f /xa/disk.sh ] && . /xa/disk.sh
