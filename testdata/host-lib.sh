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

# xa_work_base NEED_BYTES: where a scratch dir goes. Guest cores are as
# large as guest RAM before compression; in RAM (/dev/shm) they cost no
# disk, which CI machines may have little of. TMPDIR, when set, wins.
xa_work_base() {
    local need_kib=$(($1 / 1024)) free_kib
    if [[ -z ${TMPDIR:-} && -d /dev/shm && -w /dev/shm ]]; then
        free_kib=$(df -Pk /dev/shm | awk 'NR == 2 { print $4 }')
        if ((free_kib > need_kib)); then
            echo /dev/shm
            return
        fi
    fi
    echo "${TMPDIR:-/tmp}"
}
