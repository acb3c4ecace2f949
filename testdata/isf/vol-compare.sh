#!/usr/bin/env bash
# vol-compare.sh VOL IMAGE ISF_A ISF_B OUTDIR [PLUGIN...] — run Volatility 3's
# Linux plugins on one memory image twice, once with each ISF (e.g. A from
# `xascript profile --isf`, B from dwarf2json on the kernel's -dbg vmlinux),
# and print a Markdown table: per plugin, exit status, rows, seconds, and
# whether A's output equals B's row for row.
#
# Volatility is not part of this project and nothing of it is here: VOL is
# a command that runs a checkout of it (e.g. a wrapper around
# `python3 volatility3/vol.py` with Debian's python3-pefile/-jsonschema/
# -yara/-capstone on PYTHONPATH). See docs/isf.md for the versions used.
# Each ISF gets its own symbol folder and its own Volatility cache, made
# fresh, so the first plugin of each run includes Volatility's one-time
# ISF caching; that time is reported on its own.
set -euo pipefail
[[ $# -ge 5 ]] || { sed -n '2,14p' "$0" >&2; exit 2; }
VOL=$1 IMAGE=$2 ISF_A=$3 ISF_B=$4 OUT=$5
shift 5
PLUGINS=("$@")
if [[ ${#PLUGINS[@]} -eq 0 ]]; then
    PLUGINS=(linux.pslist.PsList linux.pstree.PsTree linux.psaux.PsAux linux.psscan.PsScan
        linux.pidhashtable.PIDHashTable linux.lsmod.Lsmod linux.check_modules.Check_modules
        linux.check_syscall.Check_syscall linux.check_idt.Check_idt linux.check_creds.Check_creds
        linux.check_afinfo.Check_afinfo linux.keyboard_notifiers.Keyboard_notifiers linux.tty_check.tty_check
        linux.kmsg.Kmsg linux.iomem.IOMem linux.mountinfo.MountInfo linux.lsof.Lsof linux.proc.Maps
        linux.elfs.Elfs linux.envars.Envars linux.bash.Bash linux.library_list.LibraryList
        linux.malfind.Malfind linux.capabilities.Capabilities linux.ptrace.Ptrace linux.sockstat.Sockstat
        linux.netfilter.Netfilter linux.ebpf.EBPF linux.pagecache.Files)
fi
mkdir -p "$OUT"
for side in a b; do
    isf=$ISF_A
    [[ $side == b ]] && isf=$ISF_B
    rm -rf "$OUT/sym-$side" "$OUT/cache-$side"
    mkdir -p "$OUT/sym-$side/linux" "$OUT/cache-$side"
    ln -s "$(realpath "$isf")" "$OUT/sym-$side/linux/$(basename "$isf")"
    # Volatility's one-time work: index the symbol folder and the ISF.
    start=$(date +%s.%N)
    "$VOL" -q --offline --cache-path "$OUT/cache-$side" -s "$OUT/sym-$side" -f "$IMAGE" banners.Banners >/dev/null 2>&1 || true
    "$VOL" -q --offline --cache-path "$OUT/cache-$side" -s "$OUT/sym-$side" -f "$IMAGE" linux.pslist.PsList >/dev/null 2>&1 || true
    echo "first run (ISF caching + pslist) $side: $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s" >>"$OUT/firstrun.txt"
done
for p in "${PLUGINS[@]}"; do
    for side in a b; do
        start=$(date +%s.%N)
        rc=0
        "$VOL" -q --offline --cache-path "$OUT/cache-$side" -s "$OUT/sym-$side" -f "$IMAGE" -r json "$p" \
            >"$OUT/$p.$side.json" 2>"$OUT/$p.$side.err" || rc=$?
        echo "$p $side $rc $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}')" >>"$OUT/runs.txt"
    done
done
python3 - "$OUT" "${PLUGINS[@]}" <<'PY'
import json, sys, os
out, plugins = sys.argv[1], sys.argv[2:]
runs = {}
for line in open(os.path.join(out, "runs.txt")):
    p, side, rc, sec = line.split()
    runs[p, side] = (int(rc), float(sec))
def rows(p, side):
    try:
        data = json.load(open(os.path.join(out, f"{p}.{side}.json")))
    except Exception:
        return None
    flat = []
    def walk(rs):
        for r in rs:
            kids = r.pop("__children", [])
            flat.append(json.dumps(r, sort_keys=True))
            walk(kids)
    walk(data)
    return flat
def err(p, side):
    lines = [l.strip() for l in open(os.path.join(out, f"{p}.{side}.err")) if l.strip()]
    return lines[-1][:90] if lines else ""
print("| plugin | rows (xascript ISF) | rows (dwarf2json ISF) | equal | s (xascript) | s (dwarf2json) | note |")
print("|---|---:|---:|---|---:|---:|---|")
for p in plugins:
    ra, rb = rows(p, "a"), rows(p, "b")
    (ca, sa), (cb, sb) = runs[p, "a"], runs[p, "b"]
    na = "error" if ra is None or ca else len(ra)
    nb = "error" if rb is None or cb else len(rb)
    eq = "yes" if ra is not None and rb is not None and not ca and not cb and ra == rb else "no"
    note = ""
    if ca: note += "xascript: " + err(p, "a") + " "
    if cb: note += "dwarf2json: " + err(p, "b")
    if eq == "no" and not ca and not cb and ra is not None and rb is not None:
        diff = len(set(ra) ^ set(rb))
        note += f"{diff} rows differ" + (" (same rows, other order)" if sorted(ra) == sorted(rb) else "")
    print(f"| {p.split('.',1)[1]} | {na} | {nb} | {eq} | {sa:.1f} | {sb:.1f} | {note.strip()} |")
PY
cat "$OUT/firstrun.txt"
