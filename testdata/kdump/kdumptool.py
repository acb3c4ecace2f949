#!/usr/bin/env python3
"""Host-side helpers for build-kdump.sh (python3 stdlib only).

Reuses testdata/guesttool.py (imported, not run) for the newc writer and the
parsers of the sections the guest prints, so the kdump truth reads the serial
log exactly as the captured-image truth does.

Subcommands:
  cpio OUT DEST=SRC[:MODE] ...
      Write a newc archive holding the host files SRC at DEST (directories
      made as needed). Concatenated after guesttool's initramfs it adds
      files to it: the kernel unpacks every archive of an initramfs in turn.
  truth --serial LOG --outdir DIR ...
      Cut the first kernel's ground truth out of the serial log and write
      DIR/kallsyms and DIR/truth.json. Unlike guesttool.py truth it needs no
      registers.txt: nothing can stop the guest between its last print and
      the panic, and a kdump vmcore has no control registers anyway.
  verify DIR
      Check a finished output directory: truth.json against the serial log,
      kallsyms.zst against its section, and linux_banner at its physical
      address through vmcore.zst's PT_LOADs.
"""

import argparse
import json
import os
import re
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import guesttool as gt  # noqa: E402  (testdata/guesttool.py)


def cmd_cpio(a):
    with open(a.out, "wb") as f:
        c = gt.Cpio(f)
        dirs = set()
        for spec in a.files:
            dest, _, src = spec.partition("=")
            src, _, mode = src.partition(":")
            dest = dest.strip("/")
            parts = dest.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    c.dir(d)
            with open(src, "rb") as s:
                c.file(dest, s.read(), int(mode or "644", 8))
        c.trailer()


# "  01000000-0effffff : Crash kernel" under System RAM in /proc/iomem.
CRASH_RE = re.compile(r"^\s*([0-9a-f]+)-([0-9a-f]+) : Crash kernel$")


def crash_resources(lines):
    out = []
    for l in lines:
        m = CRASH_RE.match(l)
        if m:
            out.append({"start": gt.hx(int(m.group(1), 16)), "end": gt.hx(int(m.group(2), 16))})
    return out


def marker_value(serial, name):
    m = re.search(rf"^@@XA-{name} (\S+)@@\r?$", serial, re.M)
    return m.group(1) if m else None


def cmd_truth(a):
    with open(a.serial, "rb") as f:
        serial = f.read().decode("utf-8", "replace")
    # Only the first kernel's insmod failures: the capture kernel prints its
    # own after the crash, and it loads only the virtio modules.
    first = serial.split("@@XA-READY@@", 1)[0]
    common, sec = gt.guest_truth(serial, a.outdir, a.system_map, a.min_modules, fail_text=first)
    if "CMDLINE" not in sec:
        raise SystemExit("serial log has no complete CMDLINE section")
    crash = crash_resources(sec["IOMEM"])
    if not crash:
        raise SystemExit("/proc/iomem has no 'Crash kernel' range: crashkernel= reserved nothing")
    size = marker_value(serial, "VMCORE-SIZE")

    truth = {
        "variant": a.variant,
        "arch": "x86_64",
        "kernel_package_version": a.kernel_package_version,
        "capture_cmdline": a.capture_cmdline,
        "qemu": json.loads(a.qemu_argv),
        "mem_bytes": a.mem_bytes,
        # A kdump vmcore has no control registers; -cpu qemu64 has no LA57.
        "cpu": {},
        "paging": "4-level",
        "crash_kernel": crash,
        "vmcore_bytes": int(size) if size else None,
        # The tasks were taken just before the panic; the crashing task is
        # pid 1 itself (the shell's builtin echo writes /proc/sysrq-trigger).
        **common,
        "files": {
            "vmcore.zst": "/proc/vmcore of the capture kernel after a panic, as dd read it",
        },
    }
    with open(os.path.join(a.outdir, "truth.json"), "w") as f:
        json.dump(truth, f, indent=1)
        f.write("\n")
    print(f"[kdumptool] truth: {truth['kernel_release']} modules={len(truth['modules'])} "
          f"tasks={len(truth['tasks'])} kallsyms={truth['kallsyms_lines']} crash kernel={crash} "
          f"vmcore={size} insmod failures={len(truth['insmod_failures'])}", file=sys.stderr)


def cmd_verify(a):
    d, errs = a.dir, []
    with open(os.path.join(d, "truth.json")) as f:
        t = json.load(f)
    sec = gt.sections(gt.zstd_cat(os.path.join(d, "serial.log.zst")).decode("utf-8", "replace"))
    if t["banner"] != "\n".join(sec["VERSION"]).strip():
        errs.append("banner differs from the serial log")
    if t["modules"] != [m["name"] for m in gt.parse_modules(sec["MODULES"])]:
        errs.append("modules differ from the serial log")
    if len(t["modules"]) < 10:
        errs.append(f"only {len(t['modules'])} modules")
    ks = gt.zstd_cat(os.path.join(d, "kallsyms.zst")).decode()
    if ks != "\n".join(sec["KALLSYMS"]) + "\n":
        errs.append("kallsyms.zst differs from the serial log")
    # linux_banner at its physical address through the vmcore's PT_LOADs
    # (p_paddr): checks truth symbols, the physical slide and the core.
    errs += gt.check_elf(os.path.join(d, "vmcore.zst"), t)
    for e in errs:
        print(f"[kdumptool verify] FAIL: {e}", file=sys.stderr)
    if errs:
        raise SystemExit(1)
    print(f"[kdumptool verify] ok: {len(t['modules'])} modules, {t['kallsyms_lines']} kallsyms "
          f"lines, vmcore {t['vmcore_bytes']} bytes", file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sp = p.add_subparsers(dest="cmd", required=True)
    c = sp.add_parser("cpio")
    c.add_argument("out")
    c.add_argument("files", nargs="+", metavar="DEST=SRC[:MODE]")
    t = sp.add_parser("truth")
    t.add_argument("--serial", required=True)
    t.add_argument("--outdir", required=True)
    t.add_argument("--variant", default="x86_64-kdump")
    t.add_argument("--qemu-argv", required=True, help="JSON list")
    t.add_argument("--mem-bytes", type=int, required=True)
    t.add_argument("--capture-cmdline", default="")
    t.add_argument("--system-map")
    t.add_argument("--kernel-package-version", default="")
    t.add_argument("--min-modules", type=int, default=10)
    v = sp.add_parser("verify")
    v.add_argument("dir")
    a = p.parse_args()
    {"cpio": cmd_cpio, "truth": cmd_truth, "verify": cmd_verify}[a.cmd](a)


if __name__ == "__main__":
    main()
