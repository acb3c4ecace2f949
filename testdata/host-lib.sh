# host-lib.sh — shared by the host scripts that boot one QEMU guest in a
# scratch directory (build-guest.sh, kdump/build-kdump.sh), sourced after
# they define log(). They set QEMU_PID when QEMU starts and WORK to the
# scratch directory, and install `trap xa_cleanup EXIT`.

QEMU_PID=
WORK=

# xa_cleanup: the EXIT trap: stop QEMU by its PID (TERM, then KILL), remove
# the scratch directory (XA_KEEP_WORK=1 keeps a failed run's), keep the
# exit status.
xa_cleanup() {
    local rc=$?
    if [[ -n $QEMU_PID ]] && kill -0 "$QEMU_PID" 2>/dev/null; then
        kill "$QEMU_PID" 2>/dev/null || true
        sleep 1
        kill -9 "$QEMU_PID" 2>/dev/null || true
    fi
    if [[ -n $WORK && -d $WORK ]]; then
        if ((rc != 0)) && [[ -n ${XA_KEEP_WORK:-} ]]; then
            log "work dir kept: $WORK"
        else
            rm -rf "$WORK"
        fi
    fi
    exit "$rc"
}
