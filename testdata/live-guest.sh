#!/usr/bin/env bash
# live-guest.sh — boot a live test guest for the vmi/qemu tests and leave it
# running, or stop one started before.
#
#   live-guest.sh start DIR NAME   boot; wait for @@XA-READY@@; exit 0 with
#                                  QEMU still running in the background
#   live-guest.sh stop DIR         kill that QEMU by its PID; remove its RAM file
#
# The guest: the cached Debian cloud 6.1 kernel (fetch.sh amd64), -cpu qemu64
# (4-level paging), 128 MiB of q35 RAM in a shared memory-backend-file at
# /dev/shm/xa-NAME, QMP on DIR/qmp.sock. Its /init loads a few modules,
# prints /proc/version and /proc/modules between the @@XA-BEGIN/END-X@@
# markers guesttool.py parses, prints @@XA-READY@@ and idles.
#
# DIR receives: qemu.pid, qmp.path (the socket path), mem.path (the RAM
# file), serial.log, qemu.out, initramfs.cpio, init.
# XA_BOOT_TIMEOUT (default 120) bounds the wait for READY.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${XA_TESTDATA_CACHE:-$HERE/.cache}
BOOT_TIMEOUT=${XA_BOOT_TIMEOUT:-120}
MODULES=(crc7 crc-itu-t dummy ifb nlmon veth tun loop isofs)

log() { printf '[live-guest] %s\n' "$*" >&2; }
die() { printf '[live-guest] ERROR: %s\n' "$*" >&2; exit 1; }
usage() { echo "usage: $0 start DIR NAME | stop DIR" >&2; exit 2; }

write_init() { # FILE
    cat >"$1" <<'INIT'
#!/bin/sh
export PATH=/bin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo 1 >/proc/sys/kernel/printk
echo 0 >/proc/sys/kernel/kptr_restrict
while read -r m; do
    insmod "/lib/modules/$m.ko" || echo "XA-INSMOD-FAIL $m"
done </modules.order
echo "@@XA-BEGIN-VERSION@@"; cat /proc/version; echo "@@XA-END-VERSION@@"
echo "@@XA-BEGIN-MODULES@@"; cat /proc/modules; echo "@@XA-END-MODULES@@"
echo "@@XA-READY@@"
mkfifo /idle
exec 3<>/idle
while :; do read -r _ <&3; done
INIT
}

start() {
    local dir=$1 name=$2
    [[ $name =~ ^[A-Za-z0-9_.-]+$ ]] || die "NAME must be [A-Za-z0-9_.-]+"
    [[ -f $CACHE/amd64.env ]] || "$HERE/fetch.sh" amd64
    # shellcheck disable=SC1091
    source "$CACHE/amd64.env"
    local vmlinuz=$KROOT/boot/vmlinuz-$KVER
    [[ -f $vmlinuz && -f $BUSYBOX ]] || die "fetch.sh output incomplete; rerun testdata/fetch.sh amd64"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    local mem=/dev/shm/xa-$name sock=$dir/qmp.sock
    rm -f "$sock" "$mem"
    write_init "$dir/init"
    python3 "$HERE/guesttool.py" initramfs "$dir/initramfs.cpio" \
        --busybox "$BUSYBOX" --init "$dir/init" \
        --kroot "$KROOT" --kver "$KVER" "${MODULES[@]}"
    local -a qemu=(qemu-system-x86_64 -accel tcg -smp 1 -cpu qemu64 -m 128M
        -machine q35,memory-backend=mem
        -object "memory-backend-file,id=mem,size=128M,mem-path=$mem,share=on"
        -display none -monitor none -no-reboot -nodefaults
        -serial "file:$dir/serial.log" -qmp "unix:$sock,server,nowait"
        -kernel "$vmlinuz" -initrd "$dir/initramfs.cpio"
        -append "console=ttyS0 init_on_free=1 quiet panic=1 rdinit=/init")
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
            rm -f "$mem"
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
start) [[ $# -eq 3 ]] || usage; start "$2" "$3" ;;
stop) [[ $# -eq 2 ]] || usage; stop "$2" ;;
*) usage ;;
esac
exit
