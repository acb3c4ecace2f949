#!/usr/bin/env python3
"""Host-side helpers for xen-e2e.sh (python3 stdlib only).

Subcommands:
  dom0 OUT --busybox B --init F --xen-utils DIR --libroot DIR... --kroot DIR
       --kver V --domu-kernel F --domu-initramfs F
      Write dom0's base initramfs (uncompressed newc cpio): busybox, /init, the
      Xen toolstack binaries with the closure of their ELF NEEDED libraries
      (found in the unpacked library packages, checked here so a missing one
      fails the build, not dom0), glibc's loader, libgcc_s.so.1 (glibc dlopens
      it; xl aborts without it), dom0's Xen modules with their dependencies,
      and the domU kernel and initramfs under /xa-domu/. For the disk test
      (dom0-disk.sh), optionally: --xenstore-utils DIR (xenstore-write and
      -read, for its hotplug script), --disk-module NAME (modules put under
      /lib/modules and listed in /disk-modules.order, loaded by that test,
      not at boot) and --file SRC:DEST (the domU's disk image and initramfs).
  overlay OUT [--file SRC:DEST]... [--tree SRCDIR:DEST]...
      Write a second cpio with the files that change from run to run (the
      xascript binary, scripts/, the dom0 test scripts).  The kernel unpacks
      concatenated archives in order, so `cat base overlay` is the initramfs.
  sections SERIAL
      Print the @@XA-...@@ marker lines of a serial log (a quick look).
"""

import argparse
import os
import re
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from guesttool import Cpio, read_module, resolve_modules  # noqa: E402

XEN_BIN = "usr/lib/xen-4.17/bin"
# What dom0's scripts run; each with its NEEDED closure.
XEN_TOOLS = ("xl", "xenstored", "xenconsoled", "xen-init-dom0", "xenconsole")
DOM0_MODULES = ("xen-evtchn", "xen-privcmd", "xenfs", "xen-gntdev", "xen-gntalloc")
LIBDIR = "lib/x86_64-linux-gnu"
LOADER = "ld-linux-x86-64.so.2"
DLOPENED = ("libgcc_s.so.1",)


def elf_needed(path):
    """DT_NEEDED names of an ELF64 little-endian file (from .dynamic/.dynstr)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise SystemExit(f"{path}: not a little-endian ELF64 file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    secs = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    out = []
    for _, typ, _, _, off, size, link, _, _, entsize in secs:
        if typ != 6:  # SHT_DYNAMIC
            continue
        stroff = secs[link][4]
        for i in range(0, size, entsize or 16):
            tag, val = struct.unpack_from("<qQ", data, off + i)
            if tag == 0:
                break
            if tag == 1:  # DT_NEEDED
                end = data.index(b"\x00", stroff + val)
                out.append(data[stroff + val:end].decode())
    return out


def lib_index(roots):
    """soname -> real file, over the lib dirs of the unpacked packages."""
    idx = {}
    for root in roots:
        for sub in ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64"):
            d = os.path.join(root, sub)
            if not os.path.isdir(d):
                continue
            for fn in sorted(os.listdir(d)):
                if ".so" in fn:
                    p = os.path.realpath(os.path.join(d, fn))
                    if os.path.isfile(p):
                        idx.setdefault(fn, p)
    return idx


def lib_closure(binaries, idx):
    """{soname: path} of every library the binaries need, transitively."""
    need, todo = {}, list(binaries)
    while todo:
        for name in elf_needed(todo.pop()):
            if name in need:
                continue
            if name not in idx:
                raise SystemExit(f"[xentool] no unpacked package provides {name} "
                                 f"(add its package to fetch_xen in testdata/fetch.sh)")
            need[name] = idx[name]
            todo.append(idx[name])
    return need


def read(path):
    with open(path, "rb") as f:
        return f.read()


def cmd_dom0(a):
    idx = lib_index(a.libroot)
    tools = [os.path.join(a.xen_utils, XEN_BIN, t) for t in XEN_TOOLS]
    xenstore = os.path.join(a.xenstore_utils, "usr/bin/xenstore") if a.xenstore_utils else None
    libs = lib_closure(tools + ([xenstore] if xenstore else []), idx)
    for extra in DLOPENED + (LOADER,):
        if extra not in idx:
            raise SystemExit(f"[xentool] {extra} not found in the unpacked packages")
        libs.setdefault(extra, idx[extra])
    for extra in DLOPENED:
        for name, path in lib_closure([idx[extra]], idx).items():
            libs.setdefault(name, path)
    mods = resolve_modules(a.kroot, a.kver, DOM0_MODULES)
    got = {m for m, _ in mods}
    missing = [m for m in DOM0_MODULES if m.replace("-", "_") not in got]
    if missing:
        raise SystemExit(f"[xentool] dom0 kernel {a.kver} ships no module {missing}")
    with open(a.out, "wb") as f:
        c = Cpio(f)
        for d in ("bin", "sbin", "dev", "proc", "sys", "tmp", "run", "var", "etc", "etc/xen",
                  "lib", LIBDIR, "lib64", "lib/modules", "usr", "usr/lib", "usr/lib/xen-4.17",
                  XEN_BIN, "xa", "xa-domu"):
            c.dir(d)
        c.chardev("dev/console", 5, 1)
        c.file("bin/busybox", read(a.busybox), 0o755)
        c.symlink("bin/sh", "busybox")
        c.file("init", read(a.init), 0o755)
        # /var/run and /var/lock live on the tmpfs mounted on /run.
        c.symlink("var/run", "../run")
        c.symlink("var/lock", "../run/lock")
        c.file("etc/xen/xl.conf", b"")
        for t, path in zip(XEN_TOOLS, tools):
            c.file(f"{XEN_BIN}/{t}", read(path), 0o755)
        for name in sorted(libs):
            c.file(f"{LIBDIR}/{name}", read(libs[name]), 0o755)
        c.symlink(f"lib64/{LOADER}", f"../{LIBDIR}/{LOADER}")
        order = []
        for name, path in mods:
            c.file(f"lib/modules/{name}.ko", read_module(path))
            order.append(name)
        c.file("modules.order", ("\n".join(order) + "\n").encode())
        if a.disk_module:
            dmods = [(n, p) for n, p in resolve_modules(a.kroot, a.kver, a.disk_module) if n not in order]
            dgot = {n for n, _ in dmods}
            dmissing = [m for m in a.disk_module if m.replace("-", "_") not in dgot]
            if dmissing:
                raise SystemExit(f"[xentool] dom0 kernel {a.kver} ships no module {dmissing} "
                                 f"(testdata/fetch.sh xen extracts drivers/block)")
            for name, path in dmods:
                c.file(f"lib/modules/{name}.ko", read_module(path))
            c.file("disk-modules.order", ("\n".join(n for n, _ in dmods) + "\n").encode())
        if xenstore:
            # One multi-call binary: it acts on its argv[0].
            c.file(f"{XEN_BIN}/xenstore", read(xenstore), 0o755)
            for verb in ("read", "write", "rm", "exists", "ls", "list"):
                c.symlink(f"{XEN_BIN}/xenstore-{verb}", "xenstore")
        made = {"etc", "etc/xen", "xa", "xa-domu", "lib", "lib/modules", "usr", "usr/lib"}
        for spec in a.file:
            src, _, dest = spec.partition(":")
            dest = dest.strip("/")
            parts = dest.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in made:
                    c.dir(d)
                    made.add(d)
            c.file(dest, read(src), 0o755 if os.access(src, os.X_OK) else 0o644)
        c.file("xa-domu/vmlinuz", read(a.domu_kernel))
        c.file("xa-domu/initramfs.cpio", read(a.domu_initramfs))
        c.trailer()
    print(f"[xentool] dom0 initramfs {a.out}: {os.path.getsize(a.out) >> 20} MiB, "
          f"tools {' '.join(XEN_TOOLS)}, {len(libs)} libraries, modules {' '.join(order)}",
          file=sys.stderr)


def cmd_overlay(a):
    with open(a.out, "wb") as f:
        c = Cpio(f)
        made = set()

        def parents(dest):
            parts = dest.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in made:
                    c.dir(d)
                    made.add(d)

        def add(src, dest):
            parents(dest)
            mode = 0o755 if os.access(src, os.X_OK) else 0o644
            c.file(dest, read(src), mode)

        for spec in a.file:
            src, _, dest = spec.partition(":")
            add(src, dest.strip("/"))
        for spec in a.tree:
            src, _, dest = spec.partition(":")
            for dirpath, dirs, files in os.walk(src):
                dirs.sort()
                rel = os.path.relpath(dirpath, src)
                for fn in sorted(files):
                    d = os.path.normpath(os.path.join(dest.strip("/"), rel, fn))
                    add(os.path.join(dirpath, fn), d)
        c.trailer()


MARK = re.compile(r"@@XA-[^@]*@@")


def cmd_sections(a):
    with open(a.serial, errors="replace") as f:
        for line in f:
            if MARK.search(line):
                print(line.rstrip())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dom0")
    d.add_argument("out")
    d.add_argument("--busybox", required=True)
    d.add_argument("--init", required=True)
    d.add_argument("--xen-utils", required=True)
    d.add_argument("--libroot", action="append", default=[])
    d.add_argument("--kroot", required=True)
    d.add_argument("--kver", required=True)
    d.add_argument("--domu-kernel", required=True)
    d.add_argument("--domu-initramfs", required=True)
    d.add_argument("--xenstore-utils")
    d.add_argument("--disk-module", action="append", default=[])
    d.add_argument("--file", action="append", default=[])
    d.set_defaults(fn=cmd_dom0)
    o = sub.add_parser("overlay")
    o.add_argument("out")
    o.add_argument("--file", action="append", default=[])
    o.add_argument("--tree", action="append", default=[])
    o.set_defaults(fn=cmd_overlay)
    s = sub.add_parser("sections")
    s.add_argument("serial")
    s.set_defaults(fn=cmd_sections)
    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
