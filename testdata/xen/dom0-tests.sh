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
