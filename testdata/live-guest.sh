#!/usr/bin/env bash
# live-guest.sh — boot a live test guest for the vmi/qemu tests and leave it
# running, or stop one started before.
#
#   live-guest.sh start DIR NAME [RAM]  boot; wait for @@XA-READY@@; exit 0
#                                       with QEMU still running in the background
#   live-guest.sh stop DIR              kill that QEMU by its PID; remove its RAM file
#
# The guest: the cached Debian cloud 6.1 kernel (fetch.sh amd64), -cpu qemu64
# (4-level paging), 128 MiB of q35 RAM (XA_LIVE_MEM), QMP on DIR/qmp.sock and a second QMP
# monitor on DIR/qmp-ctl.sock (for a test to send commands, such as quit,
# while a target holds the first; a QMP socket serves one client at a time).
# RAM (default $XA_LIVE_RAM, else "file"):
#   file  a shared memory-backend-file at /dev/shm/xa-NAME
#   anon  plain -m: anonymous memory only QEMU's own process holds
# Its /init loads a few modules (all but $HELD, which stay in
# /lib/modules for a test to insmod), prints /proc/version and /proc/modules
# between the @@XA-BEGIN/END-X@@ markers guesttool.py parses, prints
# @@XA-READY@@ and then serves commands on its second serial port (ttyS1,
# the unix socket DIR/cmd.sock): for each line it reads it prints
# @@XA-BEGIN-CMD@@, the output of `sh -c LINE`, and @@XA-END-CMD rc=N@@.
# /bin/xa-churn SECONDS (testdata/churn-guest.sh) is there for a command to
# start: modules unloaded and reloaded, processes forked and killed.
#
# DIR receives: qemu.pid, qmp.path (the socket path), mem.path (the RAM
# file, "-" for anon), serial.log, qemu.out, initramfs.cpio, init.
# start prints "READY PID QMP-SOCKET RAM-FILE|-".
# XA_LIVE_FILES (space-separated SRC:/bin/NAME) adds programs of a test to
# the initramfs; XA_LIVE_CPU (default qemu64; max turns on 5-level paging)
# is QEMU's -cpu, XA_LIVE_APPEND more kernel parameters (pti=on).
# XA_BOOT_TIMEOUT (default 120) bounds the wait for READY; XA_LIVE_MEM
# (default 128M) sizes the RAM (above 2 GiB q35 puts the rest above 4 GiB);
# XA_LIVE_SMP (default 1) is the number of vCPUs. XA_LIVE_KERNEL (default
# amd64) is the fetch.sh target whose kernel boots: amd64-5.10 is bullseye's
# 5.10, the last kernel before the maple tree.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${XA_TESTDATA_CACHE:-$HERE/.cache}
BOOT_TIMEOUT=${XA_BOOT_TIMEOUT:-120}
MEM=${XA_LIVE_MEM:-128M}
SMP=${XA_LIVE_SMP:-1}
CPU=${XA_LIVE_CPU:-qemu64}
APPEND=${XA_LIVE_APPEND:-}
KERNEL=${XA_LIVE_KERNEL:-amd64}
MODULES=(crc7 crc-itu-t dummy ifb nlmon veth tun loop isofs romfs)
HELD=romfs # in the initramfs, not loaded at boot

log() { printf '[live-guest] %s\n' "$*" >&2; }
die() { printf '[live-guest] ERROR: %s\n' "$*" >&2; exit 1; }
usage() { echo "usage: $0 start DIR NAME [file|anon] | stop DIR" >&2; exit 2; }

write_init() { # FILE
    { echo "#!/bin/sh"; echo "HELD='$HELD'"; } >"$1"
    cat >>"$1" <<'INIT'
. /lib/xa-guest.sh
xa_boot $HELD
INIT
    # The churn suite's load, as /bin/xa-churn (testdata/churn-guest.sh).
    { echo "cat >/bin/xa-churn <<'XA_CHURN_EOF'"; cat "$HERE/churn-guest.sh"; echo "XA_CHURN_EOF"
      echo "chmod 755 /bin/xa-churn"; } >>"$1"
    cat >>"$1" <<'INIT'
xa_section VERSION /proc/version
xa_section MODULES /proc/modules
stty -F /dev/ttyS1 raw -echo clocal 2>/dev/null || echo "XA-STTY-FAIL"
echo "@@XA-READY@@"
exec 4<>/dev/ttyS1
# The command loop is a child of pid 1: a background command's processes
# are re-parented to pid 1 when their shell exits, and the SIGCHLD of their
# end, delivered to a loop in `read`, made ash drop the part of the line it
# had read. pid 1 ignores SIGCHLD (the kernel reaps those orphans) and
# sleeps.
(
while :; do
    if read -r line <&4; then
        echo "@@XA-BEGIN-CMD@@" >&4
        sh -c "$line" >&4 2>&1 </dev/null
        echo "@@XA-END-CMD rc=$?@@" >&4
    else
        sleep 1 # no reader end yet, or a read error: try again
    fi
done
) &
trap '' CHLD
xa_idle_fd
while :; do read -r _ <&3; done
INIT
}

start() {
    local dir=$1 name=$2 ram=${3:-${XA_LIVE_RAM:-file}}
    [[ $name =~ ^[A-Za-z0-9_.-]+$ ]] || die "NAME must be [A-Za-z0-9_.-]+"
    [[ $ram == file || $ram == anon ]] || die "RAM must be file or anon, not $ram"
    [[ $MEM =~ ^[0-9]+[MG]$ ]] || die "XA_LIVE_MEM must be like 128M or 5G, not $MEM"
    [[ $CPU =~ ^[A-Za-z0-9,_+=-]+$ ]] || die "XA_LIVE_CPU must be a QEMU -cpu model, not $CPU"
    [[ $APPEND =~ ^[A-Za-z0-9_.,=\ -]*$ ]] || die "XA_LIVE_APPEND must be kernel parameters, not $APPEND"
    [[ $KERNEL == amd64 || $KERNEL == amd64-6.12 || $KERNEL == amd64-5.10 ]] ||
        die "XA_LIVE_KERNEL must be amd64, amd64-6.12 or amd64-5.10, not $KERNEL"
    [[ -f $CACHE/$KERNEL.env ]] || "$HERE/fetch.sh" "$KERNEL"
    # shellcheck disable=SC1090
    source "$CACHE/$KERNEL.env"
    local vmlinuz=$KROOT/boot/vmlinuz-$KVER
    [[ -f $vmlinuz && -f $BUSYBOX ]] || die "fetch.sh output incomplete; rerun testdata/fetch.sh $KERNEL"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    local mem=/dev/shm/xa-$name sock=$dir/qmp.sock
    rm -f "$sock" "$dir/qmp-ctl.sock" "$dir/cmd.sock"
    if [[ $ram == file ]]; then rm -f "$mem"; else mem=-; fi
    write_init "$dir/init"
    local -a files=()
    local f
    for f in ${XA_LIVE_FILES:-}; do files+=(--file "$f"); done
    python3 "$HERE/guesttool.py" initramfs "$dir/initramfs.cpio" \
        --busybox "$BUSYBOX" --init "$dir/init" "${files[@]}" \
        --kroot "$KROOT" --kver "$KVER" "${MODULES[@]}"
    local -a ramargs=(-machine q35)
    if [[ $ram == file ]]; then
        ramargs=(-machine q35,memory-backend=mem
            -object "memory-backend-file,id=mem,size=$MEM,mem-path=$mem,share=on")
    fi
    local -a qemu=(qemu-system-x86_64 -name "$name" -accel tcg -smp "$SMP" -cpu "$CPU" -m "$MEM"
        "${ramargs[@]}"
        -display none -monitor none -no-reboot -nodefaults
        -serial "file:$dir/serial.log" -serial "unix:$dir/cmd.sock,server=on,wait=off"
        -qmp "unix:$sock,server=on,wait=off" -qmp "unix:$dir/qmp-ctl.sock,server=on,wait=off"
        -kernel "$vmlinuz" -initrd "$dir/initramfs.cpio"
        -append "console=ttyS0 init_on_free=1 quiet panic=1 rdinit=/init${APPEND:+ $APPEND}")
    log "boot: ${qemu[*]}"
    # setsid: QEMU outlives this script and is not in the caller's process
    # group; its output goes to a file so no pipe of the caller stays open.
    setsid "${qemu[@]}" </dev/null >"$dir/qemu.out" 2>&1 &
    local pid=$!
    echo "$pid" >"$dir/qemu.pid"
    echo "$sock" >"$dir/qmp.path"
    echo "$mem" >"$dir/mem.path"
    local t0=$SECONDS
    while ! grep -qa '^@@XA-READY@@' "$dir/serial.log" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$dir/serial.log" "$dir/qemu.out" >&2 || true
            die "QEMU exited before the guest was ready"
        fi
        if ((SECONDS - t0 > BOOT_TIMEOUT)); then
            tail -c 2000 "$dir/serial.log" >&2 || true
            kill "$pid" 2>/dev/null || true
            [[ $mem == - ]] || rm -f "$mem"
            die "guest not ready after ${BOOT_TIMEOUT}s"
        fi
        sleep 0.2
    done
    log "ready after $((SECONDS - t0))s: pid $pid, QMP $sock, RAM $mem"
    echo "READY $pid $sock $mem"
}

stop() {
    local dir=$1 pid mem i
    if [[ -f $dir/qemu.pid ]]; then
        pid=$(<"$dir/qemu.pid")
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for ((i = 0; i < 50; i++)); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -9 "$pid" 2>/dev/null || true
        fi
    fi
    if [[ -f $dir/mem.path ]]; then
        mem=$(<"$dir/mem.path")
        [[ $mem == /dev/shm/xa-* ]] && rm -f "$mem"
    fi
    return 0
}

case ${1:-} in
start) [[ $# -eq 3 || $# -eq 4 ]] || usage; start "$2" "$3" "${4:-}" ;;
stop) [[ $# -eq 2 ]] || usage; stop "$2" ;;
*) usage ;;
esac
exit
