#!/usr/bin/env python3
"""Print the Figure 7 table of a Xen disk test run (python3 stdlib only).

    python3 testdata/xen/fig7.py OUT/serial.log

dom0-disk.sh boots a PV domU three times on the same ext4 image, its xvda
a loop device (mode "loop": the plain disk, the paper's mode 1), or dom0's
kernel NBD device served by xascript with no watch ("tap", mode 2) or with
diskwatch.lua -r watching the folders the files are made in ("watch", mode
3). The domU creates N empty files in a fresh folder and syncs, timed inside
the guest (/proc/uptime, 10 ms), and prints @@XA-FIG7 MODE N RUN SECS@@.
This prints, per N and mode, the runs' median, min and max, files per
second at the median, and the ratio of the median to loop's.
"""

import re
import statistics
import sys

FIG7 = re.compile(r"@@XA-FIG7 (\S+) (\d+) (\d+) ([0-9.]+)@@")


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    runs = {}
    with open(sys.argv[1], errors="replace") as f:
        for line in f:
            m = FIG7.search(line)
            if m:
                runs.setdefault((int(m[2]), m[1]), []).append(float(m[4]))
    if not runs:
        raise SystemExit("no @@XA-FIG7@@ lines: the benchmark did not run (XA_DISK_BENCH_RUNS=0?)")
    order = {"loop": 0, "tap": 1, "watch": 2}
    modes = sorted({mode for _, mode in runs}, key=lambda m: (order.get(m, 3), m))
    print(f"{'N':>6} {'mode':<6} {'runs':>4} {'median s':>9} {'min s':>7} {'max s':>7} {'files/s':>8} {'vs loop':>8}")
    for n in sorted({n for n, _ in runs}):
        base = runs.get((n, "loop"))
        for mode in modes:
            r = runs.get((n, mode))
            if not r:
                continue
            med = statistics.median(r)
            rate = f"{n / med:.0f}" if med > 0 else "-"
            ratio = f"{med / statistics.median(base):.2f}x" if base and statistics.median(base) > 0 else "-"
            print(f"{n:>6} {mode:<6} {len(r):>4} {med:>9.2f} {min(r):>7.2f} {max(r):>7.2f} {rate:>8} {ratio:>8}")


if __name__ == "__main__":
    main()
