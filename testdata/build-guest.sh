#!/usr/bin/env bash
# build-guest.sh VARIANT [OUTDIR] — boot one test guest under QEMU TCG and
# capture its memory together with the ground truth the guest printed.
#
# Variants:
#   x86_64-4level   Debian cloud 6.1 kernel, -cpu qemu64, 128 MiB (IA-32e 4-level)
#   x86_64-5level   same kernel, -cpu max: the kernel turns on LA57 (5-level)
#   x86_64-highmem  same kernel, -cpu qemu64,+pdpe1gb, 4608 MiB: RAM above the PCI
#                   hole, direct map in 1 GiB pages
#   i386-pae        Debian 686-pae 6.1 kernel, qemu-system-i386, 256 MiB (PAE)
#   i386-legacy     Debian 686 (non-PAE) 6.1 kernel, qemu-system-i386, 128 MiB:
#                   legacy 32-bit paging, lowmem mapped with 4 MiB (PSE) pages
#   x86_64-6.12     Debian cloud 6.12 kernel (bookworm-security backport),
#                   -cpu qemu64, 128 MiB: a second kernel series (zstd
#                   bzImage payload, .ko.xz modules, newer struct layouts)
#
# Outputs (OUTDIR, default testdata/images/VARIANT), written to a temporary
# directory first and moved into place only when complete:
#   mem.elf.zst  mem.raw.zst (not highmem)  kallsyms.zst  truth.json
#   serial.log.zst  registers.txt
# and, shared by the variants of one kernel, testdata/kernels/<release>/.
#
# Needs: fetch.sh run first (it is run here if its summary is missing),
# qemu-system-x86 (both qemu-system-x86_64 and -i386), zstd, python3.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${XA_TESTDATA_CACHE:-$HERE/.cache}
BOOT_TIMEOUT=${XA_BOOT_TIMEOUT:-}   # seconds until the guest's first output; per-variant default
PRINT_TIMEOUT=${XA_PRINT_TIMEOUT:-300} # then seconds until @@XA-READY@@
# XA_KEEP_WORK=1 keeps the scratch dir (serial log, initramfs) of a failed build.
IMAGES=${XA_IMAGES_DIR:-$HERE/images}      # OUTDIR default: $IMAGES/VARIANT
KERNELS=${XA_KERNELS_DIR:-$HERE/kernels}   # per-kernel files: $KERNELS/<release>
# XA_ZSTD_LEVEL trades size for time: 19 for committed images, lower for CI runs
# that only test what they build.
ZSTD=(zstd -q "-${XA_ZSTD_LEVEL:-19}" -T0 --long=27 -f)
MAX_FILE=$((15 * 1024 * 1024))

# The modules to load (testdata/guest-modules.txt, shared with the kdump guest).
mapfile -t MODULES < <(grep -v '^#' "$HERE/guest-modules.txt" | tr -s ' ' '\n' | grep .)

log() { printf '[build-guest %s] %s\n' "${VARIANT:-?}" "$*" >&2; }
die() { printf '[build-guest %s] ERROR: %s\n' "${VARIANT:-?}" "$*" >&2; exit 1; }

usage() {
    echo "usage: $0 x86_64-4level|x86_64-5level|x86_64-highmem|i386-pae|i386-legacy|x86_64-6.12 [OUTDIR]" >&2
    exit 2
}

# configure VARIANT: set the QEMU binary, CPU, memory, arch, expectations and
# FETCH, the fetch.sh target (and $CACHE/FETCH.env) that names the kernel.
configure() {
    FETCH= APPEND_EXTRA=
    case $1 in
    x86_64-4level) ARCH=x86_64 CPU=qemu64 MEM_MB=128 PAGING=4-level RAW=1 ;;
    x86_64-5level) ARCH=x86_64 CPU=max MEM_MB=128 PAGING=5-level RAW=1 ;;
    # PDPE1GB lets the kernel map whole RAM gigabytes of its direct map with
    # 1 GiB pages ([1G,2G) and [4G,5G) here). Making module memory read-only
    # also changes its alias in the direct map and splits such a page (the
    # modules land above 4 GiB); rodata=off keeps the kernel from doing so.
    x86_64-highmem) ARCH=x86_64 CPU=qemu64,+pdpe1gb MEM_MB=4608 PAGING=4-level RAW=0
        APPEND_EXTRA=rodata=off ;;
    x86_64-6.12) ARCH=x86_64 CPU=qemu64 MEM_MB=128 PAGING=4-level RAW=1 FETCH=amd64-6.12 ;;
    # qemu32 lacks nothing the 686-pae kernel needs except PAE itself (and NX,
    # which PAE page tables can then use).
    i386-pae) ARCH=i386 CPU=qemu32,+pae,+nx MEM_MB=256 PAGING=pae RAW=1 ;;
    # The 686 flavour is built without PAE: two-level tables, and PSE (which
    # qemu32 has) lets it map lowmem with 4 MiB pages.
    i386-legacy) ARCH=i386 CPU=qemu32 MEM_MB=128 PAGING=32-bit RAW=1 FETCH=i386-686 ;;
    *) usage ;;
    esac
    if [[ $ARCH == x86_64 ]]; then
        QEMU=qemu-system-x86_64 DEBARCH=amd64
        : "${BOOT_TIMEOUT:=120}"
    else
        QEMU=qemu-system-i386 DEBARCH=i386
        : "${BOOT_TIMEOUT:=180}"
    fi
    : "${FETCH:=$DEBARCH}"
    MEM_BYTES=$((MEM_MB * 1024 * 1024))
}

# load_env: the kernel/busybox paths fetch.sh found for this variant's kernel.
load_env() {
    [[ -f $CACHE/$FETCH.env ]] || "$HERE/fetch.sh" "$FETCH"
    # shellcheck disable=SC1090
    source "$CACHE/$FETCH.env"
    VMLINUZ=$KROOT/boot/vmlinuz-$KVER
    KCONFIG=$KROOT/boot/config-$KVER
    [[ -f $VMLINUZ && -f $BUSYBOX ]] || die "fetch.sh output incomplete; rerun testdata/fetch.sh $FETCH"
    KPKG_VERSION=$(dpkg-deb -f "$(ls "$CACHE/debs/$DEBARCH/linux-image-${KVER}"_*.deb | head -1)" Version 2>/dev/null || true)
}

# shellcheck source=/dev/null
source "$HERE/host-lib.sh"

# wait_ready: poll the serial log for the guest's first marker (it is up)
# within BOOT_TIMEOUT, then for READY within PRINT_TIMEOUT more (printing the
# ~6 MB of /proc/kallsyms through the emulated UART takes ~40 s); fail if QEMU
# dies on the way.
wait_ready() {
    local serial=$1 start=$SECONDS marker='^@@XA-BEGIN-VERSION@@' limit=$BOOT_TIMEOUT what=boot
    while :; do
        if grep -qa "$marker" "$serial" 2>/dev/null; then
            [[ $what == print ]] && break
            log "guest up after $((SECONDS - start))s"
            marker='^@@XA-READY@@' limit=$((SECONDS - start + PRINT_TIMEOUT)) what=print
            continue
        fi
        if ! kill -0 "$QEMU_PID" 2>/dev/null; then
            QEMU_PID=
            log "QEMU exited before the guest was ready; its output and the serial log tail:"
            cat "$WORK/qemu.out" >&2 || true
            tail -n 40 "$serial" >&2 || true
            die "guest did not come up"
        fi
        if ((SECONDS - start > limit)); then
            log "no ${marker#^} after $((SECONDS - start))s; serial log tail:"
            tail -c 3000 "$serial" >&2 || true
            die "guest $what timed out"
        fi
        sleep 0.5
    done
    log "guest ready after $((SECONDS - start))s"
}

# wait_exit SECS: wait for QEMU to exit after `quit`, killing it if it won't.
wait_exit() {
    local i
    for ((i = 0; i < $1 * 10; i++)); do
        kill -0 "$QEMU_PID" 2>/dev/null || { wait "$QEMU_PID" || true; QEMU_PID=; return 0; }
        sleep 0.1
    done
    die "QEMU (pid $QEMU_PID) did not exit after quit"
}

# work_base: the scratch dir's parent, with room for the cores (the highmem
# guest's is 4.5 GiB before compression) and 1 GiB more.
work_base() { xa_work_base $((MEM_BYTES * (1 + RAW) + (1 << 30))); }

compress() { # FILE: FILE -> FILE.zst, removing FILE
    "${ZSTD[@]}" --rm "$1" -o "$1.zst"
}

check_size() {
    local f size
    for f in "$@"; do
        size=$(stat -c %s "$f")
        ((size <= MAX_FILE)) || log "WARNING: $f is $size bytes (> 15 MiB)"
    done
}

# kernel_files DIR: the per-kernel files shared by the variants (written
# once; a later build of the same kernel leaves them alone).
kernel_files() {
    local dir=$KERNELS/$KVER tmp
    [[ -f $dir/.complete ]] && return 0
    tmp=$(mktemp -d "$KERNELS/.tmp.XXXXXX")
    cp "$KCONFIG" "$tmp/config"
    if [[ $ARCH == x86_64 ]]; then
        # As shipped: a bzImage (6.1: LZ4 payload, 6.12: zstd) whose
        # vmlinux carries .BTF.
        cp "$VMLINUZ" "$tmp/vmlinuz"
        [[ -z $SYSTEM_MAP ]] || "${ZSTD[@]}" "$SYSTEM_MAP" -o "$tmp/System.map.zst"
    else
        "${ZSTD[@]}" "$SYSTEM_MAP" -o "$tmp/System.map.zst"
        "${ZSTD[@]}" "$VMLINUX_BTF" -o "$tmp/vmlinux.btf.zst"
    fi
    touch "$tmp/.complete"
    chmod 0755 "$tmp" && chmod 0644 "$tmp"/*   # mktemp makes 0700; pahole 0640
    check_size "$tmp"/*
    rm -rf "$dir"
    mv "$tmp" "$dir"
    log "kernel files in $dir"
}

main() {
    [[ $# -ge 1 && $# -le 2 ]] || usage
    VARIANT=$1
    configure "$VARIANT"
    local outdir=${2:-$IMAGES/$VARIANT}
    load_env
    command -v "$QEMU" >/dev/null || die "$QEMU not found: make testdata-deps installs it"
    mkdir -p "$KERNELS" "$(dirname "$outdir")"

    trap xa_cleanup EXIT
    trap 'exit 130' INT TERM
    WORK=$(mktemp -d "$(work_base)/xa-guest-$VARIANT.XXXXXX")
    local out=$WORK/out
    mkdir -p "$out"

    python3 "$HERE/guesttool.py" initramfs "$WORK/initramfs.cpio" \
        --busybox "$BUSYBOX" --init "$HERE/guest-init.sh" \
        --kroot "$KROOT" --kver "$KVER" "${MODULES[@]}"

    # KASLR stays on (no nokaslr).  init_on_free=1 zeroes freed pages so the
    # images compress well; panic=1 with -no-reboot turns a panic into a
    # QEMU exit that wait_ready notices at once.
    local append="console=ttyS0 init_on_free=1 quiet panic=1 rdinit=/init${APPEND_EXTRA:+ $APPEND_EXTRA}"
    local -a qemu=("$QEMU" -accel tcg -smp 1 -cpu "$CPU" -m "${MEM_MB}M"
        -display none -monitor none -no-reboot -nodefaults
        -serial "file:$WORK/serial.log" -qmp "unix:$WORK/qmp.sock,server,nowait"
        -kernel "$VMLINUZ" -initrd "$WORK/initramfs.cpio" -append "$append")

    local t0=$SECONDS
    log "boot: ${qemu[*]}"
    "${qemu[@]}" </dev/null >"$WORK/qemu.out" 2>&1 &
    QEMU_PID=$!
    wait_ready "$WORK/serial.log"

    local raw_size=0
    ((RAW)) && raw_size=$MEM_BYTES
    python3 "$HERE/guesttool.py" qmp "$WORK/qmp.sock" "$out" --raw-size "$raw_size"
    wait_exit 30
    cp "$WORK/serial.log" "$out/serial.log"

    # The argv as recorded: temporary and cache paths made stable.
    local argv_json
    argv_json=$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "${qemu[@]}" |
        sed -e "s#$WORK#<work>#g" -e "s#$CACHE#<cache>#g")
    local -a truth_args=(--serial "$out/serial.log" --registers "$out/registers.txt"
        --outdir "$out" --variant "$VARIANT" --arch "$ARCH" --qemu-argv "$argv_json"
        --mem-bytes "$MEM_BYTES" --system-map "$SYSTEM_MAP" --expect-paging "$PAGING"
        --kernel-package-version "$KPKG_VERSION")
    ((RAW)) && truth_args+=(--raw)
    python3 "$HERE/guesttool.py" truth "${truth_args[@]}"

    # QEMU creates the core file mode 0400.
    chmod 0644 "$out"/*
    log "compress"
    local f
    for f in mem.elf mem.raw kallsyms serial.log; do
        [[ -f $out/$f ]] && compress "$out/$f"
    done
    check_size "$out"/*
    kernel_files

    # Swap the finished directory in: readers see the old set or the new one.
    local tmpdest="$outdir.new.$$" old="$outdir.old.$$"
    rm -rf "$tmpdest"
    mv "$out" "$tmpdest"
    [[ -e $outdir ]] && mv "$outdir" "$old"
    mv "$tmpdest" "$outdir"
    rm -rf "$old"
    log "done in $((SECONDS - t0))s: $(du -sh "$outdir" | cut -f1) in $outdir"
    ls -l "$outdir" >&2
    python3 "$HERE/guesttool.py" verify "$outdir"
}

# `exit` right after main: bash reads scripts lazily, so an edit to this file
# during a (long) build must not be able to run as part of it.
main "$@"
exit
