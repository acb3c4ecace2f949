package linux

import (
	"fmt"
	"strings"
	"sync"

	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/linux/modsyms"
	"github.com/xascript/xascript/vmi/paging"
)

// Reverse symbol lookups (SymbolAt) and the loaded modules' symbols: the
// kernel image's addresses are named from its symbol table, the modules'
// from each module's own table in memory (package modsyms), read again
// whenever the target has run, since modules come and go.

// moduleSymbols caches the modules' symbol tables for one generation of
// the target (a dump has one).
type moduleSymbols struct {
	mu  sync.Mutex
	gen uint64
	ok  bool // tab/err hold the read for generation gen
	tab *modsyms.Table
	err error

	layoutOnce sync.Once
	layout     modsyms.Layout
	layoutErr  error

	// The kernel image's bounds, which do not change once it is located.
	imageOnce sync.Once
	image     kernelImage
	imageErr  error
}

// generation is the target's generation, 0 for a target that never changes.
func (k *Kernel) generation() uint64 {
	if g, ok := k.Target.(vmi.Generationer); ok {
		return g.Generation().Load()
	}
	return 0
}

// ModuleSymbols returns the loaded modules and their symbol tables, read
// from guest memory on first use and again once the target has run.
func (k *Kernel) ModuleSymbols() (*modsyms.Table, error) {
	c := &k.modSyms
	c.mu.Lock()
	defer c.mu.Unlock()
	gen := k.generation()
	if c.ok && c.gen == gen {
		return c.tab, c.err
	}
	c.tab, c.err = k.readModuleSymbols()
	c.gen, c.ok = gen, true
	return c.tab, c.err
}

func (k *Kernel) readModuleSymbols() (*modsyms.Table, error) {
	c := &k.modSyms
	c.layoutOnce.Do(func() { c.layout, c.layoutErr = k.moduleSymbolLayout() })
	if c.layoutErr != nil {
		return nil, fmt.Errorf("module symbols: %w", c.layoutErr)
	}
	head, ok := k.kernelSymbol("modules")
	if !ok {
		return nil, fmt.Errorf("module symbols: no symbol \"modules\" (the module list): %w", vmi.ErrNotFound)
	}
	t, err := modsyms.Read(k, head, c.layout, modsyms.Limits{})
	if err != nil {
		return nil, fmt.Errorf("module symbols: %w", err)
	}
	return t, nil
}

// moduleSymbolLayout reads the offsets modsyms follows from the kernel's
// struct layouts: struct module, its memory blocks (module_layout up to
// 6.3, module_memory since 6.4) and struct mod_kallsyms.
func (k *Kernel) moduleSymbolLayout() (modsyms.Layout, error) {
	l := modsyms.Layout{Ptr: k.PointerSize()}
	// MODULE_NAME_LEN is MAX_PARAM_PREFIX_LEN, 64 - sizeof(unsigned long),
	// in every kernel version (include/linux/moduleparam.h).
	l.NameLen = 64 - uint64(l.Ptr)
	var err error
	for _, f := range []struct {
		dst           *uint64
		strct, member string
	}{{&l.List, "module", "list"}, {&l.Name, "module", "name"}, {&l.Kallsyms, "module", "kallsyms"},
		{&l.Symtab, "mod_kallsyms", "symtab"}, {&l.NumSymtab, "mod_kallsyms", "num_symtab"},
		{&l.Strtab, "mod_kallsyms", "strtab"}} {
		if *f.dst, err = k.Offsetof(f.strct, f.member); err != nil {
			return l, err
		}
	}
	if l.State, err = k.Offsetof("module", "state"); err == nil {
		l.HasState = true
	}
	if l.Typetab, err = k.Offsetof("mod_kallsyms", "typetab"); err == nil {
		l.HasTypetab = true
	}
	if err := k.exportLayout(&l); err != nil {
		return l, err
	}
	// 6.4+: mem[MOD_MEM_NUM_TYPES], indexed by enum mod_mem_type, whose
	// values have not changed since (include/linux/module.h).
	if _, err := k.Offsetof("module", "mem[0].base"); err == nil {
		kinds := []string{"text", "data", "rodata", "ro_after_init", "init_text", "init_data", "init_rodata"}
		for i, kind := range kinds {
			r := modsyms.Region{Kind: kind, Text: modsyms.TextNone}
			if kind == "text" || kind == "init_text" {
				r.Text = modsyms.TextAll
			}
			if r.Base, err = k.Offsetof("module", fmt.Sprintf("mem[%d].base", i)); err != nil {
				return l, err
			}
			if r.Size, err = k.Offsetof("module", fmt.Sprintf("mem[%d].size", i)); err != nil {
				return l, err
			}
			l.Regions = append(l.Regions, r)
		}
		return l, nil
	}
	for _, layout := range []string{"core_layout", "init_layout"} {
		r := modsyms.Region{Kind: strings.TrimSuffix(layout, "_layout"), Text: modsyms.TextMember}
		for _, f := range []struct {
			dst    *uint64
			member string
		}{{&r.Base, "base"}, {&r.Size, "size"}, {&r.TextSize, "text_size"}} {
			if *f.dst, err = k.Offsetof("module", layout+"."+f.member); err != nil {
				return l, err
			}
		}
		l.Regions = append(l.Regions, r)
	}
	return l, nil
}

// exportLayout fills in where a module's exports are (module.syms,
// num_syms and struct kernel_symbol), for the case of the type letters.
// A kernel without them (no CONFIG_MODULES exports) leaves HasExports
// false.
func (k *Kernel) exportLayout(l *modsyms.Layout) error {
	var err error
	if l.Syms, err = k.Offsetof("module", "syms"); err != nil {
		return nil
	}
	if l.NumSyms, err = k.Offsetof("module", "num_syms"); err != nil {
		return nil
	}
	if l.Ksym.Size, err = k.Sizeof("kernel_symbol"); err != nil {
		return err
	}
	if l.Ksym.Value, err = k.Offsetof("kernel_symbol", "value_offset"); err == nil {
		l.Ksym.Prel32 = true
		l.Ksym.Name, err = k.Offsetof("kernel_symbol", "name_offset")
	} else if l.Ksym.Value, err = k.Offsetof("kernel_symbol", "value"); err == nil {
		l.Ksym.Name, err = k.Offsetof("kernel_symbol", "name")
	}
	if err != nil {
		return err
	}
	l.HasExports = true
	return nil
}

// moduleSymbol finds name in the loaded modules' tables: "module:name"
// in that module, else the first module that defines name.
func (k *Kernel) moduleSymbol(name string) (uint64, bool) {
	t, err := k.ModuleSymbols()
	if err != nil {
		return 0, false
	}
	if mod, sym, ok := strings.Cut(name, ":"); ok {
		return t.LookupIn(mod, sym)
	}
	a, _, ok := t.Lookup(name)
	return a, ok
}

// kernelImage is where the kernel image's symbols name addresses: [lo, hi)
// and its text ranges.
type kernelImage struct {
	lo, hi uint64
	text   [][2]uint64
}

func (k *Kernel) kernelImage() (kernelImage, error) {
	c := &k.modSyms
	c.imageOnce.Do(func() { c.image, c.imageErr = k.findKernelImage() })
	return c.image, c.imageErr
}

func (k *Kernel) findKernelImage() (kernelImage, error) {
	var im kernelImage
	lo, ok := k.kernelSymbol("_text")
	if !ok {
		if lo, ok = k.kernelSymbol("_stext"); !ok {
			return im, fmt.Errorf("the symbol table has neither _text nor _stext: %w", vmi.ErrNotFound)
		}
	}
	im.lo = lo
	for _, r := range [][2]string{{"_stext", "_etext"}, {"_sinittext", "_einittext"}} {
		s, ok1 := k.kernelSymbol(r[0])
		e, ok2 := k.kernelSymbol(r[1])
		if ok1 && ok2 && s < e {
			im.text = append(im.text, [2]uint64{s, e})
			im.hi = max(im.hi, e)
		}
	}
	// With data symbols (CONFIG_KALLSYMS_ALL) the image runs to _end, as
	// the kernel's is_ksym_addr has it; with text symbols only, to the end
	// of its text.
	if end, ok := k.kernelSymbol("_end"); ok && end > im.lo {
		im.hi = max(im.hi, end)
	}
	if im.hi <= im.lo {
		return im, fmt.Errorf("no end of the kernel image (_end, _etext) above _text %#x: %w", im.lo, vmi.ErrNotFound)
	}
	return im, nil
}

func (im kernelImage) isText(a uint64) bool {
	for _, r := range im.text {
		if a >= r[0] && a < r[1] {
			return true
		}
	}
	return false
}

// unshifted is the inverse of shifted: a run-time address as the symbol
// table has it.
func (k *Kernel) unshifted(a uint64) uint64 {
	if a < 1<<32 && (k.Layout.Mode == paging.IA32e || k.Layout.Mode == paging.LA57) {
		return a
	}
	return a - uint64(k.Layout.SymbolShift)
}

// ErrOutsideCode is matched (errors.Is) by a SymbolAt error for an address
// that is neither in the kernel image nor in any module's memory: for a
// pointer that should lead to kernel code (a system call table entry), a
// sign that it leads elsewhere.
var ErrOutsideCode = fmt.Errorf("outside the kernel image and its modules: %w", vmi.ErrNotFound)

// SymbolAt names the kernel or module symbol that addr lies in, as the
// kernel's kallsyms_lookup does (%pS in a backtrace): the nearest symbol at
// or below addr, in the kernel image (_text to _end) or in the memory of
// the module that holds addr.
func (k *Kernel) SymbolAt(addr uint64) (vmi.SymbolInfo, error) {
	im, imErr := k.kernelImage()
	if imErr == nil && addr >= im.lo && addr < im.hi {
		if sym, ok := k.Syms.NearestSymbol(k.unshifted(addr)); ok && sym.Module == "" {
			start := k.shifted(sym.Addr)
			return vmi.SymbolInfo{Name: sym.Name, Addr: start, Offset: addr - start, Type: sym.Type, Text: im.isText(addr)}, nil
		}
		return vmi.SymbolInfo{}, fmt.Errorf("address %#x: in the kernel image but below its first symbol: %w", addr, vmi.ErrNotFound)
	}
	t, err := k.ModuleSymbols()
	if err != nil {
		return vmi.SymbolInfo{}, fmt.Errorf("address %#x: outside the kernel image, and %w", addr, err)
	}
	h, ok := t.At(addr)
	if !ok {
		where := ""
		if imErr == nil {
			where = fmt.Sprintf(" (%#x-%#x)", im.lo, im.hi)
		}
		return vmi.SymbolInfo{}, vmi.Detailed(nil, ErrOutsideCode, "address %#x: outside the kernel image%s and the memory of the %d loaded modules",
			addr, where, len(t.Modules))
	}
	if !h.HasSymbol {
		why := "no symbol at or below it there"
		if h.Module.Err != nil {
			why = "its symbol table could not be read: " + h.Module.Err.Error()
		}
		return vmi.SymbolInfo{}, fmt.Errorf("address %#x: in module %s (%s %#x-%#x) but %s: %w",
			addr, h.Module.Name, h.Span.Kind, h.Span.Start, h.Span.End, why, vmi.ErrNotFound)
	}
	return vmi.SymbolInfo{Name: h.Symbol.Name, Module: h.Module.Name, Addr: h.Symbol.Addr, Offset: h.Offset,
		Type: h.Symbol.Type, Text: h.Span.Text}, nil
}
