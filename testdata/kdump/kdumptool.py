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
    sec = gt.sections(serial)
    for need in ("VERSION", "CMDLINE", "MODULES", "KALLSYMS", "IOMEM", "TASKS"):
        if need not in sec:
            raise SystemExit(f"serial log has no complete {need} section")

    kallsyms = sec["KALLSYMS"]
    with open(os.path.join(a.outdir, "kallsyms"), "w") as f:
        f.write("\n".join(kallsyms) + "\n")
    ksyms = gt.parse_map(kallsyms)
    if not ksyms.get("_text"):
        raise SystemExit("kallsyms shows no _text address (kptr_restrict?)")

    mapsyms, slide = {}, None
    if a.system_map:
        with open(a.system_map) as f:
            mapsyms = gt.parse_map(f.read().split("\n"))
        if "_text" in mapsyms:
            slide = ksyms["_text"] - mapsyms["_text"]
    symbols, sources = {}, {}
    for s in gt.TRUTH_SYMBOLS:
        if s in ksyms:
            symbols[s], sources[s] = gt.hx(ksyms[s]), "kallsyms"
        elif s in mapsyms and slide is not None:
            symbols[s], sources[s] = gt.hx(mapsyms[s] + slide), "System.map+slide"

    modules = gt.parse_modules(sec["MODULES"])
    if len(modules) < a.min_modules:
        raise SystemExit(f"only {len(modules)} modules loaded, want >= {a.min_modules}")
    tasks = sorted(gt.parse_tasks(sec["TASKS"]), key=lambda t: t["pid"])
    banner = "\n".join(sec["VERSION"]).strip()
    # Only the first kernel's failures: the capture kernel prints its own
    # after the crash, and it loads only the virtio modules.
    first = serial.split("@@XA-READY@@", 1)[0]
    fails = [l.strip() for l in first.split("\n") if l.startswith("XA-INSMOD-FAIL")]
    crash = crash_resources(sec["IOMEM"])
    if not crash:
        raise SystemExit("/proc/iomem has no 'Crash kernel' range: crashkernel= reserved nothing")
    size = marker_value(serial, "VMCORE-SIZE")

    truth = {
        "variant": a.variant,
        "arch": "x86_64",
        "kernel_release": banner.split()[2],
        "kernel_package_version": a.kernel_package_version,
        "banner": banner,
        "cmdline": "\n".join(sec["CMDLINE"]).strip(),
        "capture_cmdline": a.capture_cmdline,
        "qemu": json.loads(a.qemu_argv),
        "mem_bytes": a.mem_bytes,
        # A kdump vmcore has no control registers; -cpu qemu64 has no LA57.
        "cpu": {},
        "paging": "4-level",
        "crash_kernel": crash,
        "vmcore_bytes": int(size) if size else None,
        "modules": [m["name"] for m in modules],
        "module_list": [{k: m[k] for k in ("name", "size", "address", "refcount", "deps")}
                        for m in modules],
        "insmod_failures": [l.split(None, 1)[1].strip() for l in fails],
        # Taken just before the panic; the crashing task is pid 1 itself
        # (the shell's builtin echo writes /proc/sysrq-trigger).
        "tasks": [{"pid": t["pid"], "comm": t["comm"]} for t in tasks],
        "symbols": symbols,
        "symbol_sources": sources,
        "kaslr": {
            "text": gt.hx(ksyms["_text"]),
            "system_map_text": gt.hx(mapsyms["_text"]) if "_text" in mapsyms else None,
            "virtual_slide": (gt.hx(slide) if slide is not None and slide >= 0
                              else (("-" + gt.hx(-slide)) if slide is not None else None)),
            "kernel_phys": gt.parse_kernel_resources(sec["IOMEM"]),
        },
        "kallsyms_lines": len(kallsyms),
        "iomem": "\n".join(sec["IOMEM"]) + "\n",
        "ram": gt.parse_iomem(sec["IOMEM"]),
        "files": {
            "vmcore.zst": "/proc/vmcore of the capture kernel after a panic, as dd read it",
        },
    }
    with open(os.path.join(a.outdir, "truth.json"), "w") as f:
        json.dump(truth, f, indent=1)
        f.write("\n")
    print(f"[kdumptool] truth: {truth['kernel_release']} modules={len(modules)} "
          f"tasks={len(tasks)} kallsyms={len(kallsyms)} crash kernel={crash} "
          f"vmcore={size} insmod failures={len(fails)}", file=sys.stderr)


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
