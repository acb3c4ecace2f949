#!/usr/bin/env bash
# libvmi-compare.sh EXAMPLES IMAGE ISF_A ISF_B — run LibVMI's example
# tools (vmi-process-list, vmi-module-list; file driver, Volatility IST) on
# one memory image once with each ISF and print a Markdown table of rows and
# whether A's output equals B's line for line.
#
# LibVMI is not part of this project: EXAMPLES is the examples folder of a
# LibVMI build (cmake with the file driver and VOLATILITY_IST on; see
# docs/isf.md for the commit and options used).
set -euo pipefail
[[ $# -eq 4 ]] || { sed -n '2,9p' "$0" >&2; exit 2; }
EX=$(realpath "$1") IMAGE=$2 ISF_A=$3 ISF_B=$4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/etc"
for side in a b; do
    isf=$ISF_A
    [[ $side == b ]] && isf=$ISF_B
    # The file driver takes the domain name as the image's path; the
    # config entry of that name gives the profile.
    ln -s "$(realpath "$IMAGE")" "$work/vm-$side"
    # LibVMI's config lexer rejects some characters in paths ('+', as in
    # 6.12.117+deb12): the ISF is linked under a plain name.
    ln -s "$(realpath "$isf")" "$work/isf-$side.json"
    printf 'vm-%s {\n    ostype = "Linux";\n    volatility_ist = "%s";\n}\n' "$side" "$work/isf-$side.json" >>"$work/etc/libvmi.conf"
done
echo "| tool | lines (xascript ISF) | lines (dwarf2json ISF) | equal | s (xascript) | s (dwarf2json) |"
echo "|---|---:|---:|---|---:|---:|"
for tool in vmi-process-list vmi-module-list; do
    declare -A n=() sec=()
    for side in a b; do
        start=$(date +%s.%N)
        rc=0
        (cd "$work" && HOME=$work timeout 300 "$EX/$tool" "vm-$side") >"$work/$tool.$side" 2>&1 || rc=$?
        sec[$side]=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}')
        # The first line names the domain (vm-a or vm-b): not compared.
        tail -n +2 "$work/$tool.$side" >"$work/$tool.$side.body"
        n[$side]=$(wc -l <"$work/$tool.$side.body")
        [[ $rc -eq 0 ]] || n[$side]="error $rc"
    done
    eq=no
    [[ ${n[a]} != error* && ${n[b]} != error* ]] && cmp -s "$work/$tool.a.body" "$work/$tool.b.body" && eq=yes
    echo "| $tool | ${n[a]} | ${n[b]} | $eq | ${sec[a]} | ${sec[b]} |"
done
