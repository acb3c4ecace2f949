# /xa/disk.sh in dom0 (sourced by dom0-run.sh after the memory tests): the
# paper's disk sample on a real domU, its disk served by xascript through
# dom0's kernel NBD device (issue 11), and Figure 7 on it. Everything it
# prints that the test reads (integration/xene2e/disk_test.go) is between
# markers:
#
#   @@XA-BEGIN-DISKCONSOLE@@ ...        the xa-disk domU's console (its
#                                       @@XA-BEGIN-DISKOPS@@ list of what it did)
#   @@XA-BEGIN-CMD xa-disk LABEL@@ ...  the monitors' output, as xa_run prints it:
#       nbdwatch   diskwatch.lua --nbd-device /dev/nbd0 --tapfifo-out FIFO
#       tapwatch   diskwatch.lua --tapfifo FIFO (the records nbdwatch wrote)
#       nbd-free   /dev/nbd0 is disconnected after nbdwatch ended
#   @@XA-BEGIN-DISKIMG@@ ...            the image afterwards, gzip | base64
#   @@XA-BEGIN-DISKIMG-MD5@@ ...        its md5sum
#   @@XA-BEGIN-BENCHCONSOLE-LOOP@@, -TAP, -WATCH  Figure 7 runs (@@XA-FIG7 ...@@ lines)
#   @@XA-BENCH-EVENTS MODE N@@          lines the monitor printed in that mode
#   @@XA-DISK-FAIL why@@  @@XA-BENCH-FAIL why@@ (the benchmark's: reported, not fatal)
#
# Knobs (/xa/config.sh): XA_DISK_BENCH_RUNS (runs per N and mode, default 3;
# 0 skips the benchmark).
: "${XA_DISK_BENCH_RUNS:=3}"

disk_fail() { echo "@@XA-DISK-FAIL $*@@"; }
bench_fail() { echo "@@XA-BENCH-FAIL $*@@"; }

# disk_domu NAME BACKDEV MODE: boot the disk domU with BACKDEV as its xvda
# and wait (bounded) until it has powered off.
disk_domu() {
    cat >"/xa/$1.cfg" <<CFG
name = "$1"
type = "pv"
kernel = "/xa-domu/vmlinuz"
ramdisk = "/xa-disk/initramfs.cpio"
extra = "console=hvc0 quiet panic=1 rdinit=/init xa_disk=$3 xa_runs=$XA_DISK_BENCH_RUNS"
memory = 128
vcpus = 1
disk = ['phy:$2,xvda,w']
on_reboot = "destroy"
on_crash = "destroy"
CFG
    : >"$CONSOLE_DIR/guest-$1.log"
    stamp "create-$1"
    if ! xl create "/xa/$1.cfg" >"/tmp/create-$1.log" 2>&1; then
        sed 's/@@/##/g' "/tmp/create-$1.log"
        disk_fail "$1 xl create failed"
        return 1
    fi
    _i=0
    # Gone once it powered off; the budget covers boot and the benchmark.
    while xl domid "$1" >/dev/null 2>&1; do
        _i=$((_i + 1))
        if [ $_i -gt $((XA_DOMU_TIMEOUT * 4)) ]; then
            disk_fail "$1 still running after $((XA_DOMU_TIMEOUT * 2))s"
            xl destroy "$1" >/dev/null 2>&1
            return 1
        fi
        sleep 0.5
    done
    stamp "gone-$1"
}

disk_console() { # NAME SECTION
    # An empty console has meant a dead xenconsoled (seen once, with a
    # segfaulting losetup right after: see README.md's facts).
    [ -s "$CONSOLE_DIR/guest-$1.log" ] ||
        echo "@@XA-NOTE $1's console log is empty; xenconsoled: $(pidof xenconsoled || echo not running)@@"
    echo "@@XA-BEGIN-$2@@"
    tr -d '\r' <"$CONSOLE_DIR/guest-$1.log" 2>/dev/null
    echo "@@XA-END-$2@@"
}

# disk_stop PID: SIGTERM (a clean end: the device is disconnected and the
# image synced), SIGKILL after 60 s; prints nothing, returns its status.
disk_stop() {
    kill -TERM "$1" 2>/dev/null
    ( sleep 60; kill -KILL "$1" 2>/dev/null ) &
    _w=$!
    wait "$1"
    _rc=$?
    kill "$_w" 2>/dev/null
    return $_rc
}

# disk_report LABEL RC OUT ERR: print a background command's output as
# xa_run does.
disk_report() {
    echo "@@XA-BEGIN-CMD $DOMU_NAME $1@@"
    echo "@@XA-ARGV $(cat "$3.argv")@@"
    awk 1 "$3"
    echo "@@XA-STDERR@@"
    awk 1 "$4"
    echo "@@XA-END-CMD $DOMU_NAME $1 rc=$2@@"
}

disk_wait_nbd() { # PID: wait until /dev/nbd0 is connected (bounded)
    _i=0
    until [ -e /sys/block/nbd0/pid ]; do
        kill -0 "$1" 2>/dev/null || return 1
        _i=$((_i + 1))
        [ $_i -gt 600 ] && return 1
        sleep 0.1
    done
}

disk_main() {
    DOMU_NAME=xa-disk
    export XASCRIPT_CACHE_DIR=/tmp/xascript-cache-disk
    # No asynchronous preemption (a SIGURG to a running goroutine every
    # 10 ms): in this dom0 (PV, Xen and all under QEMU TCG) a Go process
    # that runs for minutes was seen to die of corrupted state (a heap
    # object freed while in use, a garbage PC after a signal), 2 runs in 3,
    # always outside xascript's own code paths; the short memory commands
    # never ran long enough to meet it. Fewer signals, fewer chances.
    export GODEBUG=asyncpreemptoff=1
    stamp disk-start
    while read -r m; do
        insmod "/lib/modules/$m.ko" || { disk_fail "insmod $m"; return; }
    done </disk-modules.order
    img=/tmp/disk.img
    cp /xa-disk/disk.img "$img"
    fifo=/tmp/tap.fifo
    mkfifo "$fifo"
    ws=/xa/scripts/examples/diskwatch.lua
    # The reader first: it opens the FIFO and waits for its writer.
    echo "xascript $ws --disk $img --tapfifo $fifo -- /root" >/tmp/tapwatch.out.argv
    xascript $ws -v --disk "$img" --tapfifo "$fifo" -- /root >/tmp/tapwatch.out 2>/tmp/tapwatch.err </dev/null &
    tpid=$!
    echo "xascript $ws --disk $img --nbd-device /dev/nbd0 --tapfifo-out $fifo -- /root" >/tmp/nbdwatch.out.argv
    xascript $ws -v --disk "$img" --nbd-device /dev/nbd0 --tapfifo-out "$fifo" -- /root \
        >/tmp/nbdwatch.out 2>/tmp/nbdwatch.err </dev/null &
    npid=$!
    if ! disk_wait_nbd $npid; then
        disk_fail "/dev/nbd0 never came up"
        disk_stop $npid
        disk_report nbdwatch $? /tmp/nbdwatch.out /tmp/nbdwatch.err
        disk_stop $tpid
        return
    fi
    stamp disk-nbd-up
    disk_domu xa-disk /dev/nbd0 paper
    disk_console xa-disk DISKCONSOLE
    disk_stop $npid
    disk_report nbdwatch $? /tmp/nbdwatch.out /tmp/nbdwatch.err
    # The tapfifo reader ends when the writer closed the FIFO.
    ( sleep 60; kill -KILL $tpid 2>/dev/null ) &
    _w=$!
    wait $tpid
    _rc=$?
    kill $_w 2>/dev/null
    disk_report tapwatch $_rc /tmp/tapwatch.out /tmp/tapwatch.err
    echo "test ! -e /sys/block/nbd0/pid && test \$(cat /sys/block/nbd0/size) = 0" >/tmp/free.out.argv
    { cat /sys/block/nbd0/size; ls /sys/block/nbd0/pid 2>&1; } >/tmp/free.out 2>&1
    test ! -e /sys/block/nbd0/pid && test "$(cat /sys/block/nbd0/size)" = 0
    disk_report nbd-free $? /tmp/free.out /dev/null
    stamp disk-checked
    echo "@@XA-BEGIN-DISKIMG-MD5@@"
    md5sum <"$img"
    echo "@@XA-END-DISKIMG-MD5@@"
    echo "@@XA-BEGIN-DISKIMG@@"
    # Paced: Xen's console buffer (serial_tx_buffer) drops what overflows.
    gzip -c "$img" | base64 | {
        n=0
        while read -r l; do
            echo "$l"
            n=$((n + 1))
            [ $((n % 400)) = 0 ] && sleep 0.2
        done
    }
    echo "@@XA-END-DISKIMG@@"
    stamp disk-dumped

    [ "$XA_DISK_BENCH_RUNS" -gt 0 ] || return
    # Figure 7's three modes, the same domU and image each time: xvda on a
    # loop device (loop: the plain disk), on /dev/nbd0 served by xascript
    # with no watch (tap), and with diskwatch.lua watching the folders the
    # files are made in and printing every event (watch).
    if loop=$(losetup -f) && losetup "$loop" "$img"; then
        disk_domu xa-bench-loop "$loop" bench:loop
        disk_console xa-bench-loop BENCHCONSOLE-LOOP
        losetup -d "$loop"
    else
        bench_fail "no loop device in dom0"
    fi
    echo "-- no watch: xascript only serves the disk" >/tmp/nowatch.lua
    for mode in tap watch; do
        if [ $mode = tap ]; then
            set -- /tmp/nowatch.lua --disk "$img" --nbd-device /dev/nbd0
        else
            set -- $ws -v --disk "$img" --nbd-device /dev/nbd0 -- -r /bench
        fi
        xascript "$@" >/tmp/bench-$mode.out 2>/tmp/bench-$mode.err </dev/null &
        npid=$!
        if disk_wait_nbd $npid; then
            disk_domu xa-bench-$mode /dev/nbd0 bench:$mode
            disk_console xa-bench-$mode BENCHCONSOLE-$(echo $mode | tr a-z A-Z)
        else
            bench_fail "/dev/nbd0 never came up for the $mode benchmark"
        fi
        disk_stop $npid
        _rc=$?
        [ $_rc = 143 ] || bench_fail "$mode benchmark: xascript exited with status $_rc: $(tail -n 3 /tmp/bench-$mode.err | tr '\n@' '  ')"
        echo "@@XA-BENCH-EVENTS $mode $(wc -l </tmp/bench-$mode.out)@@"
        echo "@@XA-BEGIN-BENCHERR-$(echo $mode | tr a-z A-Z)@@"
        # A Go crash's cause is at its top, its goroutines below.
        { grep -m 3 -A 4 -E '^(fatal error|panic|runtime:|unexpected fault|SIG)' /tmp/bench-$mode.err; tail -n 8 /tmp/bench-$mode.err; } |
            sed 's/@@/##/g'
        echo "@@XA-END-BENCHERR-$(echo $mode | tr a-z A-Z)@@"
    done
    stamp disk-bench-done
}

disk_main
