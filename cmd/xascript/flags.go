package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// options is every command-line flag.
type options struct {
	file           string
	qemu           string
	dom            string
	files          []string // every --file, --qemu and --dom given (multi.go)
	qemus          []string
	doms           []string
	qemuDirs       []string
	pause          bool
	allowWrite     bool
	symbols        string
	btf            string
	isf            string
	dwarf          string
	cacheDir       string
	noCache        bool
	noProfileCache bool
	libs           []string
	json           bool
	disk           string
	nbd            string
	nbdDevice      string
	tapfifoOut     string
	tapfifo        string
	diskAfter      string
	partition      int
	drive          string
	interval       time.Duration
	waitGuest      time.Duration
	quiet          bool
	verbose        bool
	help           bool
	version        bool
}

func newFlagSet(o *options) *pflag.FlagSet {
	fs := pflag.NewFlagSet("xascript", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.StringArrayVarP(&o.files, "file", "f", nil, "memory dump to introspect: raw, ELF core (QEMU dump-guest-memory, virsh dump, kdump) or LiME; .zst/.xz/.gz read transparently")
	fs.StringArrayVar(&o.qemus, "qemu", nil, "a live QEMU/KVM guest: its QMP socket (-qmp unix:PATH,server,nowait); RAM is mapped from a shared memory-backend file, else read from the QEMU process")
	fs.StringArrayVar(&o.doms, "dom", nil, "a running Xen domain, by id or name (run in dom0 as root; PV, PVH and HVM guests); 'all': every running domU")
	fs.BoolVar(&o.pause, "pause", false, "hold a live guest paused while the script runs")
	fs.BoolVar(&o.allowWrite, "allow-write", false, "let the script write guest memory (write_u8 ... write_bytes): the dump file (raw or uncompressed ELF/LiME; it changes), a QEMU guest's RAM or a Xen domain's frames are opened writable. Off by default: targets are opened read-only and every write_* raises an error")
	fs.StringVarP(&o.symbols, "symbols", "s", "", "kernel symbols: System.map or a copy of the guest's /proc/kallsyms (default: the kernel's own tables in memory)")
	fs.StringVarP(&o.btf, "btf", "b", "", "kernel struct layouts: the guest's vmlinuz, a vmlinux ELF, or a raw .BTF blob (default: the kernel's own BTF in memory)")
	fs.StringVar(&o.dwarf, "dwarf", "", "kernel struct layouts from a debug vmlinux's DWARF (the -dbg package's), for kernels without BTF")
	fs.StringVar(&o.isf, "isf", "", "a Volatility 3 ISF (.json, .json.xz/.gz/.zst) for symbols and types (with the profile command: the ISF file to write)")
	fs.StringVar(&o.disk, "disk", "", "the guest's disk image (raw; ext2/3/4, whole or partitioned) for on_disk_event; with --nbd xascript serves it to the guest")
	fs.StringVar(&o.nbd, "nbd", "", "serve --disk over NBD on this unix socket (QEMU: -drive file=nbd+unix:///?socket=SOCKET,format=raw) and watch every write")
	fs.StringVar(&o.nbdDevice, "nbd-device", "", "serve --disk through this kernel NBD device (/dev/nbdN, nbd.ko; as root), set up by xascript itself: Xen dom0 exports it to a domU with disk = ['phy:/dev/nbdN,xvda,w']")
	fs.DurationVar(&o.waitGuest, "wait-guest", defaultWaitGuest, "with --nbd or --nbd-device: how long to wait for the --qemu or --dom guest that uses the disk to start (0: do not wait); with --dom the script starts at once and its first memory access waits")
	fs.StringVar(&o.tapfifoOut, "tapfifo-out", "", "with --nbd or --nbd-device: write a XenAccess tapfifo record of every write, trim and flush served to this FIFO or file (for another xascript --tapfifo)")
	fs.StringVar(&o.tapfifo, "tapfifo", "", "watch --disk through XenAccess tapfifo request records read from this FIFO or file (a blktap-style backend writes the image)")
	fs.StringVar(&o.diskAfter, "disk-after", "", "compare --disk (before) with this image of the same file system (after): the events between them")
	fs.IntVar(&o.partition, "partition", 0, "the partition of --disk that holds the file system (default: the whole image, else the first ext2/3/4 partition)")
	fs.StringVar(&o.drive, "drive", "", "with --qemu: watch this drive of the running guest (its -drive id, device id or node name) through QEMU dirty bitmaps and its own NBD export; no restart, no tap")
	fs.DurationVar(&o.interval, "interval", time.Second, "with --drive: how often the dirty bitmap is read (events come within one interval of the guest's flush)")
	fs.StringVar(&o.cacheDir, "cache-dir", "", "where decompressed dumps and extracted BTF are cached (default $XASCRIPT_CACHE_DIR or ~/.cache/xascript)")
	fs.BoolVar(&o.noCache, "no-cache", false, "use no on-disk cache at all (decompress into memory, derive the profile afresh)")
	fs.BoolVar(&o.noProfileCache, "no-profile-cache", false, "derive symbols and types from memory even when a profile of this kernel is cached")
	fs.StringArrayVar(&o.libs, "lib", nil, "a folder of Lua libraries for require, searched after the script's own folder and before $XASCRIPT_PATH (repeatable; in the order given)")
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "do not show the progress of one-time work (decompressing a dump, deriving a profile, indexing DWARF) on stderr")
	fs.BoolVarP(&o.verbose, "verbose", "v", false, "with an error, print its details: every candidate a search for the kernel, its symbols or its BTF rejected, and why (info always does)")
	fs.StringArrayVar(&o.qemuDirs, "qemu-dir", nil, "list: also probe every QMP socket in this folder and its subfolders (repeatable)")
	fs.BoolVar(&o.json, "json", false, "print JSON Lines instead of text: the records a script emits, and the reports of info and bench (list: one JSON array)")
	fs.BoolVarP(&o.help, "help", "h", false, "show this help")
	fs.BoolVar(&o.version, "version", false, "print the version")
	return fs
}

const usageHead = `xascript runs a Lua monitor script against a guest's memory and disk.

Usage:
  xascript SCRIPT [flags] [-- script args]   run SCRIPT (script args reach it as arg[1..] and ...)
  xascript info [flags]                       show how the kernel was found and where symbols and types came from
  xascript profile --isf OUT.json [flags]     write the derived profile as a Volatility 3 ISF
  xascript bench [flags]                      measure read speed on the target (pages/s, read_u32 latency, frame cache)
  xascript repl [flags]                       an interactive Lua prompt on the target (or none): line editing,
                                              Tab completion, history; reads statements line by line from a pipe
  xascript list [--qemu-dir DIR] [--json]    list the guests this host can see (Xen domains, QEMU guests with QMP)

A target flag given more than once (--dom web1 --dom web2, --dom all, --qemu A --qemu B,
--file A --file B) runs SCRIPT on every guest at once, one Lua state each; each output line
is tagged [NAME] (README: "Many guests at once").

Example:
  xascript scripts/examples/lkm.lua --file mem.elf.zst
  xascript scripts/examples/diskwatch.lua --disk disk.img --nbd /run/disk.sock -- /root
  xascript scripts/examples/diskwatch.lua --qemu /run/vm.qmp --drive drive0 -- /root
  xascript scripts/examples/lkm.lua --file mem.raw --symbols System.map --btf vmlinuz
  xascript scripts/examples/lkm.lua --dom web1          (in dom0)
  xascript scripts/examples/lkm.lua --qemu /run/vm.qmp
  xascript repl --file mem.elf.zst

Flags:
`

const usageTail = `
Environment:
  XASCRIPT_PATH       colon-separated folders searched by require (after the script's folder and --lib)
  XASCRIPT_CACHE_DIR  cache folder (see --cache-dir)
  XASCRIPT_DISK_TRACE set to 1 with --verbose: log every disk request the tap sees (offset, length, time)

Exit status: 0 success, 1 script error, 2 usage error (also a script that calls functions needing a
target, run without one), 3 target or profile could not be opened, 70 internal error (a bug in
xascript: please report it), 130 interrupted (SIGINT), 143 terminated (SIGTERM).
With several guests: the highest status of any guest.

Lua API: docs/lua-api.md, or help("name") inside a script; shared libraries: docs/lua-libs.md.
`

func usage(w io.Writer, fs *pflag.FlagSet) {
	var b strings.Builder
	b.WriteString(usageHead)
	b.WriteString(fs.FlagUsages())
	b.WriteString(usageTail)
	fmt.Fprint(w, b.String())
}

// targetGiven tells whether a target flag was given.
func (o *options) targetGiven() bool { return o.file != "" || o.qemu != "" || o.dom != "" }

// targetName names the target for messages: the dump file, the QMP
// socket or the domain.
func (o *options) targetName() string {
	switch {
	case o.qemu != "":
		return o.qemu
	case o.dom != "":
		return "domain " + o.dom
	}
	return o.file
}

// giveTarget is the hint printed when a command needs a target.
const giveTarget = "give --file DUMP, --qemu SOCKET or --dom DOMAIN"
