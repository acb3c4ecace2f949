#!/usr/bin/env bash
# xen-e2e.sh — real Xen 4.17 under QEMU TCG, a busybox dom0 and two domUs (PV,
# PVH), with xascript run inside dom0 against the domUs.
#
#   xen-e2e.sh images        fetch the packages (testdata/fetch.sh amd64, xen)
#                            and build the cached images; nothing boots
#   xen-e2e.sh run OUTDIR    images, then the per-run part of dom0's initramfs
#                            (xascript, scripts/, the dom0 test scripts), boot,
#                            wait for QEMU to exit; OUTDIR/serial.log is Xen's
#                            console with dom0's and the domUs' output in it
#
# The cached images (under $CACHE/xen-images, rebuilt when an input changes):
#   xen             the hypervisor, uncompressed (QEMU's multiboot loader needs that)
#   dom0-base.cpio  busybox, dom0-init.sh as /init, xl/xenstored/xenconsoled and
#                   their libraries, dom0's Xen modules, the domU kernel and initramfs
#   domu.cpio       the domUs' initramfs: busybox, domu-init.sh, a few modules
# Per run, OUTDIR gets overlay.cpio (/xa/xascript, /xa/scripts, /xa/run.sh =
# dom0-run.sh, /xa/tests.sh, /xa/config.sh) and dom0.cpio = base + overlay
# (the kernel unpacks concatenated archives in order), serial.log, qemu.out,
# qemu.pid, timings.txt.
#
# Knobs: XA_XASCRIPT (a static xascript binary to use; default: build one with
# CGO_ENABLED=0 go build), XA_XEN_TESTS (the file that becomes /xa/tests.sh;
# default dom0-tests.sh here), XA_XEN_TIMEOUT (seconds for the whole boot,
# default 600; QEMU is killed by its PID after that), XA_XEN_SMP (QEMU CPUs,
# default 1), XA_XEN_CPU (QEMU -cpu, default max,-smap,-avx,-avx2,-xsave), XA_DOMUS ("name:type ...", default "xa-pv:pv xa-pvh:pvh"),
# XA_DOMU_TIMEOUT (seconds for a domU to print @@XA-READY@@, default 150),
# XA_CMD_TIMEOUT (seconds per dom0 test command, default 120),
# XA_XEN_EXTRA ("SRC:DEST ..." more host files for dom0, e.g. a debugging tool
# or a dump: /tmp/x.elf:xa/x.elf),
# XA_XEN_MULTI_GONE (0 leaves out multi-one-gone, a domU destroyed under a
# multi-guest monitor: it fails now and then, see testdata/xen/README.md),
# XA_XEN_DISK (0 leaves out the disk test, dom0-disk.sh), XA_DISK_BENCH_RUNS
# (its Figure 7 runs per N and mode, default 3; 0 skips the benchmark),
# XA_DISK_BENCH_FAULT (MODE:SIGNAL, e.g. tap:KILL or watch:STOP: send SIGNAL
# to the xascript serving that benchmark mode once the domU timed its first
# run, to show that a monitor that dies or hangs cannot sink the run),
# XA_TESTDATA_CACHE (the package cache, default testdata/.cache).
#
# Exit status: 0 when dom0 ran to @@XA-DOM0-DONE@@ and QEMU exited by itself;
# 1 otherwise (the serial log says why). Whether xascript got things right
# is for integration/xen_e2e_test.go to judge.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
TESTDATA=$(cd "$HERE/.." && pwd)
ROOT=$(cd "$TESTDATA/.." && pwd)
CACHE=${XA_TESTDATA_CACHE:-$TESTDATA/.cache}
IMAGES=$CACHE/xen-images
TIMEOUT=${XA_XEN_TIMEOUT:-600}
SMP=${XA_XEN_SMP:-1}
# max without SMAP (dom0 crashes with it), without AVX and without XSAVE.
# With XSAVE, processes in dom0 died of corrupted registers now and then
# (Go runtime crashes in 1 of 2 runs, busybox segfaults); without it Xen
# saves vCPU state with FXSAVE and none was seen (testdata/xen/README.md).
CPU=${XA_XEN_CPU:-max,-smap,-avx,-avx2,-xsave}
DOMU_MODULES=(crc7 crc-itu-t dummy ifb nlmon veth tun loop isofs)
# dom0's block drivers for the disk test, loaded by dom0-disk.sh (not at boot).
DISK_MODULES=(nbd xen-blkback loop)
XEN_CMDLINE="console=com1 com1=115200,8n1 dom0_mem=512M,max:512M bootscrub=false dom0_max_vcpus=1 noreboot serial_tx_buffer=256K guest_loglvl=all"
DOM0_CMDLINE="console=hvc0 earlyprintk=xen loglevel=4"

log() { printf '[xen-e2e] %s\n' "$*" >&2; }
die() { printf '[xen-e2e] ERROR: %s\n' "$*" >&2; exit 1; }
usage() { echo "usage: $0 images | run OUTDIR" >&2; exit 2; }

envs() {
    [[ -f $CACHE/amd64.env ]] || "$TESTDATA/fetch.sh" amd64
    [[ -f $CACHE/xen.env ]] || "$TESTDATA/fetch.sh" xen
    # Both define BUSYBOX (the same package); the domU kernel is the cloud one.
    # shellcheck disable=SC1091
    source "$CACHE/amd64.env"
    DOMU_KVER=$KVER DOMU_KROOT=$KROOT
    # shellcheck disable=SC1091
    source "$CACHE/xen.env"
    # A cache from before the disk test lacks xenstore-utils and dom0's block drivers.
    if [[ -z ${XENSTORE_UTILS:-} || ! -f $DOM0_KROOT/.done-blk ]]; then
        "$TESTDATA/fetch.sh" xen
        # shellcheck disable=SC1091
        source "$CACHE/xen.env"
    fi
    [[ -f $XEN_GZ && -f $BUSYBOX && -f $DOMU_KROOT/boot/vmlinuz-$DOMU_KVER &&
        -f $DOM0_KROOT/boot/vmlinuz-$DOM0_KVER && -f $XENSTORE_UTILS/usr/bin/xenstore ]] ||
        die "fetched files missing; rerun testdata/fetch.sh amd64 and testdata/fetch.sh xen"
}

# images: build the cached images unless their inputs are unchanged.
images() {
    envs
    mkdir -p "$IMAGES"
    local key
    key=$(cat "$CACHE/amd64.env" "$CACHE/xen.env" "$HERE/dom0-init.sh" "$HERE/domu-init.sh" "$TESTDATA/guest-lib.sh" \
        "$HERE/xentool.py" "$TESTDATA/guesttool.py" "$HERE/xen-e2e.sh" \
        "$HERE/domu-disk-init.sh" "$HERE/vbd-hotplug.sh" | sha256sum | cut -c1-16)
    if [[ -f $IMAGES/key && $(<"$IMAGES/key") == "$key" ]]; then
        return 0
    fi
    local t0=$SECONDS
    rm -f "$IMAGES/key"
    log "build images in $IMAGES"
    zcat "$XEN_GZ" >"$IMAGES/xen.tmp" && mv "$IMAGES/xen.tmp" "$IMAGES/xen"
    cp "$DOM0_KROOT/boot/vmlinuz-$DOM0_KVER" "$IMAGES/dom0-vmlinuz"
    python3 "$TESTDATA/guesttool.py" initramfs "$IMAGES/domu.cpio" \
        --busybox "$BUSYBOX" --init "$HERE/domu-init.sh" \
        --kroot "$DOMU_KROOT" --kver "$DOMU_KVER" "${DOMU_MODULES[@]}"
    disk_images
    local -a libroots=()
    local r
    for r in $XEN_LIBROOTS; do libroots+=(--libroot "$r"); done
    python3 "$HERE/xentool.py" dom0 "$IMAGES/dom0-base.cpio" \
        --busybox "$BUSYBOX" --init "$HERE/dom0-init.sh" \
        --xen-utils "$XEN_UTILS" "${libroots[@]}" \
        --kroot "$DOM0_KROOT" --kver "$DOM0_KVER" \
        --domu-kernel "$DOMU_KROOT/boot/vmlinuz-$DOMU_KVER" --domu-initramfs "$IMAGES/domu.cpio" \
        --xenstore-utils "$XENSTORE_UTILS" "${DISK_MODULES[@]/#/--disk-module=}" \
        --file "$IMAGES/domu-disk.cpio:xa-disk/initramfs.cpio" --file "$IMAGES/disk.img:xa-disk/disk.img" \
        --file "$HERE/vbd-hotplug.sh:etc/xen/scripts/block"
    echo "$key" >"$IMAGES/key"
    log "images built in $((SECONDS - t0))s"
}

# disk_images: for the disk test (dom0-disk.sh), the domU's initramfs
# (xen-blkfront; the cloud kernel has ext4 built in) and the ext4 image it
# mounts, holding /root/bar for the paper's `rm bar`. Files are replaced,
# never rewritten in place (a cache may be hard-linked to another).
disk_images() {
    command -v mkfs.ext4 >/dev/null || die "mkfs.ext4 not found: install e2fsprogs (make disk-deps)"
    rm -f "$IMAGES/domu-disk.cpio" "$IMAGES/disk.img"
    python3 "$TESTDATA/guesttool.py" initramfs "$IMAGES/domu-disk.cpio" \
        --busybox "$BUSYBOX" --init "$HERE/domu-disk-init.sh" \
        --kroot "$DOMU_KROOT" --kver "$DOMU_KVER" xen-blkfront
    local tree
    tree=$(mktemp -d)
    mkdir -p "$tree/root"
    echo bar >"$tree/root/bar"
    # 16384 inodes: Figure 7 makes 1100 files per run, 3 modes x
    # XA_DISK_BENCH_RUNS (3: 9900 files; 8192 inodes ran out).
    mkfs.ext4 -q -F -b 4096 -N 16384 -d "$tree" "$IMAGES/disk.img" 32M
    rm -rf "$tree"
}

# marks: first appearance of each milestone in the serial log, with the
# seconds since QEMU started.
MARKS=("Xen version:xen-start" "@@XA-T dom0-init:dom0-init" "@@XA-T dom0-xen-up:dom0-xen-up")
declare -A SEEN=()
watch_marks() { # SERIAL ELAPSED TIMINGS
    local m pat name
    for m in "${MARKS[@]}"; do
        pat=${m%:*} name=${m##*:}
        [[ -n ${SEEN[$name]:-} ]] && continue
        if grep -qaF -- "$pat" "$1" 2>/dev/null; then
            SEEN[$name]=$2
            log "$2s $name"
            echo "$name $2" >>"$3"
        fi
    done
}

run() {
    local out=$1
    images
    mkdir -p "$out"
    out=$(cd "$out" && pwd)
    [[ $out != *,* && $IMAGES != *,* ]] || die "paths with commas break QEMU's multiboot -initrd list"
    local bin=${XA_XASCRIPT:-}
    if [[ -z $bin ]]; then
        bin=$out/xascript
        log "go build ./cmd/xascript (static)"
        (cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -o "$bin" ./cmd/xascript)
    fi
    [[ -x $bin ]] || die "no xascript binary at $bin"
    local tests=${XA_XEN_TESTS:-$HERE/dom0-tests.sh}
    [[ -f $tests ]] || die "no test script $tests"
    {
        echo "XA_DOMUS='${XA_DOMUS:-xa-pv:pv xa-pvh:pvh}'"
        echo "XA_DOMU_TIMEOUT=${XA_DOMU_TIMEOUT:-150}"
        echo "XA_CMD_TIMEOUT=${XA_CMD_TIMEOUT:-120}"
        echo "XA_DISK_BENCH_RUNS=${XA_DISK_BENCH_RUNS:-3}"
        echo "XA_XEN_MULTI_GONE=${XA_XEN_MULTI_GONE:-1}"
        echo "XA_DISK_BENCH_FAULT='${XA_DISK_BENCH_FAULT:-}'"
        # When QEMU will be killed at the latest (host epoch seconds):
        # written before it starts, so dom0 reckons a little early.
        echo "XA_XEN_TIMEOUT=$TIMEOUT"
        echo "XA_XEN_END=$(($(date +%s) + TIMEOUT))"
    } >"$out/config.sh"
    local -a extra=()
    local spec
    for spec in ${XA_XEN_EXTRA:-}; do extra+=(--file "$spec"); done
    python3 "$HERE/xentool.py" overlay "$out/overlay.cpio" \
        --file "$bin:xa/xascript" --file "$HERE/dom0-run.sh:xa/run.sh" \
        --file "$tests:xa/tests.sh" --file "$out/config.sh:xa/config.sh" \
        $([[ ${XA_XEN_DISK:-1} == 0 ]] || echo "--file $HERE/dom0-disk.sh:xa/disk.sh") \
        --tree "$ROOT/scripts:xa/scripts" "${extra[@]}"
    cat "$IMAGES/dom0-base.cpio" "$out/overlay.cpio" >"$out/dom0.cpio"
    rm -f "$out/serial.log" "$out/qemu.out" "$out/timings.txt"
    local name
    for name in ${XA_DOMUS:-xa-pv:pv xa-pvh:pvh}; do
        name=${name%%:*}
        MARKS+=("@@XA-T ready-$name:ready-$name" "@@XA-T tested-$name:tested-$name")
    done
    [[ ${XA_XEN_DISK:-1} == 0 ]] || MARKS+=("@@XA-T disk-nbd-up:disk-nbd-up" "@@XA-T disk-checked:disk-checked"
        "@@XA-T disk-bench-done:disk-bench-done")
    MARKS+=("@@XA-DOM0-DONE@@:dom0-done")

    # coreutils timeout is QEMU's parent: it bounds QEMU even if this script
    # is killed, and passes a TERM sent to its PID on to QEMU.
    local -a qemu=(timeout -k 5 $((TIMEOUT + 30)) qemu-system-x86_64
        -accel tcg -M pc -cpu "$CPU" -smp "$SMP" -m 1536
        -display none -monitor none -nodefaults -no-reboot
        -serial "file:$out/serial.log"
        -kernel "$IMAGES/xen" -append "$XEN_CMDLINE"
        -initrd "$IMAGES/dom0-vmlinuz $DOM0_CMDLINE,$out/dom0.cpio")
    log "boot: ${qemu[*]}"
    "${qemu[@]}" </dev/null >"$out/qemu.out" 2>&1 &
    local pid=$! t0=$SECONDS rc=0
    echo "$pid" >"$out/qemu.pid"
    # shellcheck disable=SC2064
    trap "kill $pid 2>/dev/null || true" EXIT
    trap 'exit 130' INT TERM
    while kill -0 "$pid" 2>/dev/null; do
        watch_marks "$out/serial.log" $((SECONDS - t0)) "$out/timings.txt"
        if ((SECONDS - t0 > TIMEOUT)); then
            log "timeout after ${TIMEOUT}s: killing QEMU (pid $pid)"
            kill "$pid" 2>/dev/null || true
            rc=1
            break
        fi
        if grep -qaE '\(XEN\) Panic on CPU|Hardware Dom0 crashed' "$out/serial.log" 2>/dev/null; then
            log "Xen or dom0 crashed: killing QEMU (pid $pid)"
            sleep 1
            kill "$pid" 2>/dev/null || true
            rc=1
            break
        fi
        sleep 0.5
    done
    wait "$pid" 2>/dev/null || true
    trap - EXIT
    watch_marks "$out/serial.log" $((SECONDS - t0)) "$out/timings.txt"
    echo "total $((SECONDS - t0))" >>"$out/timings.txt"
    if [[ -z ${SEEN[dom0-done]:-} ]]; then
        tail -n 40 "$out/serial.log" >&2 || true
        [[ -s $out/qemu.out ]] && cat "$out/qemu.out" >&2
        rc=1
    fi
    log "QEMU ran $((SECONDS - t0))s; serial log: $out/serial.log"
    return $rc
}

case ${1:-} in
images) [[ $# -eq 1 ]] || usage; images ;;
run) [[ $# -eq 2 ]] || usage; run "$2" ;;
*) usage ;;
esac
