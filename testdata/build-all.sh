#!/usr/bin/env bash
# build-all.sh — regenerate every test guest (what `make testdata` runs):
# fetch the Debian packages, then build each variant in turn.  Outputs differ
# between runs only by KASLR and timing.  Pass variant names to build a subset.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
VARIANTS=(x86_64-4level x86_64-5level x86_64-highmem i386-pae i386-legacy x86_64-6.12)
(($#)) && VARIANTS=("$@")

main() {
    local v t
    "$HERE/fetch.sh" all
    for v in "${VARIANTS[@]}"; do
        t=$SECONDS
        "$HERE/build-guest.sh" "$v"
        echo "[build-all] $v built in $((SECONDS - t))s" >&2
    done
}

main
exit
