package linux

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/linux/btfmem"
	"github.com/xascript/xascript/vmi/linux/btfsrc"
	"github.com/xascript/xascript/vmi/linux/dwarfsrc"
	"github.com/xascript/xascript/vmi/linux/isf"
	"github.com/xascript/xascript/vmi/linux/symbols"
	"github.com/xascript/xascript/vmi/linux/vmcoreinfo"
	"github.com/xascript/xascript/vmi/paging"
	"github.com/xascript/xascript/vmi/types"
)

// Options names the profile sources.
type Options struct {
	// SymbolsPath is a System.map or /proc/kallsyms file (compressed or not).
	SymbolsPath string
	// BTFPath is a vmlinuz, a vmlinux ELF or a raw BTF blob.
	BTFPath string
	// DWARFPath is a debug vmlinux whose DWARF gives the struct layouts
	// (for kernels without BTF), unless BTFPath is given.
	DWARFPath string
	// ISFPath is a Volatility 3 ISF: symbols and types, each unless
	// SymbolsPath or BTFPath gives them.
	ISFPath string
	// Unpack controls the decompression cache (and where derived
	// profiles are cached).
	Unpack unpack.Options
	// NoProfileCache derives a profile from memory even when one is
	// cached for this kernel (the new one replaces it).
	NoProfileCache bool
}

// giveTypes is what an error about missing struct layouts tells to do.
const giveTypes = "give --btf FILE, --dwarf VMLINUX or --isf FILE"

// ErrNoTypes is returned by type queries when no BTF source was given.
var ErrNoTypes = errors.New("no struct layouts: give --btf FILE (the guest's vmlinuz, a vmlinux or a raw BTF blob), --dwarf VMLINUX (a debug vmlinux) or --isf FILE")

// Kernel is a located Linux kernel in a target. It implements the Guest
// interface of package bindings.
type Kernel struct {
	Target vmi.Target
	Space  *paging.Space
	Syms   *symbols.Table
	Layout Layout

	// SymbolsFrom and TypesFrom say where the profile came from.
	SymbolsFrom, TypesFrom string

	btfPath   string
	dwarfPath string
	btfRaw    []byte // BTF found in memory by this Open (cached or not)
	noTypes   error  // why there are no types, when no source has them
	unpackOpt unpack.Options
	typesOnce sync.Once
	types     typeSource
	typesErr  error
	graphOnce sync.Once
	graph     *kernelGraph
	modOnce   sync.Once // module BTF, read on the first type vmlinux lacks
	mods      *moduleTypes
	modsErr   error
	modSyms   moduleSymbols // module symbol tables, per generation (kernel_symbols.go)

	// cachedBTF: btfPath is a cached profile's blob, used only if the
	// guest's BTF is the same (loadBTFFile).
	cachedBTF *cachedBTFCheck

	vmci  vmcoreinfoState
	notes []string // findings of Open, besides the locator's
	// For symbols without linux_banner: where a cached profile saw the
	// banner, and where it is (both in the symbol table's addresses).
	bannerHint             string
	bannerHintVA, bannerVA uint64
}

// Open locates the kernel in t. Symbols come from opt.SymbolsPath, or
// else from the kernel's own kallsyms tables in memory; struct layouts from
// opt.BTFPath, or else from the kernel's own BTF in memory. A profile derived
// from memory is cached on disk per kernel. Struct layouts are loaded on
// first use, so a script that needs none pays nothing.
func Open(t vmi.Target, opt Options) (*Kernel, error) {
	k := &Kernel{Target: t, btfPath: opt.BTFPath, unpackOpt: opt.Unpack}
	if opt.BTFPath != "" {
		k.TypesFrom = "BTF in " + opt.BTFPath
	} else if opt.DWARFPath != "" {
		k.dwarfPath, k.TypesFrom = opt.DWARFPath, "DWARF in "+opt.DWARFPath
	}
	if opt.ISFPath != "" {
		prof, isfSyms, err := isf.Open(opt.ISFPath, "ISF "+opt.ISFPath, opt.Unpack)
		if err != nil {
			return nil, fmt.Errorf("load ISF: %w", err)
		}
		if opt.SymbolsPath == "" {
			k.Syms, k.SymbolsFrom = isfSyms, "ISF "+opt.ISFPath
		}
		if opt.BTFPath == "" && opt.DWARFPath == "" {
			k.types, k.TypesFrom = prof, "ISF "+opt.ISFPath
			k.typesOnce.Do(func() {})
		}
		if opt.SymbolsPath == "" {
			return k, k.locate()
		}
	}
	if opt.SymbolsPath != "" {
		syms, err := symbols.Load(opt.SymbolsPath, opt.Unpack)
		if err != nil {
			return nil, fmt.Errorf("load symbols: %w", err)
		}
		k.Syms, k.SymbolsFrom = syms, opt.SymbolsPath
		return k, k.locate()
	}
	return k.openFromMemory(opt)
}

func (k *Kernel) hasSymbol(name string) bool {
	_, ok := k.Syms.Lookup(name)
	return ok
}

func (k *Kernel) locate() error {
	var vmci *vmcoreinfo.Info
	if !k.hasSymbol("linux_banner") {
		// A table of text symbols only: VMCOREINFO names the data
		// symbols locating the kernel needs.
		f, err := k.Vmcoreinfo()
		if err != nil {
			return fmt.Errorf("locate kernel: %s, and no VMCOREINFO names the data symbols it needs (%w); give --symbols System.map (or --isf FILE)",
				k.noDataSymbols(), err)
		}
		vmci = f.Info
	}
	layout, space, err := locate(k.Target, k.Syms, vmci)
	if err != nil {
		if vmci != nil {
			return fmt.Errorf("%w (%s)", err, k.noDataSymbols())
		}
		return err
	}
	k.Layout, k.Space = layout, space
	if vmci != nil {
		k.checkVmcoreinfoBoot()
		if b, va, ok := k.imageBanner(k.bannerHint, k.bannerHintVA); ok {
			k.Layout.Banner, k.bannerVA = b, va
		}
	}
	return nil
}

// useSymbols takes symbols from a profile derived from memory.
func (k *Kernel) useSymbols(p *memProfile) {
	m := p.meta
	from := "memory (kallsyms tables"
	if m.KallsymsPA != "" {
		from += " at physical " + m.KallsymsPA
	}
	if m.TextOnly {
		from += ", text symbols only"
	}
	from += ", " + m.Layout + ", found from " + m.Region + ")"
	if m.FromCache {
		from = "profile cache " + p.dir + ", derived from " + from
	}
	k.Syms, k.SymbolsFrom = p.syms, from
	k.vmci.useProfile(m.TextOnly, releaseOf(m.Banner), m.VmcoreinfoPA)
	k.bannerHint, k.bannerHintVA, k.bannerVA = m.LinuxBanner, m.BannerVA, 0
}

// useTypes takes struct layouts from a profile derived from memory, when
// wantTypes (no file gives them).
func (k *Kernel) useTypes(p *memProfile, wantTypes bool) {
	m := p.meta
	if !wantTypes {
		return
	}
	switch {
	case p.btfErr != nil:
		k.noTypes = vmi.Detailed(vmi.Details(p.btfErr), nil, "%w; %s", p.btfErr, giveTypes)
		k.TypesFrom = ""
	case p.btfRaw != nil && p.btfPath != "":
		// Derived just now: the bytes in hand are the guest's. The cache
		// entry is not read back, since another xascript (or another guest
		// of this one with the same kernel) may replace or drop it before
		// the types are first loaded.
		k.btfRaw = p.btfRaw
		k.TypesFrom = fmt.Sprintf("BTF in memory (at physical %s, %d bytes%s), cached as %s", m.BTFPA, m.BTFBytes, checkedNote(m), p.btfPath)
	case p.btfPath != "":
		k.btfPath = p.btfPath
		k.TypesFrom = fmt.Sprintf("BTF in memory (at physical %s, %d bytes%s), cached as %s", m.BTFPA, m.BTFBytes, checkedNote(m), p.btfPath)
	default:
		k.btfRaw = p.btfRaw
		k.TypesFrom = fmt.Sprintf("BTF in memory (at physical %s, %d bytes%s)", m.BTFPA, m.BTFBytes, checkedNote(m))
	}
}

// checkedNote says how the BTF was checked when the profile was derived.
func checkedNote(m profileMeta) string {
	if m.BTFChecked == 0 {
		return ""
	}
	return fmt.Sprintf("; %d members checked against cilium/ebpf", m.BTFChecked)
}

// ReadVirt reads kernel virtual memory.
func (k *Kernel) ReadVirt(buf []byte, va uint64) error { return k.Space.Read(buf, va) }

// ReadUintVirt reads a little-endian integer of 1, 2, 4 or 8 bytes.
func (k *Kernel) ReadUintVirt(va uint64, size int) (uint64, error) { return k.Space.ReadUint(va, size) }

// ReadPhys reads guest-physical memory.
func (k *Kernel) ReadPhys(buf []byte, pa uint64) error { return k.Target.ReadPhys(buf, pa) }

// Translate maps a kernel virtual address to a physical one.
func (k *Kernel) Translate(va uint64) (uint64, error) { return k.Space.Translate(va) }

// PointerSize is 8 for x86-64 guests and 4 for i386.
func (k *Kernel) PointerSize() int { return k.Layout.Mode.PointerSize() }

// Symbol returns a symbol's run-time address: from the symbol table, or
// else from the kernel's VMCOREINFO (which names some data symbols that a
// kallsyms of text symbols only lacks), or else from the loaded modules'
// own symbol tables ("squashfs_fill_super", or "module:name" for one
// module's), as the kernel's kallsyms_lookup_name looks.
func (k *Kernel) Symbol(name string) (uint64, error) {
	if a, ok := k.kernelSymbol(name); ok {
		return a, nil
	}
	if a, ok := k.moduleSymbol(name); ok {
		return a, nil
	}
	return 0, k.missingSymbol(name)
}

// kernelSymbol is Symbol without the modules: the kernel image's own
// symbols, from the table or VMCOREINFO.
func (k *Kernel) kernelSymbol(name string) (uint64, bool) {
	if a, ok := k.Syms.Lookup(name); ok {
		return k.shifted(a), true
	}
	if f, _ := k.Vmcoreinfo(); f != nil {
		if a, ok := vmcoreinfoLookup(k.Syms, f.Info, name); ok {
			return k.shifted(a), true
		}
	}
	return 0, false
}

// shifted moves a symbol-table address by the KASLR shift. x86-64's
// per-cpu symbols are offsets into a CPU's per-cpu area (current_task is
// 0x1fb80: "A" in kallsyms, "D" in System.map) and do not move with the
// kernel: on a 64-bit kernel only addresses above 4 GiB are shifted.
// (Shifting them broke a System.map on a KASLR guest and a cached profile
// from another boot.)
func (k *Kernel) shifted(a uint64) uint64 {
	if a < 1<<32 && (k.Layout.Mode == paging.IA32e || k.Layout.Mode == paging.LA57) {
		return a
	}
	return a + uint64(k.Layout.SymbolShift)
}

// Flush drops everything cached from the guest: on a live target by moving
// its generation (every cache over it, process spaces and mapped frames
// included, checks it), else the kernel's translations.
func (k *Kernel) Flush() {
	if g, ok := k.Target.(vmi.Generationer); ok {
		g.Generation().Bump()
		return
	}
	k.Space.Flush()
}

// Pause pauses a live guest; a dump has nothing to pause. What was cached
// while the guest ran is dropped (a live target moves its generation when
// it stops), so the pause reads one consistent state.
func (k *Kernel) Pause() error {
	p, ok := k.Target.(vmi.Pauser)
	if !ok {
		return nil
	}
	err := p.Pause()
	k.flushUnlessGenerations()
	return err
}

// Resume lets a live guest that we paused run again; what was cached while
// it was paused is dropped, since its page tables may change while it runs.
func (k *Kernel) Resume() error {
	p, ok := k.Target.(vmi.Pauser)
	if !ok {
		return nil
	}
	err := p.Resume()
	k.flushUnlessGenerations()
	return err
}

// flushUnlessGenerations flushes the kernel's translations for a Pauser
// that keeps no generation (the caches over one that does follow it).
func (k *Kernel) flushUnlessGenerations() {
	if _, ok := k.Target.(vmi.Generationer); !ok {
		k.Space.Flush()
	}
}

// Paused tells whether a live guest is paused (a dump always is).
func (k *Kernel) Paused() bool {
	if p, ok := k.Target.(vmi.Pauser); ok {
		return p.Paused()
	}
	return true
}

// Describe says how the kernel was found, for guest_info() and `xascript info`.
func (k *Kernel) Describe() vmi.KernelInfo {
	l := k.Layout
	return vmi.KernelInfo{
		Target: k.Target.Kind(), Paging: l.Mode.String(), Root: l.Root, RootSource: l.RootSource,
		Banner: l.Banner, TextPhys: l.TextPhys, KASLRVirtual: l.KASLRVirtual, KASLRPhysical: l.KASLRPhysical,
		SymbolShift: l.SymbolShift, Symbols: k.Syms.Len(), Notes: append(slices.Clip(l.Notes), k.notes...),
		SymbolsFrom: k.SymbolsFrom, TypesFrom: k.TypesFrom,
	}
}

// Validate checks the located kernel against a second signature besides the
// banner: init_task, the idle task, must be pid 0 named "swapper/0" (or
// "swapper" on old kernels). It needs struct layouts.
func (k *Kernel) Validate() (string, error) {
	it, err := k.Symbol("init_task")
	if err != nil {
		return "", err
	}
	commOff, err := k.Offsetof("task_struct", "comm")
	if err != nil {
		return "", err
	}
	pidOff, err := k.Offsetof("task_struct", "pid")
	if err != nil {
		return "", err
	}
	comm := make([]byte, 16)
	if err := k.ReadVirt(comm, it+commOff); err != nil {
		return "", fmt.Errorf("read init_task.comm: %w", err)
	}
	if i := bytes.IndexByte(comm, 0); i >= 0 {
		comm = comm[:i]
	}
	pid, err := k.ReadUintVirt(it+pidOff, 4)
	if err != nil {
		return "", fmt.Errorf("read init_task.pid: %w", err)
	}
	got := fmt.Sprintf("init_task at %#x: pid %d, comm %q", it, pid, comm)
	if pid != 0 || !strings.HasPrefix(string(comm), "swapper") {
		return got, fmt.Errorf("%s, not the idle task (pid 0, swapper/0): %w", got, vmi.ErrFormat)
	}
	return got, nil
}

// ExportOptions refine ExportISF.
type ExportOptions struct {
	// DWARFPath, when set, is the kernel's -dbg vmlinux: every variable's
	// type comes from its DWARF, and the layouts from its .BTF section
	// (the vmlinux of a kernel built with BTF carries one), so that the ISF
	// types every global a reader may ask for, as dwarf2json's does.
	DWARFPath string
}

// ExportISF writes the profile as a Volatility 3 ISF: symbols at link-time
// addresses, layouts from BTF, the banner that identifies the kernel.
func (k *Kernel) ExportISF(w io.Writer, producerVersion string, opt ExportOptions) error {
	in := isf.Input{
		Symbols: k.Syms, Banner: k.Layout.Banner, ProducerVersion: producerVersion,
		SymbolShift: k.Layout.KASLRVirtual - k.Layout.SymbolShift,
	}
	if opt.DWARFPath != "" {
		vars, err := dwarfsrc.VariableTypes(opt.DWARFPath)
		if err != nil {
			return fmt.Errorf("export ISF: variable types: %w", err)
		}
		f, err := unpack.Open(opt.DWARFPath, k.unpackOpt)
		if err != nil {
			return fmt.Errorf("export ISF: %w", err)
		}
		defer f.Close()
		sec, _, err := btfsrc.ELFSection(f.Data)
		if err != nil {
			return fmt.Errorf("export ISF: the layouts come from the .BTF section of %s: %w", opt.DWARFPath, err)
		}
		in.BTF, in.GlobalTypes = sec, vars
		return isf.Write(w, in)
	}
	t, err := k.profileTypes()
	if err != nil {
		return err
	}
	bt, ok := t.(*btfsrc.Types)
	if !ok || bt.Raw() == nil {
		return fmt.Errorf("export ISF: the struct layouts come from %s, not BTF", k.TypesFrom)
	}
	in.BTF = bt.Raw()
	return isf.Write(w, in)
}

// typeSource is a loaded source of struct layouts: BTF (btfsrc), DWARF
// (dwarfsrc) or a Volatility ISF (isf), each a loader into the one type graph.
type typeSource interface {
	Graph() types.Graph
}

// Types returns the type graph of the profile in use (BTF in memory,
// --btf, --dwarf or --isf), loading it on first use; types only a loaded
// module defines are found in that module's BTF in memory. The graph is
// immutable and safe to share.
func (k *Kernel) Types() (types.Graph, error) {
	src, err := k.profileTypes()
	if err != nil {
		return nil, err
	}
	k.graphOnce.Do(func() { k.graph = &kernelGraph{k: k, base: src.Graph()} })
	return k.graph, nil
}

// profileTypes returns the loaded source, loading it on first use.
func (k *Kernel) profileTypes() (typeSource, error) {
	k.typesOnce.Do(func() {
		switch {
		case k.btfPath != "":
			k.types, k.typesErr = k.loadBTFFile()
		case k.dwarfPath != "":
			t, err := dwarfsrc.Load(k.dwarfPath, k.unpackOpt)
			if err != nil {
				k.typesErr = fmt.Errorf("load DWARF: %w", err)
				return
			}
			k.types = t
			return
		case k.btfRaw != nil:
			k.types, k.typesErr = loadTypes(btfsrc.Parse(k.btfRaw))
		case k.noTypes != nil:
			k.typesErr = k.noTypes
			return
		default:
			k.types, k.typesErr = loadTypes(k.typesFromMemory())
		}
		if k.typesErr != nil {
			k.typesErr = fmt.Errorf("load BTF: %w", k.typesErr)
		}
	})
	return k.types, k.typesErr
}

// loadTypes keeps a nil *btfsrc.Types out of the typeSource interface.
func loadTypes(t *btfsrc.Types, err error) (typeSource, error) {
	if err != nil {
		return nil, err
	}
	return t, nil
}

// typesFromMemory finds the kernel's BTF next to the located kernel image,
// for symbols given as a file and no --btf.
func (k *Kernel) typesFromMemory() (*btfsrc.Types, error) {
	size := clipToRAM(k.Target, k.Layout.TextPhys, 2*imageSpan)
	raw, off, err := btfmem.Find(PhysReaderAt{Phys: k.Target, Base: k.Layout.TextPhys, Size: size}, int64(size))
	if err != nil {
		return nil, vmi.Detailed(vmi.Details(err), ErrNoTypes, "%w; %s", err, giveTypes)
	}
	k.TypesFrom = fmt.Sprintf("BTF in memory (at physical %#x, %d bytes)", k.Layout.TextPhys+uint64(off), len(raw))
	return btfsrc.Parse(raw)
}

// Offsetof returns a member's offset in a struct (types.Offsetof over the
// graph: a bitfield is an error wrapping vmi.ErrUnsupported that says so).
func (k *Kernel) Offsetof(structName, member string) (uint64, error) {
	g, err := k.Types()
	if err != nil {
		return 0, err
	}
	return types.Offsetof(g, structName, member)
}

// Sizeof returns a type's size.
func (k *Kernel) Sizeof(typeName string) (uint64, error) {
	g, err := k.Types()
	if err != nil {
		return 0, err
	}
	return types.Sizeof(g, typeName, k.PointerSize())
}

// WriteVirt stores buf at kernel virtual address va, through the kernel's
// page tables (paging.Space.Write): it fails, storing nothing, unless the
// target was opened for writing (vmi.Writer).
func (k *Kernel) WriteVirt(buf []byte, va uint64) error { return k.Space.Write(buf, va) }

// WritePhys stores buf at guest-physical address pa.
func (k *Kernel) WritePhys(buf []byte, pa uint64) error {
	w, err := k.writer()
	if err != nil {
		return &vmi.PhysError{Addr: pa, Err: err}
	}
	return w.WritePhys(buf, pa)
}

// Writable returns nil when the target's memory may be written, else why not.
func (k *Kernel) Writable() error {
	_, err := k.writer()
	return err
}

func (k *Kernel) writer() (vmi.Writer, error) {
	w, ok := k.Target.(vmi.Writer)
	if !ok {
		return nil, fmt.Errorf("this target (%s) cannot be written: %w", k.Target.Kind(), vmi.ErrReadOnly)
	}
	if err := w.Writable(); err != nil {
		return nil, err
	}
	return w, nil
}
