package linux

import (
	"bytes"
	"fmt"
	"strings"
	"sync"

	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/linux/vmcoreinfo"
)

// vmcoreinfoState is what the Kernel knows of the guest's VMCOREINFO. It
// is the guest's, whatever profile is tried: once found it is kept; a
// failure is retried when the profile changes (the way to it may differ).
type vmcoreinfoState struct {
	mu    sync.Mutex
	found *vmcoreinfo.Found
	err   error
	tried bool
	// From the profile: whether its table has text symbols only (known
	// when textOnlySet), the release to scan for, and where a cached
	// profile's run found VMCOREINFO.
	textOnly, textOnlySet bool
	release               string
	hintPA                uint64
}

func (s *vmcoreinfoState) useProfile(textOnly bool, release string, hintPA uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.textOnly, s.textOnlySet, s.release, s.hintPA = textOnly, true, release, hintPA
	if s.found == nil {
		s.tried, s.err = false, nil
	}
}

// Vmcoreinfo returns the guest's VMCOREINFO, found on first use: in the
// dump's VMCOREINFO note when it has one, through the kernel's
// vmcoreinfo_data pointer when the symbols name it, else (a
// table of text symbols only) where a cached profile saw it, else by a scan
// of RAM for its first line.
func (k *Kernel) Vmcoreinfo() (*vmcoreinfo.Found, error) {
	s := &k.vmci
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.tried {
		s.tried = true
		s.found, s.err = k.findVmcoreinfo()
	}
	return s.found, s.err
}

// noteSource is a target whose dump carries a VMCOREINFO note (kdump's
// /proc/vmcore; vmi/dump.VMCoreInfoProvider).
type noteSource interface {
	VMCoreInfo() (string, bool)
}

// findVmcoreinfo runs with k.vmci.mu held. Before the kernel is located
// (a table without linux_banner), only the physical ways are open.
//
// A dump's VMCOREINFO note comes first: it is what the kernel wrote when
// it crashed. In a kdump vmcore it is also the only complete copy in
// reach: a kernel with a crash kernel loaded points vmcoreinfo_data at a
// safe copy inside the crashkernel= region when it panics
// (crash_save_vmcoreinfo), and /proc/vmcore leaves that region out.
func (k *Kernel) findVmcoreinfo() (*vmcoreinfo.Found, error) {
	s := &k.vmci
	if ns, ok := k.Target.(noteSource); ok {
		if text, ok := ns.VMCoreInfo(); ok {
			if in, err := vmcoreinfo.Parse([]byte(text)); err == nil {
				return &vmcoreinfo.Found{Info: in, Raw: []byte(text), How: "in the dump's VMCOREINFO note"}, nil
			}
		}
	}
	data, haveData := k.Syms.Lookup("vmcoreinfo_data")
	if haveData && k.Space != nil {
		shift := uint64(k.Layout.SymbolShift)
		var size uint64
		if a, ok := k.Syms.Lookup("vmcoreinfo_size"); ok {
			size = a + shift
		}
		f, err := vmcoreinfo.FromPointer(k.Space.Read, k.PointerSize(), data+shift, size)
		if err != nil {
			return nil, err
		}
		if pa, err := k.Space.Translate(f.VA); err == nil {
			f.PA = pa
			f.How = fmt.Sprintf("at %#x, physical %#x (the kernel's vmcoreinfo_data)", f.VA, pa)
		}
		return f, nil
	}
	if !haveData && !k.textSymbolsOnlyLocked() {
		return nil, fmt.Errorf("vmcoreinfo: the symbol table has no vmcoreinfo_data (kernel built without CONFIG_CRASH_CORE?): %w", vmi.ErrNotFound)
	}
	if s.hintPA != 0 {
		if f, err := vmcoreinfo.AtPhys(k.Target, s.hintPA, s.release); err == nil {
			f.How = fmt.Sprintf("at physical %#x (where the cached profile's run found it)", f.PA)
			return f, nil
		}
	}
	return vmcoreinfo.Scan(k.Target, k.Target.MemoryMap(), s.release)
}

// imageBanner finds linux_banner's text for a kernel whose symbols do not
// name it: the banner in the image that ends with init_uts_ns's version
// (the first one may be an older copy: 6.1's init/version.c keeps a weak
// linux_banner without the build number). It returns the banner and its
// address in the symbol table's terms; a cached profile remembers that
// (hint, hintVA), so a later run reads one string.
func (k *Kernel) imageBanner(hint string, hintVA uint64) (string, uint64, bool) {
	shift := uint64(k.Layout.SymbolShift)
	if hint != "" && hintVA != 0 {
		buf := make([]byte, len(hint))
		if k.Space.Read(buf, hintVA+shift) == nil && string(buf) == hint {
			return hint, hintVA, true
		}
	}
	f, _ := k.Vmcoreinfo()
	text, ok := k.textSymbol()
	if f == nil || !ok {
		return "", 0, false
	}
	uts, ok := vmcoreinfoLookup(k.Syms, f.Info, "init_uts_ns")
	if !ok {
		return "", 0, false
	}
	nameOff, _ := f.Info.Offset("uts_namespace", "name")
	field := make([]byte, utsFieldLen)
	if k.Space.Read(field, uts+shift+nameOff+3*utsFieldLen) != nil {
		return "", 0, false
	}
	version, _, _ := bytes.Cut(field, []byte{0})
	if len(version) == 0 {
		return "", 0, false
	}
	head, tail := bannerPrefix+f.Info.OSRelease+" ", " "+string(version)
	size := clipToRAM(k.Target, k.Layout.TextPhys, imageSpan)
	b, off, ok := findBannerWhere(PhysReaderAt{Phys: k.Target, Base: k.Layout.TextPhys, Size: size}, size,
		func(b string) bool { return strings.HasPrefix(b, head) && strings.HasSuffix(b, tail) })
	if !ok {
		return "", 0, false
	}
	return b, text + off, true
}

func (k *Kernel) textSymbol() (uint64, bool) {
	if a, ok := k.Syms.Lookup("_text"); ok {
		return a, true
	}
	return k.Syms.Lookup("_stext")
}

// TextSymbolsOnly reports whether the symbol table has text symbols only: a
// kernel built without CONFIG_KALLSYMS_ALL, read from memory or from its
// /proc/kallsyms.
func (k *Kernel) TextSymbolsOnly() bool {
	k.vmci.mu.Lock()
	defer k.vmci.mu.Unlock()
	return k.textSymbolsOnlyLocked()
}

func (k *Kernel) textSymbolsOnlyLocked() bool {
	s := &k.vmci
	if !s.textOnlySet {
		s.textOnly, s.textOnlySet = textSymbolsOnly(k.Syms), true
	}
	return s.textOnly
}

// guestBuildID returns the guest's build id ("" when its VMCOREINFO has
// none or was not found) and where it came from.
func (k *Kernel) guestBuildID() (id, where string) {
	f, err := k.Vmcoreinfo()
	if err != nil {
		return "", "no VMCOREINFO: " + err.Error()
	}
	return f.Info.BuildID, "VMCOREINFO " + f.How
}

// checkVmcoreinfoBoot notes a VMCOREINFO that is not this boot's (a stale
// copy whose _stext is not the located kernel's). Its symbols are used
// relative to _stext, so they still fit the kernel that was located.
func (k *Kernel) checkVmcoreinfoBoot() {
	f, _ := k.Vmcoreinfo()
	if f == nil {
		return
	}
	vs, ok1 := f.Info.Symbol("_stext")
	ts, ok2 := k.Syms.Lookup("_stext")
	if ok1 && ok2 && vs != ts+uint64(k.Layout.SymbolShift) {
		k.notes = append(k.notes, fmt.Sprintf("VMCOREINFO %s says _stext is %#x, the located kernel's is %#x: another boot's copy",
			f.How, vs, ts+uint64(k.Layout.SymbolShift)))
	}
}

// noDataSymbols says why the symbol table lacks data symbols.
func (k *Kernel) noDataSymbols() string {
	if k.TextSymbolsOnly() {
		return fmt.Sprintf("%s has text symbols only (built without CONFIG_KALLSYMS_ALL)", k.symbolsSource())
	}
	return fmt.Sprintf("%s has no linux_banner", k.symbolsSource())
}

// symbolsSource names the symbol table, without the cache path and table
// details of SymbolsFrom.
func (k *Kernel) symbolsSource() string {
	if strings.Contains(k.SymbolsFrom, "kallsyms tables") {
		return fmt.Sprintf("the kernel's kallsyms in memory (%d symbols)", k.Syms.Len())
	}
	return fmt.Sprintf("the symbol table %s (%d symbols)", k.SymbolsFrom, k.Syms.Len())
}

// missingSymbol says why a symbol is unknown and what would supply it, in
// one line a script's error can carry.
func (k *Kernel) missingSymbol(name string) error {
	f, ferr := k.Vmcoreinfo()
	if !k.TextSymbolsOnly() {
		if f != nil {
			return vmi.Detailed(nil, vmi.ErrNotFound, "symbol %q: not in the symbol table (%d symbols) nor in its VMCOREINFO (%d symbols)",
				name, k.Syms.Len(), len(f.Info.Symbols))
		}
		return vmi.Detailed(nil, vmi.ErrNotFound, "symbol %q: not in the symbol table (%d symbols)", name, k.Syms.Len())
	}
	src := "the kernel's kallsyms in memory"
	if !strings.Contains(k.SymbolsFrom, "kallsyms tables") {
		src = "the symbol table " + k.SymbolsFrom
	}
	if f != nil {
		return vmi.Detailed(nil, vmi.ErrNotFound,
			"symbol %q: not in %s (text only: no CONFIG_KALLSYMS_ALL) nor in its VMCOREINFO; give --symbols System.map or --isf FILE",
			name, src)
	}
	return vmi.Detailed(nil, vmi.ErrNotFound,
		"symbol %q: not in %s (text only: no CONFIG_KALLSYMS_ALL), and no VMCOREINFO (%v); give --symbols System.map or --isf FILE",
		name, src, ferr)
}

// releaseOf is the release in a banner: "Linux version 6.1.0-56-cloud-amd64
// (...)" gives 6.1.0-56-cloud-amd64.
func releaseOf(banner string) string {
	rest, ok := strings.CutPrefix(banner, bannerPrefix)
	if !ok {
		return ""
	}
	if i := strings.IndexByte(rest, ' '); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// VmcoreinfoSummary is what `xascript info` says about VMCOREINFO.
type VmcoreinfoSummary struct {
	Found     bool
	Where     string
	OSRelease string
	BuildID   string
	Symbols   int // SYMBOL() entries
	// Added counts those the symbol table lacks: Symbol answers them
	// from VMCOREINFO.
	Added     int
	Malformed int
	Error     string
}

// VmcoreinfoSummary finds the guest's VMCOREINFO (if not yet) and says
// what it offered.
func (k *Kernel) VmcoreinfoSummary() VmcoreinfoSummary {
	f, err := k.Vmcoreinfo()
	if err != nil {
		return VmcoreinfoSummary{Error: err.Error()}
	}
	s := VmcoreinfoSummary{Found: true, Where: f.How, OSRelease: f.Info.OSRelease, BuildID: f.Info.BuildID,
		Symbols: len(f.Info.Symbols), Malformed: f.Info.Malformed}
	for name := range f.Info.Symbols {
		if !k.hasSymbol(name) {
			if _, ok := vmcoreinfoLookup(k.Syms, f.Info, name); ok {
				s.Added++
			}
		}
	}
	return s
}
