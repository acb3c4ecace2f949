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
# 0 skips the benchmark), XA_DISK_BENCH_FAULT (MODE:SIGNAL: send SIGNAL to
# the xascript serving benchmark MODE once the domU timed its first run;
# e.g. tap:KILL, a monitor that dies, or watch:STOP, one that hangs).
#
# Nothing here may sink the run: in this dom0 (PV, under QEMU TCG) a
# long-running xascript has died of corrupted runtime state now and then,
# and a domU whose disk lost its server can hang. So every wait is bounded,
# the benchmark sizes itself by the time left before the harness kills QEMU
# (xa_left, dom0-run.sh), a domU is destroyed as soon as the xascript serving
# its disk is gone, `xl` itself is bounded, and the kernel's NBD device fails
# a request unanswered for a minute (kernelnbd.IOTimeout) instead of
# holding it. The benchmark's failures are reported, not fatal.
: "${XA_DISK_BENCH_RUNS:=3}"
: "${XA_DISK_BENCH_FAULT:=}"
# Seconds kept for what follows the benchmark (its reports, dom0's end,
# Xen's poweroff) and for the reckoning's error.
BENCH_RESERVE=45
# The least a benchmark mode needs: the domU's boot and a few timed runs.
BENCH_MIN=60

disk_fail() { echo "@@XA-DISK-FAIL $*@@"; }
bench_fail() { echo "@@XA-BENCH-FAIL $*@@"; }

# proc_alive PID: the process runs (a zombie, dead but not yet waited for,
# does not: kill -0 would say it does).
proc_alive() {
    { read -r _ _ _st _ <"/proc/$1/stat"; } 2>/dev/null || return 1
    [ "$_st" != Z ] && [ "$_st" != X ]
}

# wait_gone PID SECS: wait up to SECS for PID to end; 0 if it did.
wait_gone() {
    _end=$(($(xa_clock) + $2))
    while proc_alive "$1"; do
        [ "$(xa_clock)" -ge $_end ] && return 1
        sleep 0.2
    done
}

# xl_bounded SECS ARG...: xl, killed after SECS (a domain whose backend
# waits on a dead disk has been seen to stall it).
xl_bounded() {
    _s=$1
    shift
    timeout -s KILL "$_s" xl "$@"
}

# domu_destroy NAME WHY FAIL: destroy the domain, bounded, and report.
domu_destroy() {
    $3 "$1 $2"
    if ! xl_bounded 30 destroy "$1" >/tmp/destroy-$1.log 2>&1; then
        $3 "$1: xl destroy failed or took over 30 s: $(tr '\n@' '  ' </tmp/destroy-$1.log)"
    fi
}

# err_tail FILE: the last lines of a monitor's stderr, on one line (a Go
# crash's cause first).
err_tail() {
    { grep -m 1 -E '^(fatal error|panic|unexpected fault|SIG)' "$1"; tail -n 3 "$1"; } 2>/dev/null | tr '\n@' '  ' | cut -c1-600
}

# disk_domu NAME BACKDEV MODE BUDGET FAIL [PID ERR]: boot the disk domU
# with BACKDEV as its xvda and wait until it has powered off, for at most
# BUDGET seconds; with PID (the xascript serving BACKDEV, its stderr in
# ERR), destroy the domU as soon as that process is gone. FAIL reports
# (disk_fail or bench_fail).
disk_domu() {
    _name=$1 _budget=$4 _fail=$5 _spid=${6:-} _serr=${7:-}
    cat >"/xa/$_name.cfg" <<CFG
name = "$_name"
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
    : >"$CONSOLE_DIR/guest-$_name.log"
    stamp "create-$_name"
    _t0=$(xa_clock)
    if ! xl_bounded 120 create "/xa/$_name.cfg" >"/tmp/create-$_name.log" 2>&1; then
        sed 's/@@/##/g' "/tmp/create-$_name.log"
        $_fail "$_name xl create failed (or took over 120 s)"
        xl_bounded 30 destroy "$_name" >/dev/null 2>&1
        return 1
    fi
    _faulted=
    # Gone once it powered off.
    while xl_bounded 30 domid "$_name" >/dev/null 2>&1; do
        if [ -n "$_spid" ] && ! proc_alive "$_spid"; then
            domu_destroy "$_name" "destroyed: the xascript serving its disk (pid $_spid) is gone: $(err_tail "$_serr")" "$_fail"
            return 1
        fi
        if [ $(($(xa_clock) - _t0)) -ge "$_budget" ]; then
            domu_destroy "$_name" "still running after ${_budget}s (its budget): destroyed" "$_fail"
            return 1
        fi
        [ "$3" = paper ] && paper_release "$_name" "$_t0"
        case $XA_DISK_BENCH_FAULT in
        "${3#bench:}":*)
            if [ -z "$_faulted" ] && [ -n "$_spid" ] && grep -q '@@XA-FIG7' "$CONSOLE_DIR/guest-$_name.log" 2>/dev/null; then
                _faulted=1
                echo "@@XA-NOTE fault injected: SIG${XA_DISK_BENCH_FAULT#*:} to xascript (pid $_spid) serving $_name@@"
                kill -s "${XA_DISK_BENCH_FAULT#*:}" "$_spid"
            fi
            ;;
        esac
        sleep 0.5
    done
    stamp "gone-$_name"
}

# paper_release NAME T0: the paper's domU waits after its sequence
# (@@XA-DISK-WAITING@@) so that the monitor reading its memory finds it
# running; release it (xl shutdown, once) when the monitor printed the
# modules it read and the sequence's last event, or 120 s after it began
# waiting, or 240 s after T0 whatever its console says (an empty console
# has been seen).
paper_release() {
    [ -z "$_released" ] || return 0
    _now=$(xa_clock)
    if grep -q '@@XA-DISK-WAITING@@' "$CONSOLE_DIR/guest-$1.log" 2>/dev/null; then
        [ -n "$_waiting" ] || _waiting=$_now
    fi
    if grep -q '^MEMORY: modules at' /tmp/nbdwatch.out && grep -q '^RMFILE: /root/bar' /tmp/nbdwatch.out; then
        :
    elif [ -n "$_waiting" ] && [ $((_now - _waiting)) -ge 120 ]; then
        echo "@@XA-NOTE $1 released 120 s after its sequence without the monitor's report@@"
    elif [ $((_now - $2)) -ge 240 ]; then
        echo "@@XA-NOTE $1 released 240 s after xl create@@"
    else
        return 0
    fi
    _released=1
    stamp "release-$1"
    xl_bounded 30 shutdown "$1" >/dev/null 2>&1 || disk_fail "$1: xl shutdown failed"
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

# disk_stop PID [SECS]: SIGTERM (a clean end: the device is disconnected and
# the image synced); after SECS (default 60) SIGQUIT, so that Go writes every
# goroutine's stack to the process's stderr (what it was stuck on: see
# disk_stacks) and exits with status 2; SIGKILL 5 s later, and wait at most
# 20 s more (a process stuck in the kernel outlives SIGKILL: then status 254
# and it is left behind); prints nothing, returns its exit status.
disk_stop() {
    kill -TERM "$1" 2>/dev/null
    if ! wait_gone "$1" "${2:-60}"; then
        kill -QUIT "$1" 2>/dev/null
        if ! wait_gone "$1" 5; then
            kill -KILL "$1" 2>/dev/null
            wait_gone "$1" 20 || return 254
        fi
    fi
    wait "$1"
}

# disk_stacks ERRFILE: after disk_stop's SIGQUIT, each goroutine's header
# and its frames in xascript's own code (the dump's other lines are the
# runtime's and file:line pairs), bounded.
disk_stacks() {
    grep -q '^SIGQUIT: quit' "$1" 2>/dev/null || return 0
    grep -E '^goroutine [0-9]+ |^github\.com/xascript/' "$1" | sed 's/@@/##/g' | head -n 120
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

disk_wait_nbd() { # PID [SECS]: wait until /dev/nbd0 is connected (bounded)
    _end=$(($(xa_clock) + ${2:-60}))
    until [ -e /sys/block/nbd0/pid ]; do
        proc_alive "$1" || return 1
        [ "$(xa_clock)" -ge $_end ] && return 1
        sleep 0.1
    done
}

# disk_wait_line FILE TEXT SECS: wait (bounded) until FILE holds TEXT.
disk_wait_line() {
    _end=$(($(xa_clock) + $3))
    until grep -q "$2" "$1" 2>/dev/null; do
        [ "$(xa_clock)" -ge $_end ] && return 1
        sleep 0.2
    done
}

# bench_mode MODE MODES_LEFT: one Figure 7 mode (loop, tap, watch) with its
# share of the time left, or a note that too little is left for it.
bench_mode() {
    _mode=$1
    _share=$((($(xa_left) - BENCH_RESERVE) / $2))
    [ $_share -gt $((XA_DOMU_TIMEOUT * 2)) ] && _share=$((XA_DOMU_TIMEOUT * 2))
    if [ $_share -lt $BENCH_MIN ]; then
        bench_fail "$_mode benchmark skipped: $(xa_left)s left before the harness's timeout, ${_share}s for this mode (needs ${BENCH_MIN}s)"
        return
    fi
    _up=$(echo "$_mode" | tr a-z A-Z)
    _mend=$(($(xa_clock) + _share))
    echo "@@XA-NOTE $_mode benchmark: ${_share}s budget, $(xa_left)s left@@"
    if [ "$_mode" = loop ]; then
        if loop=$(losetup -f) && losetup "$loop" "$img"; then
            disk_domu xa-bench-loop "$loop" bench:loop "$_share" bench_fail
            disk_console xa-bench-loop BENCHCONSOLE-LOOP
            losetup -d "$loop" || bench_fail "losetup -d $loop failed"
        else
            bench_fail "no loop device in dom0"
        fi
        return
    fi
    if [ "$_mode" = tap ]; then
        set -- /tmp/nowatch.lua --disk "$img" --nbd-device /dev/nbd0
    else
        set -- $ws -v --disk "$img" --nbd-device /dev/nbd0 -- -r /bench
    fi
    xascript "$@" >/tmp/bench-$_mode.out 2>/tmp/bench-$_mode.err </dev/null &
    _bpid=$!
    if disk_wait_nbd $_bpid 60; then
        disk_domu xa-bench-$_mode /dev/nbd0 bench:$_mode $((_mend - $(xa_clock))) bench_fail $_bpid /tmp/bench-$_mode.err
        disk_console xa-bench-$_mode BENCHCONSOLE-$_up
    else
        bench_fail "/dev/nbd0 never came up for the $_mode benchmark: $(err_tail /tmp/bench-$_mode.err)"
    fi
    disk_stop $_bpid 30
    _rc=$?
    [ $_rc = 143 ] || bench_fail "$_mode benchmark: xascript exited with status $_rc: $(err_tail /tmp/bench-$_mode.err)"
    echo "@@XA-BENCH-EVENTS $_mode $(wc -l </tmp/bench-$_mode.out)@@"
    echo "@@XA-BEGIN-BENCHERR-$_up@@"
    # A Go crash's cause is at its top, its goroutines below.
    { grep -m 3 -A 4 -E '^(fatal error|panic|runtime:|unexpected fault|SIG)' /tmp/bench-$_mode.err; tail -n 8 /tmp/bench-$_mode.err; } |
        sed 's/@@/##/g'
    disk_stacks /tmp/bench-$_mode.err
    echo "@@XA-END-BENCHERR-$_up@@"
    # The driver frees the device once its last opener (blkback, for a
    # domU that is still being torn down) lets go: give it a moment.
    _end=$(($(xa_clock) + 15))
    while [ -e /sys/block/nbd0/pid ] && [ "$(xa_clock)" -lt $_end ]; do
        sleep 0.5
    done
    if [ -e /sys/block/nbd0/pid ]; then
        bench_fail "/dev/nbd0 still connected 15 s after the $_mode benchmark's xascript (pid $_bpid) was stopped"
    fi
}

disk_main() {
    DOMU_NAME=xa-disk
    export XASCRIPT_CACHE_DIR=/tmp/xascript-cache-disk
    stamp disk-start
    while read -r m; do
        insmod "/lib/modules/$m.ko" || { disk_fail "insmod $m"; return; }
    done </disk-modules.order
    img=/tmp/disk.img
    cp /xa-disk/disk.img "$img"
    fifo=/tmp/tap.fifo
    mkfifo "$fifo"
    ws=/xa/scripts/examples/diskwatch.lua
    # The serving monitor reads the domain's memory too (issue 11: --dom
    # with --nbd-device, started before `xl create`): its disk watch from the
    # first write, then the kernel's banner, which waits until xa-disk runs,
    # and at the first event the modules the domU's kernel has loaded.
    cat >/tmp/diskmem.lua <<'LUA'
local linux = require("linux")
local seen = false
on_disk_event("/root", function(ev)
  print(ev.op .. ": " .. ev.path)
  if not seen then
    seen = true
    local names = {}
    for _, m in ipairs(with_paused(linux.modules)) do names[#names + 1] = m.name end
    print("MEMORY: modules at " .. ev.op .. " " .. ev.path .. ": " .. table.concat(names, " "))
  end
end)
print("MEMORY: banner " .. guest_info().banner)
LUA
    # The reader first: it opens the FIFO and waits for its writer.
    echo "xascript $ws --disk $img --tapfifo $fifo -- /root" >/tmp/tapwatch.out.argv
    xascript $ws -v --disk "$img" --tapfifo "$fifo" -- /root >/tmp/tapwatch.out 2>/tmp/tapwatch.err </dev/null &
    tpid=$!
    echo "xascript /tmp/diskmem.lua --dom xa-disk --disk $img --nbd-device /dev/nbd0 --tapfifo-out $fifo" >/tmp/nbdwatch.out.argv
    xascript /tmp/diskmem.lua -v --dom xa-disk --disk "$img" --nbd-device /dev/nbd0 --tapfifo-out "$fifo" \
        >/tmp/nbdwatch.out 2>/tmp/nbdwatch.err </dev/null &
    npid=$!
    if ! disk_wait_nbd $npid 60; then
        disk_fail "/dev/nbd0 never came up: $(err_tail /tmp/nbdwatch.err)"
        disk_stop $npid
        disk_report nbdwatch $? /tmp/nbdwatch.out /tmp/nbdwatch.err
        disk_stop $tpid
        return
    fi
    stamp disk-nbd-up
    # The monitor waits for a domain that does not exist yet before xl
    # create makes it (bounded; the test reads what it said).
    disk_wait_line /tmp/nbdwatch.err "waiting up to" 60 ||
        echo "@@XA-NOTE nbdwatch did not say it waits for xa-disk within 60 s@@"
    # Its budget: the domU's, and what leaves the benchmark a chance.
    _b=$((XA_DOMU_TIMEOUT * 2))
    [ $_b -gt $(($(xa_left) - BENCH_RESERVE)) ] && _b=$(($(xa_left) - BENCH_RESERVE))
    _released= _waiting=
    disk_domu xa-disk /dev/nbd0 paper $_b disk_fail $npid /tmp/nbdwatch.err
    disk_console xa-disk DISKCONSOLE
    disk_stop $npid
    disk_report nbdwatch $? /tmp/nbdwatch.out /tmp/nbdwatch.err
    # The tapfifo reader ends when the writer closed the FIFO.
    if wait_gone $tpid 60; then
        wait $tpid
        _rc=$?
    else
        disk_stop $tpid 5
        _rc=$?
    fi
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
    # files are made in and printing every event (watch). Each mode gets an
    # even share of the time left (at most the domU's own budget).
    echo "-- no watch: xascript only serves the disk" >/tmp/nowatch.lua
    bench_mode loop 3
    bench_mode tap 2
    bench_mode watch 1
    stamp disk-bench-done
}

disk_main
