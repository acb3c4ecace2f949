#!/bin/sh
# fig7-placebo.sh: an XA_FIG7_BASE_BIN for fig7.sh's bitmap-base mode that
# attaches nothing: the bitmap-watch boot, QMP socket and all, without the
# tap. It says what fig7.sh waits for and sleeps until it is stopped.
echo "watching drive (placebo: nothing attached)" >&2
exec sleep 1000000
