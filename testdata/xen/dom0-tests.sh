# /xa/tests.sh in dom0: sourced by /xa/run.sh (dom0-run.sh) once per test
# domU, with DOMU_NAME (xa-pv, xa-pvh), DOMU_ID (its domain id) and DOMU_TYPE
# (pv, pvh) set and the domU idle after printing its /proc/modules. xascript
# and /xa/scripts are on hand; PATH has xl and busybox.
#
#   xa_run LABEL COMMAND [ARG...]
#
# prints the command's stdout, stderr and exit status between markers.
# integration/xen_e2e_test.go checks every command: exit status 0, and for a
# LABEL that begins with "lkm" stdout must be exactly the domU's module names
# in /proc/modules order, as lkm.lua --json records (with the domain as guest
# and the time). XASCRIPT_CACHE_DIR is fresh
# per domU, so the first xascript command of each takes the cold path. For a
# command against one domU only: [ "$DOMU_TYPE" = pvh ] && xa_run ...
# Edit freely; XA_XEN_TESTS (xen-e2e.sh) swaps in another file.

xa_run help sh -c 'xascript --help 2>&1 | head -n 1'
xa_run lkm-name xascript /xa/scripts/examples/lkm.lua --json --dom "$DOMU_NAME"
xa_run lkm-id xascript /xa/scripts/examples/lkm.lua --json --dom "$DOMU_ID"
xl pause "$DOMU_NAME"
xa_run paused-state sh -c "xl list '$DOMU_NAME' | awk 'NR == 2 && \$5 ~ /p/ { ok = 1 } END { exit !ok }'"
xa_run lkm-paused-name xascript /xa/scripts/examples/lkm.lua --json --dom "$DOMU_NAME"
xa_run lkm-paused-id xascript /xa/scripts/examples/lkm.lua --json --dom "$DOMU_ID"
xl unpause "$DOMU_NAME"
xa_run info xascript info --dom "$DOMU_NAME"
xa_run lkm-pause-flag xascript /xa/scripts/examples/lkm.lua --json --pause --dom "$DOMU_NAME"
xa_run not-left-paused sh -c "xl list '$DOMU_NAME' | awk 'NR == 2 && \$5 !~ /p/ { ok = 1 } END { exit !ok }'"
xa_run no-such-domain sh -c 'out=$(xascript /xa/scripts/examples/lkm.lua --dom no-such-domain 2>&1); rc=$?; echo "$out"; [ $rc -eq 3 ] && echo "$out" | grep -q "no such domain"'
xa_run bench xascript bench --dom "$DOMU_NAME"
# Writes (issue 10): refused without --allow-write; with it, rename-module.lua
# renames crc7 in the domain's frames, and a second xascript, reading through
# a fresh mapping, lists the new name and not the old; renamed back, the
# list is the domU's /proc/modules again (lkm-after-write, checked like
# every lkm command).
xa_run write-refused sh -c 'out=$(xascript /xa/scripts/examples/rename-module.lua --dom "$1" -- crc7 xa_renamed 2>&1); rc=$?; echo "$out"; [ $rc -ne 0 ] && echo "$out" | grep -q "run with --allow-write"' sh "$DOMU_NAME"
xa_run write-rename sh -c '
    xascript /xa/scripts/examples/rename-module.lua --dom "$1" --allow-write -- crc7 xa_renamed || exit 1
    xascript /xa/scripts/examples/lkm.lua --json --dom "$1" >/tmp/renamed.out || exit 1
    cat /tmp/renamed.out
    xascript /xa/scripts/examples/rename-module.lua --dom "$1" --allow-write -- xa_renamed crc7 || exit 1
    grep -q "\"name\":\"xa_renamed\"" /tmp/renamed.out && ! grep -q "\"name\":\"crc7\"" /tmp/renamed.out' sh "$DOMU_NAME"
xa_run lkm-after-write xascript /xa/scripts/examples/lkm.lua --json --dom "$DOMU_NAME"
# Last for the PV domU: destroy it under a polling monitor. xascript must
# end with a clean error (exit 1, "domain is gone"), not hang on frames it
# still has mapped or crash.
if [ "$DOMU_TYPE" = pv ]; then
    xa_run gone-mid-script sh -c '
        xascript /xa/scripts/examples/modwatch.lua --dom "$DOMU_NAME" -- 0.2 >/tmp/watch.out 2>&1 &
        p=$!
        sleep 3
        xl destroy "$DOMU_NAME"
        wait $p
        rc=$?
        cat /tmp/watch.out
        echo "xascript exit status $rc"
        [ $rc -eq 1 ] && grep -q "domain is gone" /tmp/watch.out'
fi

# ---- multi: several guests at once (issue 12) -- begin ----
# With the PVH domU, the last one (xa-pv is destroyed by then): a second
# domU, xa-multi (PV, the same kernel and initramfs), runs beside it, and
# ONE xascript process monitors both. integration/xene2e/multi.go checks
# each guest's records (or [NAME]-tagged lines) against that guest's own
# console.
#   multi-lkm       lkm.lua --json --dom xa-pvh --dom xa-multi (records name their guest)
#   multi-all       lkm.lua --json --dom all
#   multi-list      xl list, then xascript list --json (compared row by row)
#   multi-one-gone  a polling loop on both; xa-multi destroyed mid-run: its
#                   state ends with "domain is gone", xa-pvh's goes on until
#                   SIGTERM (exit 143, the worst of 1 and 143)
if [ "$DOMU_TYPE" = pvh ]; then
    domu_cfg xa-multi pv >/xa/xa-multi.cfg
    : >"$CONSOLE_DIR/guest-xa-multi.log"
    # One more try if the first boot fails, as dom0-run.sh gives each domU.
    multi_ok=
    for try in 1 2; do
        stamp create-xa-multi
        if xl create /xa/xa-multi.cfg >/tmp/create-xa-multi.log 2>&1 && wait_ready xa-multi; then
            multi_ok=1
            break
        fi
        cat /tmp/create-xa-multi.log
        xl destroy xa-multi >/dev/null 2>&1
        : >"$CONSOLE_DIR/guest-xa-multi.log"
        [ "$try" = 1 ] && echo "@@XA-DOMU-RETRY xa-multi@@"
    done
    if [ -n "$multi_ok" ]; then
        stamp ready-xa-multi
        dump_console xa-multi
        echo "@@XA-DOMID xa-multi $(xl domid xa-multi)@@"
        xa_run multi-lkm xascript /xa/scripts/examples/lkm.lua --json --dom "$DOMU_NAME" --dom xa-multi
        xa_run multi-all xascript /xa/scripts/examples/lkm.lua --json --dom all
        xa_run multi-list sh -c 'xl list && echo "--- xascript list --json ---" && xascript list --json'
        cat >/tmp/xa-rounds.lua <<'LUA'
local linux = require("linux")
local n = 0
while true do
  n = n + 1
  print("round " .. n .. " " .. #with_paused(linux.modules))
  sleep(0.2)
end
LUA
        # A file, not sh -c '...': the command line must be one line in the log.
        cat >/tmp/xa-multi-gone.sh <<'SH'
rounds() { grep -c "^\[$1\] round" /tmp/multi.out; }
xascript /tmp/xa-rounds.lua --dom "$DOMU_NAME" --dom xa-multi >/tmp/multi.out 2>/tmp/multi.err &
p=$!
i=0
while [ "$(rounds xa-multi)" -lt 1 ] || [ "$(rounds "$DOMU_NAME")" -lt 1 ]; do
    i=$((i + 1)); [ $i -gt 120 ] && break; sleep 0.5
done
xl destroy xa-multi
# xl destroy returns before Xen has marked the domain dying when its
# devices take a while to go; wait (bounded) for xa-multi's error line.
i=0
while ! grep -q "^xascript: \[xa-multi\] " /tmp/multi.err; do
    i=$((i + 1)); [ $i -gt 120 ] && break; sleep 0.5
done
# No error line: where is xa-multi's state? Each thread's state and kernel
# wait channel, the domains as xl sees them, then SIGQUIT makes Go print
# every goroutine's stack (the check below then fails with them in the log).
if ! grep -q "^xascript: \[xa-multi\] " /tmp/multi.err; then
    echo "no error line for xa-multi; rounds: xa-multi $(rounds xa-multi), $DOMU_NAME $(rounds "$DOMU_NAME")" >&2
    for t in /proc/$p/task/*; do
        echo "thread ${t##*/}: $(cut -d' ' -f3 $t/stat) wchan=$(cat $t/wchan 2>/dev/null) syscall=$(cut -d' ' -f1-2 $t/syscall 2>/dev/null)" >&2
    done
    timeout -s KILL 20 xl list >&2
    kill -QUIT $p
    sleep 2
fi
before=$(rounds "$DOMU_NAME")
i=0
while [ "$(rounds "$DOMU_NAME")" -le "$before" ]; do
    i=$((i + 1)); [ $i -gt 60 ] && break; sleep 0.5
done
after=$(rounds "$DOMU_NAME")
kill -0 $p 2>/dev/null && alive=1
kill -TERM $p
# Bounded: a process stuck in the kernel would hold this script for ever.
i=0
while kill -0 $p 2>/dev/null && [ "$(cut -d' ' -f3 /proc/$p/stat 2>/dev/null)" != Z ]; do
    i=$((i + 1)); [ $i -gt 40 ] && { echo "xascript still there 20 s after SIGTERM: SIGKILL" >&2; kill -KILL $p; break; }
    sleep 0.5
done
wait $p
rc=$?
cat /tmp/multi.out
cat /tmp/multi.err >&2
echo "exit status $rc; $DOMU_NAME rounds $before at xa-multi's error, $after at the end; alive $alive" >&2
[ "$alive" = 1 ] && [ $rc -eq 143 ] && [ "$after" -gt "$before" ] &&
    grep -q "^xascript: \[xa-multi\] .*domain is gone" /tmp/multi.err
SH
        if [ "${XA_XEN_MULTI_GONE:-1}" = 1 ]; then
            # Its own bounded waits add up to more than a plain command's.
            _t=$XA_CMD_TIMEOUT
            XA_CMD_TIMEOUT=$((XA_CMD_TIMEOUT * 2))
            xa_run multi-one-gone sh /tmp/xa-multi-gone.sh
            XA_CMD_TIMEOUT=$_t
        else
            echo "@@XA-MULTI-GONE-LEFT-OUT@@"
        fi
    else
        echo "@@XA-DOMU-FAIL xa-multi could not be started beside $DOMU_NAME@@"
        dump_console xa-multi
    fi
    xl destroy xa-multi >/dev/null 2>&1
fi
# ---- multi: several guests at once (issue 12) -- end ----
