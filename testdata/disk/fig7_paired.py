#!/usr/bin/env python3
"""Paired reading of fig7.sh's results.tsv files: each mode against plain.

Usage: fig7_paired.py RESULTS.tsv [RESULTS.tsv ...]

A boot's runs share its share of the machine's load, so boots, not runs, are
the samples: the k-th boot of a mode is paired with the k-th boot of plain
(fig7.sh boots every mode once per round). For each file, and pooled over all
of them, it prints the mode's runs, its mean and median time over plain's, and
the geometric mean of the per-round ratios of boot means with a 95% bootstrap
interval (20,000 resamples, fixed seed, so the figures repeat).
"""
import math
import random
import statistics as st
import sys


def boots(path):
    """mode -> list of boots, each a list of run times in ms."""
    out, cur = {}, {}
    with open(path) as f:
        for line in f:
            col = line.rstrip("\n").split("\t")
            if len(col) >= 5 and col[1] == "fig7":
                cur.setdefault(col[0], []).append(int(col[4]) / 1e6)
            elif len(col) >= 2 and col[1] == "boot" and cur.get(col[0]):
                out.setdefault(col[0], []).append(cur.pop(col[0]))
    return out


def line(label, data, mode, rng):
    pl, md = data.get("plain", []), data.get(mode, [])
    pairs = list(zip(md, pl))
    if not pairs:
        return
    runs_m = [x for b in md for x in b]
    runs_p = [x for b in pl for x in b]
    logs = [math.log(st.mean(a) / st.mean(b)) for a, b in pairs]
    geo = math.exp(st.mean(logs))
    bs = sorted(math.exp(st.mean(rng.choices(logs, k=len(logs)))) for _ in range(20000))
    print(f"{label:28s} {mode:13s} runs {len(runs_m):5d}  mean {st.mean(runs_m) / st.mean(runs_p):.3f}x"
          f"  median {st.median(runs_m) / st.median(runs_p):.3f}x  paired ({len(pairs)} rounds)"
          f" {geo:.3f} (95% {bs[500]:.3f}-{bs[19499]:.3f})")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    rng = random.Random(1)
    pooled = {}
    for path in sys.argv[1:]:
        data = boots(path)
        if "plain" not in data:
            sys.exit(f"{path}: no plain boots")
        for mode in sorted(m for m in data if m != "plain"):
            line(path, data, mode, rng)
        n = min(len(v) for v in data.values())
        for mode, v in data.items():
            pooled.setdefault(mode, []).extend(v[:n])
    if len(sys.argv) > 2:
        for mode in sorted(m for m in pooled if m != "plain"):
            line("pooled", pooled, mode, rng)


if __name__ == "__main__":
    main()
