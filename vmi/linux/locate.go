package linux

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/linux/symbols"
	"github.com/xascript/xascript/vmi/paging"
)

// Layout is where the kernel was found and how.
type Layout struct {
	Mode       paging.Mode
	Root       uint64 // page-table root, as a CR3 value
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
	mode   paging.Mode
	root   uint64
	source string
}

// Locate finds the kernel in t: the paging mode, the page-table root, and
// the slides that turn the symbol table's addresses into run-time ones.
// Every candidate root is validated by reading the kernel banner through it.
func Locate(t vmi.Target, syms *symbols.Table) (Layout, *paging.Space, error) {
	banner, ok := syms.Lookup("linux_banner")
	if !ok {
		return Layout{}, nil, fmt.Errorf("locate kernel: the symbol table has no linux_banner (is it a kernel System.map or /proc/kallsyms?)")
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
	rootAddr, haveRootSym := syms.Lookup(rootSym)

	var cands []rootCandidate
	cpu := t.CPU()
	var modes []paging.Mode
	if cpu.Known {
		mode, err := paging.ModeFromCPU(cpu)
		if err != nil {
			return Layout{}, nil, fmt.Errorf("locate kernel: CPU state of %s: %w", t.Kind(), err)
		}
		modes = []paging.Mode{mode}
		cands = append(cands, rootCandidate{mode, cpu.CR3, "CPU state (CR3)"})
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
		textPAs = scanBanner(t, banner, text)
		var out []rootCandidate
		if haveRootSym && rootAddr >= text {
			for _, tp := range textPAs {
				for _, m := range modes {
					out = append(out, rootCandidate{m, tp + (rootAddr - text),
						fmt.Sprintf("%s at physical %#x (kernel found at %#x)", rootSym, tp+(rootAddr-text), tp)})
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
		shift, textPA, err := findShift(space, banner, text, textPAs, is64)
		if err != nil {
			failures = append(failures, fmt.Sprintf("%s %#x (%v paging): %v", c.source, c.root, c.mode, err))
			if i == len(cands)-1 {
				cands = append(cands, profileCands()...)
			}
			continue
		}
		l := Layout{Mode: c.mode, Root: c.root, RootSource: c.source, SymbolShift: shift, TextPhys: textPA}
		defText := uint64(defaultText32)
		if is64 {
			defText = defaultText64
		}
		l.KASLRVirtual = int64(text + uint64(shift) - defText)
		l.KASLRPhysical = int64(textPA - defaultLoadPhys)
		l.Banner = readBanner(space, banner+uint64(shift))
		for _, f := range failures {
			l.Notes = append(l.Notes, "rejected "+f)
		}
		space.Flush()
		return l, space, nil
	}
	if len(cands) == 0 {
		why := "no CPU state in " + t.Kind()
		if !haveRootSym {
			why += " and no " + rootSym + " symbol"
		} else {
			why += fmt.Sprintf(" and the kernel banner (%q) was not found in physical memory", bannerPrefix)
		}
		return Layout{}, nil, fmt.Errorf("locate kernel: no page-table root: %s", why)
	}
	return Layout{}, nil, fmt.Errorf("locate kernel in %s: no candidate page-table root maps the kernel: %s",
		t.Kind(), strings.Join(failures, "; "))
}

// scanBanner returns the physical addresses of _text for every place where
// the banner's prefix sits at an address congruent to linux_banner modulo
// the kernel's 2 MiB alignment.
func scanBanner(t vmi.Target, banner, text uint64) []uint64 {
	off := banner % kernelAlign
	delta := banner - text
	var found []uint64
	buf := make([]byte, len(bannerPrefix))
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
			if t.ReadPhys(buf, pa) == nil && string(buf) == bannerPrefix {
				found = append(found, pa-delta)
			}
			if base+kernelAlign < base { // wrapped at the top of the address space
				break
			}
		}
	}
	return found
}

// findShift finds the symbol shift under which linux_banner reads as the
// banner through space, and the physical address of _text. It first tries the
// symbols as they are (a kallsyms capture), then every 2 MiB step of the
// kernel map.
func findShift(space *paging.Space, banner, text uint64, textPAs []uint64, is64 bool) (int64, uint64, error) {
	if hasBanner(space, banner) {
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
		if hasBanner(space, banner+shift) {
			return int64(shift), pa, nil
		}
	}
	if lastErr != nil {
		return 0, 0, fmt.Errorf("linux_banner %#x is not mapped at its symbol address nor at any 2 MiB slide (last fault: %v)", banner, lastErr)
	}
	return 0, 0, fmt.Errorf("linux_banner %#x is not mapped at its symbol address nor at any 2 MiB slide", banner)
}

func hasBanner(space *paging.Space, va uint64) bool {
	buf := make([]byte, len(bannerPrefix))
	return space.Read(buf, va) == nil && string(buf) == bannerPrefix
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
