#!/usr/bin/env bash
# build-kdump.sh OUTDIR — crash a real guest and keep its kdump /proc/vmcore.
#
# Boots Debian's amd64 cloud kernel (6.1, CONFIG_KEXEC_FILE, CONFIG_CRASH_DUMP,
# CONFIG_PROC_VMCORE) under QEMU TCG with crashkernel= and KASLR on. Its
# /init (kdump-init.sh) loads the test guests' modules, prints its ground
# truth on the serial console, loads the same kernel as a capture kernel
# with kexec_file_load(2) (kexec-load/, a static Go program: busybox has no
# kexec) and panics through sysrq. The capture kernel's /init
# (capture-init.sh) copies /proc/vmcore to a virtio disk and powers off.
#
# Outputs in OUTDIR (written to a scratch dir first, moved in when complete):
#   vmcore.zst      the vmcore exactly as /proc/vmcore read (cut from the disk)
#   truth.json      the first kernel's truth (kdumptool.py truth)
#   kallsyms.zst    its /proc/kallsyms
#   serial.log.zst  the whole console: first kernel, panic, capture kernel
#
# Needs: testdata/fetch.sh amd64 (run here when its summary is missing),
# qemu-system-x86_64, zstd, python3, go. Knobs: XA_KDUMP_MEM_MB (guest RAM,
# 384), XA_KDUMP_CRASHKERNEL (crashkernel=, 96M; see README.md for why these), XA_BOOT_TIMEOUT (120),
# XA_PRINT_TIMEOUT (300), XA_CAPTURE_TIMEOUT (seconds from the panic to the
# capture kernel's first marker, 180), XA_COPY_TIMEOUT (then to the end of
# the copy, 300), XA_ZSTD_LEVEL (3), XA_KEEP_WORK=1 (keep a failed build's
# scratch dir).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
TESTDATA=$(cd "$HERE/.." && pwd)
REPO=$(cd "$TESTDATA/.." && pwd)
CACHE=${XA_TESTDATA_CACHE:-$TESTDATA/.cache}
MEM_MB=${XA_KDUMP_MEM_MB:-384}
# The capture kernel runs out of memory unpacking its initramfs at 64M and
# works at 80M; 96M leaves room. The region must be found whole, 16 MiB
# aligned, below the initrd and beside the randomly placed 40 MiB kernel
# image: in 256M of RAM 128M failed, so 384M keeps every KASLR placement
# workable (README.md).
CRASHKERNEL=${XA_KDUMP_CRASHKERNEL:-96M}
BOOT_TIMEOUT=${XA_BOOT_TIMEOUT:-120}
PRINT_TIMEOUT=${XA_PRINT_TIMEOUT:-300}
CAPTURE_TIMEOUT=${XA_CAPTURE_TIMEOUT:-180}
COPY_TIMEOUT=${XA_COPY_TIMEOUT:-300}
ZSTD=(zstd -q "-${XA_ZSTD_LEVEL:-3}" -T0 --long=27 -f)
MEM_BYTES=$((MEM_MB * 1024 * 1024))

# The test guests' modules (testdata/guest-modules.txt): the first
# kernel's /proc/modules is what lkm.lua must print from the vmcore.
mapfile -t MODULES < <(grep -v '^#' "$HERE/../guest-modules.txt" | tr -s ' ' '\n' | grep .)
# The capture kernel needs only the disk.
CAPTURE_MODULES=(virtio_pci virtio_blk)

# The capture kernel's command line (the kernel appends elfcorehdr= and the
# memory map itself). nr_cpus=1 and irqpoll as kdump-tools passes; panic=1
# with -no-reboot makes a capture-kernel panic a QEMU exit.
CAPTURE_APPEND="console=ttyS0 quiet panic=1 rdinit=/init nr_cpus=1 irqpoll reset_devices"

log() { printf '[build-kdump] %s\n' "$*" >&2; }
die() { printf '[build-kdump] ERROR: %s\n' "$*" >&2; exit 1; }

# shellcheck source=/dev/null
source "$HERE/../host-lib.sh"

# work_base: the scratch dir's parent, with room for the guest's RAM twice
# (the disk the vmcore is written to, then the cut vmcore) plus the
# initramfs images.
work_base() { xa_work_base $((2 * MEM_BYTES + (512 << 20))); }

# tail_fail WHY: QEMU's own output and the serial log's tail, then fail.
tail_fail() {
    log "$1; QEMU output and the serial log tail:"
    cat "$WORK/qemu.out" >&2 2>/dev/null || true
    tail -c 4000 "$WORK/serial.log" 2>/dev/null | tr -d '\r' >&2 || true
    echo >&2
    die "$1"
}

# wait_marker REGEX SECONDS WHAT: poll the serial log until a line matches;
# fail when the guest reports a failure, QEMU exits first, or time is up.
wait_marker() {
    local re=$1 limit=$2 what=$3 start=$SECONDS
    while :; do
        if grep -qaE "$re" "$WORK/serial.log" 2>/dev/null; then
            log "$what after $((SECONDS - start))s (t=$((SECONDS - T0))s)"
            return 0
        fi
        if grep -qa '^@@XA-KDUMP-FAIL' "$WORK/serial.log" 2>/dev/null; then
            tail_fail "the guest failed: $(grep -a '^@@XA-KDUMP-FAIL' "$WORK/serial.log" | head -1 | tr -d '\r')"
        fi
        if ! kill -0 "$QEMU_PID" 2>/dev/null; then
            wait "$QEMU_PID" 2>/dev/null || true
            QEMU_PID=
            tail_fail "QEMU exited before $what"
        fi
        if ((SECONDS - start > limit)); then
            tail_fail "no $what within ${limit}s"
        fi
        sleep 0.5
    done
}

# wait_exit SECONDS: the capture kernel powers off; kill QEMU if it does not.
wait_exit() {
    local i
    for ((i = 0; i < $1 * 10; i++)); do
        if ! kill -0 "$QEMU_PID" 2>/dev/null; then
            wait "$QEMU_PID" 2>/dev/null || true
            QEMU_PID=
            return 0
        fi
        sleep 0.1
    done
    log "QEMU (pid $QEMU_PID) still running $1s after the copy; killing it"
    kill "$QEMU_PID" 2>/dev/null || true
    sleep 1
    kill -9 "$QEMU_PID" 2>/dev/null || true
    wait "$QEMU_PID" 2>/dev/null || true
    QEMU_PID=
}

main() {
    [[ $# -eq 1 ]] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
    local outdir=$1
    T0=$SECONDS
    local tool
    for tool in qemu-system-x86_64 zstd python3 go; do
        command -v "$tool" >/dev/null || die "$tool not found (make testdata-deps installs QEMU, zstd and python3)"
    done
    [[ -f $CACHE/amd64.env ]] || bash "$TESTDATA/fetch.sh" amd64
    # shellcheck disable=SC1091
    source "$CACHE/amd64.env"
    local vmlinuz=$KROOT/boot/vmlinuz-$KVER
    [[ -f $vmlinuz && -f $BUSYBOX ]] || die "fetch.sh output incomplete; rerun testdata/fetch.sh amd64"
    local kpkg_version
    kpkg_version=$(dpkg-deb -f "$(ls "$CACHE/debs/amd64/linux-image-${KVER}"_*.deb 2>/dev/null | head -1)" Version 2>/dev/null || true)
    mkdir -p "$(dirname "$outdir")"
    outdir=$(cd "$(dirname "$outdir")" && pwd)/$(basename "$outdir")

    trap xa_cleanup EXIT
    trap 'exit 130' INT TERM
    WORK=$(mktemp -d "$(work_base)/xa-kdump.XXXXXX")
    local out=$WORK/out t
    mkdir -p "$out"

    t=$SECONDS
    (cd "$REPO" && CGO_ENABLED=0 GOOS=linux GOARCH=amd64 timeout 300 go build -trimpath -ldflags='-s -w' \
        -o "$WORK/kexec-load" ./testdata/kdump/kexec-load)
    python3 "$TESTDATA/guesttool.py" initramfs "$WORK/capture.cpio" \
        --busybox "$BUSYBOX" --init "$HERE/capture-init.sh" \
        --kroot "$KROOT" --kver "$KVER" "${CAPTURE_MODULES[@]}"
    python3 "$TESTDATA/guesttool.py" initramfs "$WORK/initramfs.cpio" \
        --busybox "$BUSYBOX" --init "$HERE/kdump-init.sh" \
        --kroot "$KROOT" --kver "$KVER" "${MODULES[@]}"
    printf '%s\n' "$CAPTURE_APPEND" >"$WORK/capture.cmdline"
    # A second newc archive after the first: the kernel unpacks both.
    python3 "$HERE/kdumptool.py" cpio "$WORK/extra.cpio" \
        "bin/kexec-load=$WORK/kexec-load:755" "kdump/vmlinuz=$vmlinuz" \
        "kdump/capture.cpio=$WORK/capture.cpio" "kdump/cmdline=$WORK/capture.cmdline"
    cat "$WORK/extra.cpio" >>"$WORK/initramfs.cpio"
    rm -f "$WORK/extra.cpio"
    # The capture kernel writes the vmcore to this disk: larger than RAM,
    # sparse until written.
    truncate -s $((MEM_BYTES + (64 << 20))) "$WORK/disk.img"
    log "initramfs images in $((SECONDS - t))s: $(stat -c %s "$WORK/initramfs.cpio") bytes (capture: $(stat -c %s "$WORK/capture.cpio"))"

    # KASLR stays on. init_on_free=1 zeroes freed pages so the vmcore
    # compresses well; panic=1 with -no-reboot makes a panic that does not
    # reach the capture kernel a QEMU exit.
    local append="console=ttyS0 init_on_free=1 quiet panic=1 rdinit=/init crashkernel=$CRASHKERNEL"
    local -a qemu=(qemu-system-x86_64 -accel tcg -smp 1 -cpu qemu64 -m "${MEM_MB}M"
        -display none -monitor none -no-reboot -nodefaults
        -serial "file:$WORK/serial.log"
        -drive "file=$WORK/disk.img,if=virtio,format=raw"
        -kernel "$vmlinuz" -initrd "$WORK/initramfs.cpio" -append "$append")
    log "boot: ${qemu[*]}"
    local t_boot=$SECONDS
    "${qemu[@]}" </dev/null >"$WORK/qemu.out" 2>&1 &
    QEMU_PID=$!

    wait_marker '^@@XA-BEGIN-VERSION@@' "$BOOT_TIMEOUT" "first kernel up"
    local t_up=$SECONDS
    wait_marker '^@@XA-READY@@' "$PRINT_TIMEOUT" "truth printed, crash kernel loaded"
    local t_ready=$SECONDS
    wait_marker '^@@XA-VMCORE-SIZE [0-9]+@@' "$CAPTURE_TIMEOUT" "capture kernel up"
    local t_capture=$SECONDS
    wait_marker '^@@XA-VMCORE-DONE [0-9]+@@' "$COPY_TIMEOUT" "vmcore copied"
    local t_copied=$SECONDS
    wait_exit 30

    local size rc
    size=$(grep -aoE '^@@XA-VMCORE-SIZE [0-9]+@@' "$WORK/serial.log" | head -1 | tr -dc '0-9')
    rc=$(grep -aoE '^@@XA-VMCORE-DONE [0-9]+@@' "$WORK/serial.log" | head -1 | tr -dc '0-9')
    ((rc == 0)) || tail_fail "dd of /proc/vmcore exited $rc"
    ((size > 0 && size < MEM_BYTES + (64 << 20))) || tail_fail "implausible vmcore size $size"
    truncate -s "$size" "$WORK/disk.img"
    mv "$WORK/disk.img" "$WORK/vmcore"
    [[ $(head -c 4 "$WORK/vmcore" | od -An -c | tr -d ' ') == '177ELF' ]] ||
        tail_fail "the disk does not start with an ELF header"
    cp "$WORK/serial.log" "$out/serial.log"

    local argv_json
    argv_json=$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "${qemu[@]}" |
        sed -e "s#$WORK#<work>#g" -e "s#$CACHE#<cache>#g")
    python3 "$HERE/kdumptool.py" truth --serial "$out/serial.log" --outdir "$out" \
        --qemu-argv "$argv_json" --mem-bytes "$MEM_BYTES" --capture-cmdline "$CAPTURE_APPEND" \
        --system-map "${SYSTEM_MAP:-}" --kernel-package-version "$kpkg_version"

    local t_zstd=$SECONDS
    "${ZSTD[@]}" --rm "$WORK/vmcore" -o "$out/vmcore.zst"
    "${ZSTD[@]}" --rm "$out/kallsyms" -o "$out/kallsyms.zst"
    "${ZSTD[@]}" --rm "$out/serial.log" -o "$out/serial.log.zst"
    local t_done=$SECONDS
    python3 "$HERE/kdumptool.py" verify "$out"

    local tmpdest="$outdir.new.$$" old="$outdir.old.$$"
    rm -rf "$tmpdest"
    mv "$out" "$tmpdest"
    [[ -e $outdir ]] && mv "$outdir" "$old"
    mv "$tmpdest" "$outdir"
    rm -rf "$old"
    log "vmcore: $size bytes, $(stat -c %s "$outdir/vmcore.zst") compressed"
    log "timings: prepare $((t_boot - T0))s, boot $((t_up - t_boot))s, print+kexec load $((t_ready - t_up))s," \
        "panic to capture $((t_capture - t_ready))s, copy $((t_copied - t_capture))s," \
        "compress $((t_done - t_zstd))s, total $((SECONDS - T0))s"
    ls -l "$outdir" >&2
}

# `exit` right after main: bash reads scripts lazily, so an edit to this file
# during a run must not be able to run as part of it.
main "$@"
exit
