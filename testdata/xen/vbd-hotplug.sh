#!/bin/sh
# /etc/xen/scripts/block in dom0 (busybox sh): the hotplug script libxl runs
# for a `phy:` disk (run_hotplug_scripts, its default), as `block add` or
# `block remove` with XENBUS_PATH=backend/vbd/DOMID/DEVID (relative to
# dom0's /local/domain/0). Debian's own script needs bash and the
# xen-utils-common tree; this one does the part blkback needs: it tells
# the backend which block device to open (physical-device, major:minor in
# hex) and reports the outcome in hotplug-status. The disk test
# (dom0-disk.sh) exports /dev/nbd0, served by xascript, and /dev/loop0.
case $1 in
add)
    params=$(xenstore-read "$XENBUS_PATH/params") || exit 1
    dev=$(readlink -f "$params")
    if [ ! -b "$dev" ]; then
        xenstore-write "$XENBUS_PATH/hotplug-error" "$params is not a block device" \
            "$XENBUS_PATH/hotplug-status" error
        exit 1
    fi
    xenstore-write "$XENBUS_PATH/physical-device" "$(stat -L -c %t:%T "$dev")" \
        "$XENBUS_PATH/physical-device-path" "$dev" \
        "$XENBUS_PATH/hotplug-status" connected
    ;;
remove)
    xenstore-write "$XENBUS_PATH/hotplug-status" disconnected 2>/dev/null
    exit 0
    ;;
esac
