#!/usr/bin/env bash
# fig7.sh [table RESULTS.tsv] — the paper's Figure 7 (file creation under the disk monitor) and
# sequential write throughput, as a table.
#
# One boot of the disk guest (guest-init.sh, xa.mode=bench) per mode, each on
# a fresh FS image: inside the guest, for each N of XA_FIG7_NS, XA_FIG7_RUNS
# times: N empty files in a fresh folder under /root/fig7 and sync, timed in
# the guest (its monotonic clock, /proc/timer_list); then XA_FIG7_DDRUNS
# times dd XA_FIG7_DDMB MiB with oflag=direct, and sync, timed the same way. The modes take turns in
# XA_FIG7_ROUNDS rounds (default 2; the order turns each round), each boot
# doing its share of the runs.
# Modes (XA_FIG7_MODES):
#   plain        QEMU on the image file itself                      (paper: 1)
#   qemu-nbd     QEMU through qemu-nbd serving the image (the throughput
#                baseline)
#   tap-nowatch  through xascript's NBD server, no watch            (paper: 2)
#   tap-watch    through xascript with a watch on /root/fig7, events printed
#                (to DIR/tap-watch/tap.out)                        (paper: 3)
#   bitmap-watch QEMU on the image file itself, xascript attached over QMP
#                (--qemu --drive: dirty bitmaps, QEMU's NBD export) with a
#                watch on /root/fig7, events printed (issue 11's fourth mode)
# Default: plain and qemu-nbd, and the tap modes when $XASCRIPT_BIN and
# scripts/examples/diskwatch.lua exist. The tap command lines are templates
# ({IMG}, {SOCK} replaced), so another script or option set can be timed:
#   XA_FIG7_NOWATCH  default: $XASCRIPT_BIN testdata/disk/nowatch.lua --disk {IMG} --nbd {SOCK}
#   XA_FIG7_WATCH    default: ... --disk {IMG} --nbd {SOCK} -- -r /root/fig7
#   XA_FIG7_QEMUNBD  default: qemu-nbd -f raw -t -k {SOCK} {IMG}
# Other knobs: XA_FIG7_FS (ext4), XA_FIG7_SIZE (1G), XA_FIG7_TIMEOUT seconds
# per boot (3600), XA_FIG7_INTERVAL (bitmap-watch's --interval, 1s),
# XA_FIG7_BITMAP_FLAGS (more xascript flags for it, e.g. -v), XA_FIG7_BASE_BIN
# (mode bitmap-base: bitmap-watch with this other xascript build, to compare
# two builds in one interleaved run; or a control: fig7-placebo.sh attaches
# nothing, fig7-pollonly.sh polls without a watch), XA_FIG7_OUT (a folder for the serial logs and results.tsv;
# default a temporary one, removed). Needs what `make disk-deps` installs and
# testdata/fetch.sh amd64.
#
# Numbers come from a TCG guest on a shared machine: compare modes of one
# run, not runs of different days. fig7_paired.py reads results.tsv files
# boot by boot: each mode against plain, paired by round, and pooled.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${XA_TESTDATA_CACHE:-$ROOT/testdata/.cache}
RUNS=${XA_FIG7_RUNS:-10}
ROUNDS=${XA_FIG7_ROUNDS:-2}
NS=${XA_FIG7_NS:-100,1000,10000}
DDMB=${XA_FIG7_DDMB:-256}
DDRUNS=${XA_FIG7_DDRUNS:-3}
FS=${XA_FIG7_FS:-ext4}
SIZE=${XA_FIG7_SIZE:-1G}
TIMEOUT=${XA_FIG7_TIMEOUT:-3600}
XASCRIPT_BIN=${XASCRIPT_BIN:-$ROOT/bin/xascript}
SCRIPT=$ROOT/scripts/examples/diskwatch.lua
NOWATCH="$XASCRIPT_BIN $HERE/nowatch.lua --disk {IMG} --nbd {SOCK}"
WATCH="$XASCRIPT_BIN $SCRIPT --disk {IMG} --nbd {SOCK} -- -r /root/fig7"
QEMUNBD="qemu-nbd -f raw -t -k {SOCK} {IMG}"
NOWATCH=${XA_FIG7_NOWATCH:-$NOWATCH}
WATCH=${XA_FIG7_WATCH:-$WATCH}
QEMUNBD=${XA_FIG7_QEMUNBD:-$QEMUNBD}

log() { printf '[fig7] %s\n' "$*" >&2; }
die() { printf '[fig7] ERROR: %s\n' "$*" >&2; exit 1; }

[[ $RUNS =~ ^[0-9]+$ && $RUNS -ge 1 ]] || die "XA_FIG7_RUNS must be a positive number"
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 && $ROUNDS -le $RUNS ]] || die "XA_FIG7_ROUNDS must be 1..XA_FIG7_RUNS"
[[ $NS =~ ^[0-9]+(,[0-9]+)*$ ]] || die "XA_FIG7_NS must be like 100,1000,10000"
[[ $DDMB =~ ^[0-9]+$ ]] || die "XA_FIG7_DDMB must be a number"
[[ $DDRUNS =~ ^[0-9]+$ ]] || die "XA_FIG7_DDRUNS must be a number"

# shellcheck source=../host-lib.sh
source "$ROOT/testdata/host-lib.sh"
TAP_PID=
stop_tap() {
    [[ -n $TAP_PID ]] || return 0
    kill -TERM "$TAP_PID" 2>/dev/null || true
    local i
    for ((i = 0; i < 300; i++)); do
        kill -0 "$TAP_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$TAP_PID" 2>/dev/null; then
        log "tap (pid $TAP_PID) still running 30s after SIGTERM: SIGKILL"
        kill -KILL "$TAP_PID" 2>/dev/null || true
    fi
    wait "$TAP_PID" 2>/dev/null || true
    TAP_PID=
}
cleanup() {
    local rc=$?
    stop_tap
    (exit "$rc")
    xa_cleanup
}
setup() {
    trap cleanup EXIT
    trap 'exit 130' INT TERM

    [[ -f $CACHE/amd64.env ]] || die "no $CACHE/amd64.env: run bash testdata/fetch.sh amd64"
    # shellcheck disable=SC1091
    source "$CACHE/amd64.env"
    VMLINUZ=$KROOT/boot/vmlinuz-$KVER
    [[ -f $VMLINUZ && -f $BUSYBOX ]] || die "fetch.sh output incomplete; rerun testdata/fetch.sh amd64"

    if [[ -n ${XA_FIG7_OUT:-} ]]; then
        OUT=$XA_FIG7_OUT
        mkdir -p "$OUT"
    else
        WORK=$(mktemp -d "${TMPDIR:-/tmp}/xa-fig7.XXXXXX")
        OUT=$WORK
    fi
    python3 "$ROOT/testdata/guesttool.py" initramfs "$OUT/initramfs.cpio" \
        --busybox "$BUSYBOX" --init "$HERE/guest-init.sh" \
        --kroot "$KROOT" --kver "$KVER" virtio_pci virtio_blk 2>/dev/null
}

now() { date +%s.%N; }

# sample QEMU-PID [TAP-PID]: sets SAMPLE_QCPU and SAMPLE_QMAIN (QEMU's CPU
# seconds, all threads and its main thread), and with a tap SAMPLE_CPU and
# SAMPLE_RSS (its CPU seconds and peak RSS), each left alone when its
# process is gone. One awk for all of it, and the same in every mode: the
# sampling loop shares the cores with the guest, and the bitmap modes' loop
# used to start about 5 more processes every 0.5 s than plain's.
CLK_TCK=$(getconf CLK_TCK)
sample() {
    local out a b c d
    out=$(awk -v hz="$CLK_TCK" -v q="$1" -v t="${2:-}" '
        function cpu(f,   l, x) { if ((getline l < f) <= 0) return "-"; close(f); sub(/^.*\) /, "", l); split(l, x, " "); return sprintf("%.2f", (x[12] + x[13]) / hz) }
        function rss(f,   l, x) { while ((getline l < f) > 0) if (l ~ /^VmHWM:/) { split(l, x, " "); close(f); return x[2] / 1024 "_MiB" }; close(f); return "-" }
        BEGIN { print cpu("/proc/" q "/stat"), cpu("/proc/" q "/task/" q "/stat"), (t == "" ? "-" : cpu("/proc/" t "/stat")), (t == "" ? "-" : rss("/proc/" t "/status")) }' 2>/dev/null) || return 0
    read -r a b c d <<<"$out"
    [[ $a == - ]] || SAMPLE_QCPU=$a
    [[ $b == - ]] || SAMPLE_QMAIN=$b
    [[ $c == - ]] || SAMPLE_CPU=$c
    [[ $d == - ]] || SAMPLE_RSS=${d/_/ }
}

# run_mode MODE ROUND RUNS: one boot; appends its rows to $OUT/results.tsv.
run_mode() {
    local mode=$1 round=$2 runs=$3 dir=$OUT/$1-$2 tmpl= drive
    rm -rf "$dir"
    mkdir -m 0700 "$dir"
    local img=$dir/disk.img sock=$dir/nbd.sock
    bash "$HERE/mkimage.sh" "$FS" "$img" "$SIZE"
    case $mode in
    plain) ;;
    qemu-nbd) tmpl=$QEMUNBD ;;
    tap-nowatch) tmpl=$NOWATCH ;;
    tap-watch) tmpl=$WATCH ;;
    bitmap-watch) run_bitmap "$@" "$XASCRIPT_BIN"; return ;;
    bitmap-base)
        [[ -n ${XA_FIG7_BASE_BIN:-} ]] || die "bitmap-base needs XA_FIG7_BASE_BIN"
        run_bitmap "$@" "$XA_FIG7_BASE_BIN"
        return
        ;;
    *) die "unknown mode $mode" ;;
    esac
    if [[ -z $tmpl ]]; then
        drive="file=$img,format=raw,if=virtio"
    else
        local cmd=${tmpl//\{IMG\}/$img}
        cmd=${cmd//\{SOCK\}/$sock}
        log "$mode: tap: $cmd"
        # shellcheck disable=SC2086
        nice -n 10 $cmd >"$dir/tap.out" 2>"$dir/tap.err" </dev/null &
        TAP_PID=$!
        local i
        for ((i = 0; ; i++)); do
            python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])' "$sock" 2>/dev/null && break
            kill -0 "$TAP_PID" 2>/dev/null || { cat "$dir/tap.err" >&2; die "$mode: the tap exited"; }
            ((i < 300)) || die "$mode: the tap does not serve $sock after 30s"
            sleep 0.1
        done
        drive="file=nbd+unix:///?socket=$sock,format=raw,if=virtio"
    fi
    local serial=$dir/serial.log t0 tup=
    t0=$(now)
    nice -n 10 qemu-system-x86_64 -accel tcg -smp 1 -cpu qemu64 -m 256M \
        -display none -monitor none -no-reboot -nodefaults -serial "file:$serial" \
        -kernel "$VMLINUZ" -initrd "$OUT/initramfs.cpio" \
        -append "console=ttyS0 quiet panic=1 no_timer_check rdinit=/init xa.mode=bench xa.fs=$FS xa.runs=$runs xa.ns=$NS xa.ddmb=$DDMB xa.ddruns=$DDRUNS" \
        -drive "$drive" </dev/null >"$dir/qemu.out" 2>&1 &
    QEMU_PID=$!
    local qcpu= qmain= start=$SECONDS
    SAMPLE_QCPU= SAMPLE_QMAIN=
    while kill -0 "$QEMU_PID" 2>/dev/null; do
        if [[ -z $tup ]] && grep -qa '^XA-UP' "$serial" 2>/dev/null; then
            tup=$(now)
            log "$mode: guest up after $(awk -v a="$t0" -v b="$tup" 'BEGIN{printf "%.1f", b-a}')s"
        fi
        sample "$QEMU_PID"
        qcpu=$SAMPLE_QCPU qmain=$SAMPLE_QMAIN
        if ((SECONDS - start > TIMEOUT)); then
            tail -n 20 "$serial" >&2
            die "$mode: guest not done after ${TIMEOUT}s"
        fi
        sleep 0.5
    done
    wait "$QEMU_PID" || true
    QEMU_PID=
    local tend rss=- cpu=
    tend=$(now)
    if [[ -n $TAP_PID ]]; then
        rss=$(awk '/^VmHWM:/ {print $2 / 1024 " MiB"}' "/proc/$TAP_PID/status" 2>/dev/null || echo "?")
        # The tap's CPU time (user + system, all threads) over the whole
        # boot: what the monitor costs the host, whatever the load was.
        cpu=$(awk -v hz="$(getconf CLK_TCK)" '{sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz}' "/proc/$TAP_PID/stat" 2>/dev/null || true)
        log "$mode: tap peak RSS $rss, CPU ${cpu:-?}s"
    fi
    stop_tap
    if grep -a '^XA-FAIL' "$serial" >&2 || ! grep -qa '^XA-DONE' "$serial"; then
        tail -n 20 "$serial" "$dir/qemu.out" >&2
        die "$mode: the guest failed"
    fi
    e2fsck -fn "$img" >"$dir/fsck.out" 2>&1 || { cat "$dir/fsck.out" >&2; die "$mode: e2fsck -fn is not clean"; }
    local guest_up
    guest_up=$(awk '/^XA-UP/ {sub(/\r$/, ""); print $4}' "$serial")
    awk -v m="$mode" -v boot="$(awk -v a="$t0" -v b="$tup" 'BEGIN{printf "%.1f", b-a}')" \
        -v total="$(awk -v a="$t0" -v b="$tend" 'BEGIN{printf "%.1f", b-a}')" -v gup="$guest_up" -v cpu="$cpu" -v qcpu="$qcpu" -v qmain="$qmain" '
        { sub(/\r$/, "") } # the serial console ends lines with CR LF
        /^XA-FIG7 / { print m "\tfig7\t" $2 "\t" $3 "\t" $4 }
        /^XA-DD /   { print m "\tdd\t" $2 "\t1\t" $3 }
        END         { print m "\tboot\t" boot "\t" gup "\t" total; if (cpu != "") print m "\tcpu\t" cpu; if (qcpu != "") print m "\tqemucpu\t" qcpu; if (qmain != "") print m "\tqemumain\t" qmain }' "$serial" >>"$OUT/results.tsv"
    if [[ $mode == tap-watch ]]; then
        log "$mode: $(grep -c '^MKFILE: ' "$dir/tap.out" || true) MKFILE events printed"
    fi
    log "$mode: done in $(awk -v a="$t0" -v b="$tend" 'BEGIN{printf "%.1f", b-a}')s"
    rm -f "$img"
}

# run_bitmap MODE ROUND RUNS BIN: run_mode for bitmap-watch (and bitmap-base:
# the same with another build, BIN). QEMU opens the
# image itself (as plain) with a QMP socket; xascript attaches to the running
# QEMU as soon as the socket is there, before the guest mounts the disk, and
# follows the drive through dirty bitmaps every XA_FIG7_INTERVAL (1s).
run_bitmap() {
    local mode=$1 round=$2 runs=$3 bin=$4 dir=$OUT/$1-$2
    rm -rf "$dir"
    mkdir -m 0700 "$dir"
    local img=$dir/disk.img qmp=$dir/qmp.sock serial=$dir/serial.log t0 tup= i
    bash "$HERE/mkimage.sh" "$FS" "$img" "$SIZE"
    t0=$(now)
    nice -n 10 qemu-system-x86_64 -accel tcg -smp 1 -cpu qemu64 -m 256M \
        -display none -monitor none -no-reboot -nodefaults -serial "file:$serial" \
        -qmp "unix:$qmp,server=on,wait=off" \
        -kernel "$VMLINUZ" -initrd "$OUT/initramfs.cpio" \
        -append "console=ttyS0 quiet panic=1 no_timer_check rdinit=/init xa.mode=bench xa.fs=$FS xa.runs=$runs xa.ns=$NS xa.ddmb=$DDMB xa.ddruns=$DDRUNS" \
        -drive "file=$img,format=raw,if=virtio,id=data" </dev/null >"$dir/qemu.out" 2>&1 &
    QEMU_PID=$!
    for ((i = 0; i < 300; i++)); do
        [[ -S $qmp ]] && break
        sleep 0.1
    done
    log "$mode: tap: $bin $SCRIPT --qemu $qmp --drive data --interval ${XA_FIG7_INTERVAL:-1s} -- -r /root/fig7"
    # shellcheck disable=SC2086 # XA_FIG7_BITMAP_FLAGS: more flags, split on spaces (-v: a line per poll)
    nice -n 10 "$bin" "$SCRIPT" --qemu "$qmp" --drive data --interval "${XA_FIG7_INTERVAL:-1s}" ${XA_FIG7_BITMAP_FLAGS:-} -- -r /root/fig7 \
        >"$dir/tap.out" 2>"$dir/tap.err" </dev/null &
    TAP_PID=$!
    local rss=? cpu= qcpu= qmain= start=$SECONDS
    SAMPLE_QCPU= SAMPLE_QMAIN= SAMPLE_CPU= SAMPLE_RSS=?
    while kill -0 "$QEMU_PID" 2>/dev/null; do
        if [[ -z $tup ]] && grep -qa '^XA-UP' "$serial" 2>/dev/null; then
            tup=$(now)
            log "$mode: guest up after $(awk -v a="$t0" -v b="$tup" 'BEGIN{printf "%.1f", b-a}')s"
            grep -q 'watching drive' "$dir/tap.err" || { cat "$dir/tap.err" >&2; die "$mode: xascript not attached when the guest came up"; }
        fi
        # Sampled while it runs: xascript ends by itself when QEMU exits.
        sample "$QEMU_PID" "$TAP_PID"
        qcpu=$SAMPLE_QCPU qmain=$SAMPLE_QMAIN cpu=$SAMPLE_CPU rss=$SAMPLE_RSS
        if ((SECONDS - start > TIMEOUT)); then
            tail -n 20 "$serial" >&2
            die "$mode: guest not done after ${TIMEOUT}s"
        fi
        sleep 0.5
    done
    wait "$QEMU_PID" || true
    QEMU_PID=
    local tend
    tend=$(now)
    log "$mode: xascript peak RSS $rss, CPU ${cpu:-?}s (QEMU ${qcpu:-?}s; sampled every 0.5s)"
    stop_tap # QEMU is gone: xascript has ended (or ends now) with it
    if grep -a '^XA-FAIL' "$serial" >&2 || ! grep -qa '^XA-DONE' "$serial"; then
        tail -n 20 "$serial" "$dir/qemu.out" >&2
        die "$mode: the guest failed"
    fi
    e2fsck -fn "$img" >"$dir/fsck.out" 2>&1 || { cat "$dir/fsck.out" >&2; die "$mode: e2fsck -fn is not clean"; }
    local guest_up
    guest_up=$(awk '/^XA-UP/ {sub(/\r$/, ""); print $4}' "$serial")
    awk -v m="$mode" -v boot="$(awk -v a="$t0" -v b="$tup" 'BEGIN{printf "%.1f", b-a}')" \
        -v total="$(awk -v a="$t0" -v b="$tend" 'BEGIN{printf "%.1f", b-a}')" -v gup="$guest_up" -v cpu="$cpu" -v qcpu="$qcpu" -v qmain="$qmain" '
        { sub(/\r$/, "") }
        /^XA-FIG7 / { print m "\tfig7\t" $2 "\t" $3 "\t" $4 }
        /^XA-DD /   { print m "\tdd\t" $2 "\t1\t" $3 }
        END         { print m "\tboot\t" boot "\t" gup "\t" total; if (cpu != "") print m "\tcpu\t" cpu; if (qcpu != "") print m "\tqemucpu\t" qcpu; if (qmain != "") print m "\tqemumain\t" qmain }' "$serial" >>"$OUT/results.tsv"
    log "$mode: $(grep -c '^MKFILE: ' "$dir/tap.out" || true) MKFILE events printed"
    log "$mode: done in $(awk -v a="$t0" -v b="$tend" 'BEGIN{printf "%.1f", b-a}')s"
    rm -f "$img"
}

# The table: per mode and N, the runs' mean, median, min, max and standard
# deviation in ms, and the mean and the median against plain's; then dd
# throughput (each run's MiB/s: median, min, max; all bytes over all seconds)
# against qemu-nbd's; then boot times, the tap's CPU time and QEMU's (all
# threads, and its main thread alone: the main loop, which serves QMP and
# the NBD export, apart from the guest's vCPU). On a shared
# machine single runs scatter by 2x or more: read the medians.
table() { # RESULTS.tsv
    echo "Figure 7: create N files in one folder and sync, timed in the guest (ms)"
    awk -F'\t' '
    function seen(m) { if (!(m in seenM)) { seenM[m]; ms[++nm] = m } }
    $2 == "fig7" { k = $1 SUBSEP $3; v[k, ++c[k]] = $5 / 1e6; if (!($3 in seenN)) { seenN[$3]; ns[++nn] = $3 }; seen($1) }
    $2 == "dd"   { k = $1 SUBSEP "dd"; v[k, ++c[k]] = $3 / ($5 / 1e9); ddmib[$1] += $3; ddsec[$1] += $5 / 1e9; seen($1) }
    $2 == "boot" { boot[$1] += $3; gup[$1] += $4; total[$1] += $5; nb[$1]++ }
    $2 == "cpu"  { cpu[$1] += $3; ncpu[$1]++ }
    $2 == "qemucpu" { qcpu[$1] += $3; nqcpu[$1]++ }
    $2 == "qemumain" { qmain[$1] += $3; nqmain[$1]++ }
    function sortv(k, n,   i, j, t) { for (i = 1; i <= n; i++) s[i] = v[k, i]
        for (i = 2; i <= n; i++) { t = s[i]; for (j = i - 1; j >= 1 && s[j] > t; j--) s[j + 1] = s[j]; s[j + 1] = t } }
    function median(k,   n) { n = c[k]; sortv(k, n); return n % 2 ? s[(n + 1) / 2] : (s[n / 2] + s[n / 2 + 1]) / 2 }
    function mean(k,   i, sum) { sum = 0; for (i = 1; i <= c[k]; i++) sum += v[k, i]; return sum / c[k] }
    END {
        printf "%-12s %6s %4s %10s %10s %10s %10s %8s %9s %9s\n", "mode", "N", "runs", "mean", "median", "min", "max", "sd", "mean/pl", "median/pl"
        for (a = 1; a <= nn; a++) for (b = 1; b <= nm; b++) {
            k = ms[b] SUBSEP ns[a]; n = c[k]; if (!n) continue
            mu = mean(k); sq = 0; for (i = 1; i <= n; i++) sq += (v[k, i] - mu) ^ 2; sd = n > 1 ? sqrt(sq / (n - 1)) : 0
            med = median(k); lo = s[1]; hi = s[n]
            p = "plain" SUBSEP ns[a]; rel = "-"; relm = "-"
            if (c[p]) { rel = sprintf("%.3fx", mu / mean(p)); relm = sprintf("%.3fx", med / median(p)) }
            printf "%-12s %6d %4d %10.1f %10.1f %10.1f %10.1f %8.1f %9s %9s\n", ms[b], ns[a], n, mu, med, lo, hi, sd, rel, relm
        }
        print ""
        print "Sequential write: dd oflag=direct, then sync (MiB/s per run; all: all MiB over all seconds)"
        printf "%-12s %5s %10s %10s %10s %10s %10s %10s\n", "mode", "runs", "median", "min", "max", "all", "median/qn", "all/qn"
        q = "qemu-nbd" SUBSEP "dd"
        for (b = 1; b <= nm; b++) { k = ms[b] SUBSEP "dd"; n = c[k]; if (!n) continue
            med = median(k); lo = s[1]; hi = s[n]; all = ddmib[ms[b]] / ddsec[ms[b]]; rel = "-"; rela = "-"
            if (c[q]) { rel = sprintf("%.3fx", med / median(q)); rela = sprintf("%.3fx", all / (ddmib["qemu-nbd"] / ddsec["qemu-nbd"])) }
            printf "%-12s %5d %10.1f %10.1f %10.1f %10.1f %10s %10s\n", ms[b], n, med, lo, hi, all, rel, rela
        }
        print ""
        print "Boot (mean of the boots): host seconds from QEMU start to the disk mounted (guest uptime then), whole run; the tap'"'"'s CPU seconds per boot; QEMU'"'"'s"
        for (b = 1; b <= nm; b++) if (ms[b] in nb) { n = nb[ms[b]]
            t = (ms[b] in ncpu) ? sprintf("%8.2fs", cpu[ms[b]] / ncpu[ms[b]]) : "       -"
            qt = (ms[b] in nqcpu) ? sprintf("%8.2fs", qcpu[ms[b]] / nqcpu[ms[b]]) : "       -"
            if (ms[b] in nqmain) qt = qt sprintf(" (main thread %5.2fs)", qmain[ms[b]] / nqmain[ms[b]])
            printf "%-12s %2d boots %6.1fs (%5.2fs) %8.1fs %s %s\n", ms[b], n, boot[ms[b]] / n, gup[ms[b]] / n, total[ms[b]] / n, t, qt }
    }' "$1"
}

# pick_modes: XA_FIG7_MODES, or what can run here.
pick_modes() {
    MODES=${XA_FIG7_MODES:-}
    [[ -n $MODES ]] && return 0
    MODES="plain qemu-nbd"
    if [[ -x $XASCRIPT_BIN && -f $SCRIPT ]]; then
        MODES+=" tap-nowatch tap-watch"
        MODES+=" bitmap-watch"
    else
        log "no $XASCRIPT_BIN or $SCRIPT: the tap modes are left out"
    fi
}

main() {
    if [[ ${1:-} == table ]]; then
        [[ $# -eq 2 ]] || die "usage: $0 table RESULTS.tsv"
        table "$2"
        return
    fi
    [[ $# -eq 0 ]] || die "usage: $0 [table RESULTS.tsv]"
    pick_modes
    log "modes: $MODES, in $ROUNDS rounds; $FS, $RUNS runs of N = $NS, dd $DDMB MiB"
    setup
    : >"$OUT/results.tsv"
    # The modes take turns, ROUNDS times, each boot doing its share of the
    # runs: the load of a shared machine drifts, and a mode measured only in
    # a busy quarter hour would carry it. The order turns by one mode each
    # round, so that no mode always runs first or after the same one.
    local m r share i
    local -a order
    read -r -a order <<<"$MODES"
    for ((r = 1; r <= ROUNDS; r++)); do
        share=$(((RUNS * r + ROUNDS - 1) / ROUNDS - (RUNS * (r - 1) + ROUNDS - 1) / ROUNDS))
        for ((i = 0; i < ${#order[@]}; i++)); do
            m=${order[(i + r - 1) % ${#order[@]}]}
            run_mode "$m" "$r" "$share"
        done
    done
    table "$OUT/results.tsv"
    log "raw results: $OUT/results.tsv${WORK:+ (removed at exit; set XA_FIG7_OUT to keep)}"
}

# `exit` right after main: bash reads scripts lazily, so an edit to this file
# during a (long) run must not be able to run as part of it.
main "$@"
exit
