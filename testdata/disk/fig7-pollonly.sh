#!/bin/sh
# fig7-pollonly.sh: an XA_FIG7_BASE_BIN for fig7.sh's bitmap-base mode that
# polls the drive as bitmap-watch does (QMP transaction, export, block
# status every interval) but sets no watch: no rescan, no events. fig7.sh
# passes the watch script first; it is replaced by a script that sleeps.
here=$(cd "$(dirname "$0")" && pwd)
shift
exec "${XASCRIPT_BIN:-$here/../../bin/xascript}" "$here/pollonly.lua" "$@"
