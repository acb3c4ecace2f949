package linux

import (
	"bytes"
	"fmt"

	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/linux/symbols"
	"github.com/xascript/xascript/vmi/linux/vmcoreinfo"
	"github.com/xascript/xascript/vmi/paging"
)

// Layout is where the kernel was found and how.
type Layout struct {
	Mode paging.Mode
	// Root is the kernel's own page-table root (init_top_pgt, swapper_pg_dir)
	// as a CR3 value; the CPU's CR3 only when Notes say why.
	Root       uint64
	RootSource string
	// SymbolShift is added to every address in the symbol table: 0 for a
	// /proc/kallsyms captured from this boot, the KASLR virtual slide for a
	// System.map (link-time addresses).
	SymbolShift int64
	// KASLRVirtual is run-time _text minus its default address (the
	// kernel's kaslr_offset()).
	KASLRVirtual int64
	// TextPhys is the physical address of _text; KASLRPhysical is its
	// distance from the default physical load address (16 MiB).
	TextPhys      uint64
	KASLRPhysical int64
	Banner        string
	// Notes are findings worth telling the user (a CPU root that did not
	// map the kernel, for instance).
	Notes []string
}

// Kernel address-space facts (arch/x86/include/asm/page_{64,32}_types.h,
// Documentation/arch/x86/x86_64/mm.rst).
const (
	kernelAlign        = 2 << 20 // KASLR moves the kernel in 2 MiB steps (at least)
	defaultLoadPhys    = 0x100_0000
	startKernelMap64   = 0xffff_ffff_8000_0000
	kernelMapEnd64     = 0xffff_ffff_c000_0000 // KERNEL_IMAGE_SIZE is 1 GiB with KASLR
	defaultText64      = 0xffff_ffff_8100_0000
	pageOffset32       = 0xc000_0000
	kernelMapEnd32     = 0xf800_0000
	defaultText32      = 0xc100_0000
	bannerPrefix       = "Linux version "
	maxBannerLen       = 512
	maxBannerCands     = 16
	maxScannedChunks   = 1 << 20 // 2 TiB of RAM in 2 MiB chunks: a bound against absurd memory maps
	defaultLoadPhysStr = "16 MiB"
)

type rootCandidate struct {
	mode    paging.Mode
	root    uint64
	source  string
	fromCPU bool // a vCPU's CR3: used to find the kernel's own root
}

// Locate finds the kernel in t: the paging mode, the page-table root, and
// the slides that turn the symbol table's addresses into run-time ones.
// Every candidate root is validated by reading the kernel banner through it.
//
// The root kept is the kernel's own (init_top_pgt on x86-64, swapper_pg_dir
// on i386), as LibVMI and Volatility use: a vCPU's CR3 belongs to whichever
// task ran last, and on a live guest that task may exit and its page tables
// be freed and reused while a monitor still walks them. The CPU's CR3 only
// finds the slides and checks the kernel's root; it stays the root only when
// the kernel's cannot be found or does not map the kernel (said in Notes).
func Locate(t vmi.Target, syms *symbols.Table) (Layout, *paging.Space, error) {
	return locate(t, syms, nil)
}

// anchor is kernel data whose bytes identify the kernel: linux_banner's
// "Linux version ", or, for a symbol table with text symbols only,
// init_uts_ns's utsname ("Linux" in a 65-byte field, then the release)
// found through VMCOREINFO.
type anchor struct {
	name string
	va   uint64 // in the symbol table's addresses
	want []byte // the bytes at va
	// also, when not empty, must sit at va+alsoOff.
	alsoOff uint64
	also    []byte
}

func (a anchor) at(space *paging.Space, va uint64) bool {
	buf := make([]byte, len(a.want))
	if space.Read(buf, va) != nil || !bytes.Equal(buf, a.want) {
		return false
	}
	if len(a.also) == 0 {
		return true
	}
	buf = make([]byte, len(a.also))
	return space.Read(buf, va+a.alsoOff) == nil && bytes.Equal(buf, a.also)
}

// struct new_utsname: six fields of __NEW_UTS_LEN+1 bytes
// (include/uapi/linux/utsname.h).
const utsFieldLen = 65

// vmcoreinfoLookup returns a VMCOREINFO symbol in the symbol table's
// addresses: VMCOREINFO holds run-time addresses of the boot that wrote it,
// the table may come from another boot (a cached profile), and _stext,
// which both name, gives the difference. Only symbols in the kernel image
// qualify: a few entries (pointerValued) hold a pointer's value instead.
func vmcoreinfoLookup(syms *symbols.Table, vmci *vmcoreinfo.Info, name string) (uint64, bool) {
	if vmci == nil || pointerValued[name] {
		return 0, false
	}
	v, ok := vmci.Symbol(name)
	vs, ok1 := vmci.Symbol("_stext")
	ts, ok2 := syms.Lookup("_stext")
	if !ok || !ok1 || !ok2 {
		return 0, false
	}
	span := uint64(imageSpan)
	if ts > 0xffff_ffff {
		span = kernelMapEnd64 - startKernelMap64
	}
	if v < vs || v-vs >= span {
		return 0, false
	}
	return v - vs + ts, true
}

// pointerValued are the SYMBOL() entries that VMCOREINFO_SYMBOL_ARRAY
// writes for a pointer variable: the value is where it points (the direct
// map, vmemmap), not where the variable is.
var pointerValued = map[string]bool{"mem_section": true, "vmemmap": true}

// locate is Locate with VMCOREINFO (when not nil) standing in for the data
// symbols that a table of text symbols only lacks: the root symbol and an
// anchor in place of linux_banner.
func locate(t vmi.Target, syms *symbols.Table, vmci *vmcoreinfo.Info) (Layout, *paging.Space, error) {
	lookup := func(name string) (uint64, bool) {
		if a, ok := syms.Lookup(name); ok {
			return a, true
		}
		return vmcoreinfoLookup(syms, vmci, name)
	}
	var anc anchor
	if banner, ok := syms.Lookup("linux_banner"); ok {
		anc = anchor{name: "linux_banner", va: banner, want: []byte(bannerPrefix)}
	} else if uts, ok := vmcoreinfoLookup(syms, vmci, "init_uts_ns"); ok {
		nameOff, _ := vmci.Offset("uts_namespace", "name")
		sysname := make([]byte, utsFieldLen)
		copy(sysname, "Linux")
		anc = anchor{name: "init_uts_ns (from VMCOREINFO)", va: uts + nameOff, want: sysname,
			alsoOff: 2 * utsFieldLen, also: append([]byte(vmci.OSRelease), 0)}
	} else {
		why := "is it a kernel System.map or /proc/kallsyms?"
		if vmci != nil {
			why = "nor does VMCOREINFO name init_uts_ns and _stext"
		}
		return Layout{}, nil, fmt.Errorf("locate kernel: the symbol table has no linux_banner (%s)", why)
	}
	text, ok := syms.Lookup("_text")
	if !ok {
		if text, ok = syms.Lookup("_stext"); !ok {
			return Layout{}, nil, fmt.Errorf("locate kernel: the symbol table has neither _text nor _stext")
		}
	}
	is64 := text > 0xffff_ffff
	rootSym := "swapper_pg_dir"
	if is64 {
		rootSym = "init_top_pgt"
	}
	rootAddr, haveRootSym := lookup(rootSym)

	var cands []rootCandidate
	cpu := t.CPU()
	var modes []paging.Mode
	if cpu.Known {
		mode, err := paging.ModeFromCPU(cpu)
		if err != nil {
			return Layout{}, nil, fmt.Errorf("locate kernel: CPU state of %s: %w", t.Kind(), err)
		}
		modes = []paging.Mode{mode}
		cands = append(cands, rootCandidate{mode, cpu.CR3, "CPU state (CR3)", true})
	} else if is64 {
		modes = []paging.Mode{paging.IA32e, paging.LA57}
	} else {
		modes = []paging.Mode{paging.PAE, paging.Legacy32}
	}
	// Candidates from the profile's root symbol need the physical slide:
	// a scan of RAM, done only when the CPU's root is missing or fails (it
	// touches a page every 2 MiB, which is slow and bloats RSS on large
	// guests).
	var textPAs []uint64
	scanned := false
	profileCands := func() []rootCandidate {
		if scanned {
			return nil
		}
		scanned = true
		textPAs = scanBanner(t, anc, text)
		var out []rootCandidate
		if haveRootSym && rootAddr >= text {
			for _, tp := range textPAs {
				for _, m := range modes {
					out = append(out, rootCandidate{m, tp + (rootAddr - text),
						fmt.Sprintf("%s (kernel found at physical %#x)", rootSym, tp), false})
				}
			}
		}
		return out
	}
	if len(cands) == 0 {
		cands = profileCands()
	}
	var failures []string
	for i := 0; i < len(cands); i++ {
		c := cands[i]
		space := paging.New(t, c.mode, c.root)
		shift, textPA, err := findShift(space, anc, text, textPAs, is64)
		if err != nil {
			failures = append(failures, fmt.Sprintf("root %#x from %s (%v paging): %v", c.root, c.source, c.mode, err))
			if i == len(cands)-1 {
				cands = append(cands, profileCands()...)
			}
			continue
		}
		root, source, ownNote := c.root, c.source, ""
		if c.fromCPU {
			// The CPU's CR3 found the kernel; keep the kernel's own root
			// instead, which lives as long as the kernel does.
			own, why := ownRoot(t, space, c.mode, rootSym, rootAddr, haveRootSym, anc, text, shift, textPA)
			if own != nil {
				space = own
				root = own.Root()
				source = fmt.Sprintf("%s (checked against the CPU's CR3 %#x)", rootSym, c.root)
			} else {
				ownNote = why
			}
		}
		l := Layout{Mode: c.mode, Root: root, RootSource: source, SymbolShift: shift, TextPhys: textPA}
		defText := uint64(defaultText32)
		if is64 {
			defText = defaultText64
		}
		l.KASLRVirtual = int64(text + uint64(shift) - defText)
		l.KASLRPhysical = int64(textPA - defaultLoadPhys)
		if anc.name == "linux_banner" {
			l.Banner = readBanner(space, anc.va+uint64(shift))
		} else {
			l.Banner = utsBanner(space, anc.va+uint64(shift))
			l.Notes = append(l.Notes, "no linux_banner symbol: located through "+anc.name)
		}
		for _, f := range failures {
			l.Notes = append(l.Notes, "rejected "+f)
		}
		if ownNote != "" {
			l.Notes = append(l.Notes, ownNote)
		}
		space.Flush()
		return l, space, nil
	}
	if len(cands) == 0 {
		why := "no CPU state in " + t.Kind()
		if !haveRootSym {
			why += " and no " + rootSym + " symbol"
		} else {
			why += fmt.Sprintf(" and %s (%q) was not found in physical memory", anc.name, anc.want[:min(len(anc.want), 16)])
		}
		return Layout{}, nil, fmt.Errorf("locate kernel: no page-table root: %s", why)
	}
	// Each root's rejection is a detail: joined, they ran to kilobytes.
	return Layout{}, nil, vmi.Detailed(failures, nil, "locate kernel in %s: none of %d candidate page-table roots maps the kernel",
		t.Kind(), len(failures))
}

// ownRoot returns the kernel's own page-table root, found through cpuSpace
// (the CPU's CR3, which maps the kernel under symbol shift shift with _text
// at textPA): the root symbol's physical address, accepted when it maps the
// kernel as cpuSpace does (the anchor, _text, and the root symbol itself).
// Otherwise it returns nil and why, for the notes.
func ownRoot(t vmi.Target, cpuSpace *paging.Space, mode paging.Mode, rootSym string, rootAddr uint64, haveRootSym bool,
	anc anchor, text uint64, shift int64, textPA uint64) (*paging.Space, string) {
	keep := fmt.Sprintf("the CPU's CR3 %#x kept as the root (a task's page tables, which a live guest may free)", cpuSpace.Root())
	if !haveRootSym {
		return nil, fmt.Sprintf("%s: no %s symbol", keep, rootSym)
	}
	va := rootAddr + uint64(shift)
	pa, err := cpuSpace.Translate(va)
	if err != nil {
		return nil, fmt.Sprintf("%s: %s %#x: %v", keep, rootSym, va, err)
	}
	if pa%4096 != 0 {
		return nil, fmt.Sprintf("%s: %s %#x is at physical %#x, not a page boundary", keep, rootSym, va, pa)
	}
	own := paging.New(t, mode, pa)
	if !anc.at(own, anc.va+uint64(shift)) {
		return nil, fmt.Sprintf("%s: %s at physical %#x does not map %s", keep, rootSym, pa, anc.name)
	}
	for _, m := range []struct{ va, pa uint64 }{{text + uint64(shift), textPA}, {va, pa}} {
		if got, err := own.Translate(m.va); err != nil || got != m.pa {
			return nil, fmt.Sprintf("%s: %s at physical %#x maps %#x to %#x (%v), the CPU's CR3 to %#x",
				keep, rootSym, pa, m.va, got, err, m.pa)
		}
	}
	return own, ""
}

// scanBanner returns the physical addresses of _text for every place where
// the anchor's bytes (the banner's prefix) sit at an address congruent to
// the anchor modulo the kernel's 2 MiB alignment.
func scanBanner(t vmi.Target, anc anchor, text uint64) []uint64 {
	off := anc.va % kernelAlign
	delta := anc.va - text
	var found []uint64
	buf := make([]byte, len(anc.want))
	chunks := 0
	for _, r := range t.MemoryMap() {
		for base := r.Start - r.Start%kernelAlign; base < r.End; base += kernelAlign {
			if chunks++; chunks > maxScannedChunks || len(found) >= maxBannerCands {
				return found
			}
			pa := base + off
			if pa < r.Start || pa+uint64(len(buf)) > r.End || pa < delta {
				continue
			}
			if t.ReadPhys(buf, pa) == nil && bytes.Equal(buf, anc.want) {
				found = append(found, pa-delta)
			}
			if base+kernelAlign < base { // wrapped at the top of the address space
				break
			}
		}
	}
	return found
}

// findShift finds the symbol shift under which the anchor (linux_banner)
// reads as expected through space, and the physical address of _text. It
// first tries the symbols as they are (a kallsyms capture), then every 2 MiB
// step of the kernel map.
func findShift(space *paging.Space, anc anchor, text uint64, textPAs []uint64, is64 bool) (int64, uint64, error) {
	if anc.at(space, anc.va) {
		pa, err := space.Translate(text)
		if err != nil {
			return 0, 0, fmt.Errorf("banner found but _text %#x does not translate: %w", text, err)
		}
		return 0, pa, nil
	}
	lo, hi := uint64(pageOffset32), uint64(kernelMapEnd32)
	if is64 {
		lo, hi = startKernelMap64, kernelMapEnd64
	}
	var lastErr error
	for va := lo; va < hi; va += kernelAlign {
		pa, err := space.Translate(va)
		if err != nil {
			lastErr = err
			continue
		}
		if len(textPAs) > 0 && !contains(textPAs, pa) {
			continue
		}
		shift := va - text
		if anc.at(space, anc.va+shift) {
			return int64(shift), pa, nil
		}
	}
	if lastErr != nil {
		return 0, 0, fmt.Errorf("%s %#x is not mapped at its symbol address nor at any 2 MiB slide (last fault: %v)", anc.name, anc.va, lastErr)
	}
	return 0, 0, fmt.Errorf("%s %#x is not mapped at its symbol address nor at any 2 MiB slide", anc.name, anc.va)
}

// utsBanner reads `uname -srv` from a utsname: "Linux <release> <version>".
func utsBanner(space *paging.Space, va uint64) string {
	buf := make([]byte, 4*utsFieldLen)
	if space.Read(buf, va) != nil {
		return ""
	}
	field := func(i int) string {
		f := buf[i*utsFieldLen : (i+1)*utsFieldLen]
		if j := bytes.IndexByte(f, 0); j >= 0 {
			f = f[:j]
		}
		if !printableASCII(f) {
			return "?"
		}
		return string(f)
	}
	return field(0) + " " + field(2) + " " + field(3)
}

func printableASCII(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

func readBanner(space *paging.Space, va uint64) string {
	buf := make([]byte, 0, maxBannerLen)
	chunk := make([]byte, 64)
	for len(buf) < maxBannerLen {
		if space.Read(chunk, va+uint64(len(buf))) != nil {
			break
		}
		if i := bytes.IndexAny(chunk, "\x00\n"); i >= 0 {
			return string(append(buf, chunk[:i]...))
		}
		buf = append(buf, chunk...)
	}
	return string(buf)
}

func contains(xs []uint64, x uint64) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
