#!/usr/bin/env bash
# fake-xascript.sh — a self-check of the diske2e harness's xascript mode, NOT
# a test of xascript: it takes xascript's command line (SCRIPT --disk IMG
# --nbd SOCK -- WATCH...), serves IMG with qemu-nbd, and on SIGTERM prints
# the events that the guest's own list (serial.log next to SOCK) calls for,
# in the guest's order, for paths under /root. FAKE_EVENTS=none prints none
# (the run must then fail); FAKE_EVENTS=swap swaps the paper's first two
# lines (it must fail too).
#   XA_DISK_TAP=xascript XASCRIPT_BIN=$PWD/integration/diske2e/testdata/fake-xascript.sh \
#   XA_DISK_SCRIPT=/dev/null go test -tags disk -run TestDiskEvents ./integration/diske2e/
set -euo pipefail
img= sock=
shift # the script
while [[ $# -gt 0 ]]; do
    case $1 in
    --disk) img=$2; shift 2 ;;
    --nbd) sock=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "fake-xascript: unknown flag $1" >&2; exit 2 ;;
    esac
done
umask 077
qemu-nbd -f raw -t -k "$sock" "$img" &
pid=$!
finish() {
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    [[ ${FAKE_EVENTS:-perfect} == none ]] && exit 0
    awk -v swap="${FAKE_EVENTS:-}" '
        { sub(/\r$/, "") }
        function out(s) { if (swap == "swap" && n < 2) { held[n++] = s; if (n == 2) { print held[1]; print held[0] } } else print s }
        /^XA-DID / && ($4 ~ /^\/root\// || $6 ~ /^\/root\//) {
            if ($3 == "RENAME") out("RENAME: " $4 " -> " $6); else out($3 ": " $4) }
        /^XA-DID-RANGE / && $4 ~ /^\/root\// { for (i = $5; i <= $6; i++) out($3 ": " $4 i) }
    ' "$(dirname "$sock")/serial.log"
    exit 0
}
trap finish TERM INT
wait "$pid"
