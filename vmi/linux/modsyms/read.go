package modsyms

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/xascript/xascript/vmi"
)

// Memory reads kernel virtual memory (vmi/linux.Kernel is one).
type Memory interface {
	ReadVirt(buf []byte, va uint64) error
	ReadUintVirt(va uint64, size int) (uint64, error)
}

// Layout holds the offsets of the members Read follows, from the running
// kernel's type information.
type Layout struct {
	Ptr int // pointer size, 4 or 8

	// struct module
	List      uint64 // list (struct list_head) on the modules list
	Name      uint64 // name (char[NameLen])
	NameLen   uint64
	State     uint64 // state (enum module_state), when HasState
	HasState  bool
	Kallsyms  uint64 // kallsyms (struct mod_kallsyms *)
	Regions   []Region
	Symtab    uint64 // mod_kallsyms.symtab
	NumSymtab uint64 // mod_kallsyms.num_symtab (unsigned int)
	Strtab    uint64 // mod_kallsyms.strtab
	Typetab   uint64 // mod_kallsyms.typetab, when HasTypetab
	// HasTypetab: the kernel keeps each symbol's type letter in typetab;
	// without it the letter is left 0 (unknown).
	HasTypetab bool

	// The module's exports (module.syms, num_syms: struct kernel_symbol),
	// when HasExports: /proc/kallsyms prints an exported symbol's letter
	// in upper case and every other one in lower case.
	HasExports bool
	Syms       uint64
	NumSyms    uint64
	Ksym       KernelSymbol
}

// KernelSymbol is the layout of struct kernel_symbol
// (include/linux/export-internal.h): with
// CONFIG_HAVE_ARCH_PREL32_RELOCATIONS (x86-64) int value_offset and
// name_offset, each relative to its own address; else unsigned long value
// and const char *name.
type KernelSymbol struct {
	Size        uint64
	Prel32      bool
	Value, Name uint64
}

// Region is one block of a module's memory, as offsets in struct module:
// a module_layout (core_layout, init_layout) or a module_memory (mem[i]).
type Region struct {
	Kind string // "core", "init", "text", "data", ... (for messages)
	Base uint64 // base (void *)
	Size uint64 // size (unsigned int)
	// Text says how much of the region is code: TextAll (mem[MOD_TEXT]),
	// TextNone (mem[MOD_DATA]) or TextMember (a module_layout, whose
	// text_size member at TextSize says it).
	Text     TextKind
	TextSize uint64
}

// TextKind says how much of a Region holds code.
type TextKind int

const (
	TextNone TextKind = iota
	TextAll
	TextMember
)

// Limits bound what a guest can make Read do. Zero fields take the
// defaults.
type Limits struct {
	MaxModules       int // list nodes walked (default 4096)
	MaxModuleSymbols int // num_symtab of one module (default 1<<18)
	MaxSymbols       int // symbols over all modules (default 1<<21)
	MaxStrtab        int // bytes of one module's string table (default 8 MiB)
}

func (l Limits) withDefaults() Limits {
	if l.MaxModules <= 0 {
		l.MaxModules = 4096
	}
	if l.MaxModuleSymbols <= 0 {
		l.MaxModuleSymbols = 1 << 18
	}
	if l.MaxSymbols <= 0 {
		l.MaxSymbols = 1 << 21
	}
	if l.MaxStrtab <= 0 {
		l.MaxStrtab = 8 << 20
	}
	return l
}

// KSYM_NAME_LEN (include/linux/kallsyms.h): names are cut there.
const maxName = 512

// Module states (enum module_state): an unformed module is not yet (or no
// longer) a module, and /proc/kallsyms skips it.
const moduleStateUnformed = 3

// Span is a block of a module's memory, [Start, End).
type Span struct {
	Start, End uint64
	Kind       string
	Text       bool
}

// Module is one loaded module and its symbols.
type Module struct {
	Name  string
	Addr  uint64 // its struct module
	Spans []Span
	// Symbols are its named, defined symbols sorted by address (stable:
	// among aliases, table order), as /proc/kallsyms lists them.
	Symbols []Symbol
	// Err says why its symbols could not be read (Symbols is then empty).
	Err error
	// order is Symbols' indexes in table order, for name lookups.
	order []int32
}

// Symbol is one module symbol.
type Symbol struct {
	Addr uint64
	Size uint64 // st_size (0 when the ELF symbol gave none)
	Name string
	Type byte // nm letter ('t', 'T', 'd', ...), 0 when unknown
	// mapping: a label that address lookups skip (isMappingSymbol).
	mapping bool
}

// Read walks the module list at head (the kernel's `modules`) and reads
// each module's symbol table. It fails only when the list itself cannot be
// walked; a module whose table is unreadable keeps its Err.
func Read(mem Memory, head uint64, l Layout, lim Limits) (*Table, error) {
	lim = lim.withDefaults()
	if l.Ptr != 4 && l.Ptr != 8 {
		return nil, fmt.Errorf("module symbols: pointer size %d: %w", l.Ptr, vmi.ErrUnsupported)
	}
	if l.NameLen == 0 || l.NameLen > 1024 {
		return nil, fmt.Errorf("module symbols: module name of %d bytes: %w", l.NameLen, vmi.ErrFormat)
	}
	t := &Table{}
	budget := lim.MaxSymbols
	seen := map[uint64]bool{head: true}
	node, err := mem.ReadUintVirt(head, l.Ptr)
	for n := 0; ; n++ {
		if err != nil {
			return nil, fmt.Errorf("module list at %#x: %w", head, err)
		}
		if node == head {
			break
		}
		if seen[node] {
			return nil, fmt.Errorf("module list at %#x is cyclic: node %#x seen again after %d modules: %w", head, node, n, vmi.ErrFormat)
		}
		if n >= lim.MaxModules {
			return nil, fmt.Errorf("module list at %#x: more than %d modules: %w", head, lim.MaxModules, vmi.ErrLimit)
		}
		seen[node] = true
		m, skip, rerr := readModule(mem, node-l.List, l, lim, &budget)
		if rerr != nil {
			return nil, rerr
		}
		if !skip {
			t.Modules = append(t.Modules, m)
		}
		node, err = mem.ReadUintVirt(node, l.Ptr)
	}
	t.index()
	return t, nil
}

// readModule reads one struct module. skip: an unformed module, left out
// as the kernel does. An error ends the whole read (the budget is spent).
func readModule(mem Memory, addr uint64, l Layout, lim Limits, budget *int) (Module, bool, error) {
	m := Module{Addr: addr}
	nameBuf := make([]byte, l.NameLen)
	if err := mem.ReadVirt(nameBuf, addr+l.Name); err != nil {
		m.Name = fmt.Sprintf("module at %#x", addr)
		m.Err = fmt.Errorf("read name: %w", err)
		return m, false, nil
	}
	name, _, _ := bytes.Cut(nameBuf, []byte{0})
	m.Name = string(name)
	if l.HasState {
		st, err := mem.ReadUintVirt(addr+l.State, 4)
		if err == nil && st == moduleStateUnformed {
			return m, true, nil
		}
	}
	for _, r := range l.Regions {
		base, err := mem.ReadUintVirt(addr+r.Base, l.Ptr)
		if err != nil {
			m.Err = fmt.Errorf("read %s base: %w", r.Kind, err)
			return m, false, nil
		}
		size, err := mem.ReadUintVirt(addr+r.Size, 4)
		if err != nil {
			m.Err = fmt.Errorf("read %s size: %w", r.Kind, err)
			return m, false, nil
		}
		if base == 0 || size == 0 {
			continue // init memory freed, or a kind the module has none of
		}
		end := base + size
		if end < base || l.Ptr == 4 && end > 1<<32 {
			m.Err = fmt.Errorf("%s memory %#x+%#x wraps around: %w", r.Kind, base, size, vmi.ErrFormat)
			return m, false, nil
		}
		switch r.Text {
		case TextAll:
			m.Spans = append(m.Spans, Span{base, end, r.Kind, true})
		case TextNone:
			m.Spans = append(m.Spans, Span{base, end, r.Kind, false})
		case TextMember:
			ts, err := mem.ReadUintVirt(addr+r.TextSize, 4)
			if err != nil {
				m.Err = fmt.Errorf("read %s text_size: %w", r.Kind, err)
				return m, false, nil
			}
			ts = min(ts, size)
			if ts > 0 {
				m.Spans = append(m.Spans, Span{base, base + ts, r.Kind + " text", true})
			}
			if ts < size {
				m.Spans = append(m.Spans, Span{base + ts, end, r.Kind + " data", false})
			}
		}
	}
	syms, order, err := readSymbols(mem, addr, l, lim, budget)
	if err == nil && l.HasExports {
		var exports map[string]uint64
		if exports, err = readExports(mem, addr, l, lim); err == nil {
			for i := range syms {
				syms[i].Type = caseByExport(syms[i], exports)
			}
		}
	}
	if errors.Is(err, errBudget) {
		return m, false, fmt.Errorf("module %s at %#x: more than %d module symbols in all: %w", m.Name, addr, lim.MaxSymbols, vmi.ErrLimit)
	}
	if err != nil {
		m.Err = err
		return m, false, nil
	}
	m.Symbols, m.order = syms, order
	return m, false, nil
}

var errBudget = errors.New("module symbol budget spent")

// readSymbols reads mod->kallsyms's table: the symbols sorted by address,
// and their indexes in table order.
func readSymbols(mem Memory, addr uint64, l Layout, lim Limits, budget *int) ([]Symbol, []int32, error) {
	ks, err := mem.ReadUintVirt(addr+l.Kallsyms, l.Ptr)
	if err != nil {
		return nil, nil, fmt.Errorf("read kallsyms pointer at %#x: %w", addr+l.Kallsyms, err)
	}
	if ks == 0 {
		return nil, nil, nil // no symbols kept (a module stripped of them)
	}
	symtab, err := mem.ReadUintVirt(ks+l.Symtab, l.Ptr)
	if err != nil {
		return nil, nil, fmt.Errorf("read mod_kallsyms at %#x: %w", ks, err)
	}
	num, err := mem.ReadUintVirt(ks+l.NumSymtab, 4)
	if err != nil {
		return nil, nil, fmt.Errorf("read mod_kallsyms at %#x: %w", ks, err)
	}
	strtab, err := mem.ReadUintVirt(ks+l.Strtab, l.Ptr)
	if err != nil {
		return nil, nil, fmt.Errorf("read mod_kallsyms at %#x: %w", ks, err)
	}
	if num > uint64(lim.MaxModuleSymbols) {
		return nil, nil, fmt.Errorf("mod_kallsyms at %#x: num_symtab %d is more than %d: %w", ks, num, lim.MaxModuleSymbols, vmi.ErrLimit)
	}
	if int(num) > *budget {
		return nil, nil, errBudget
	}
	*budget -= int(num)
	entSize := 24
	if l.Ptr == 4 {
		entSize = 16
	}
	raw := make([]byte, int(num)*entSize)
	if err := mem.ReadVirt(raw, symtab); err != nil {
		return nil, nil, fmt.Errorf("read symtab of %d symbols at %#x: %w", num, symtab, err)
	}
	var types []byte
	if l.HasTypetab {
		typetab, err := mem.ReadUintVirt(ks+l.Typetab, l.Ptr)
		if err != nil {
			return nil, nil, fmt.Errorf("read mod_kallsyms at %#x: %w", ks, err)
		}
		types = make([]byte, num)
		if err := mem.ReadVirt(types, typetab); err != nil {
			return nil, nil, fmt.Errorf("read typetab of %d symbols at %#x: %w", num, typetab, err)
		}
	}
	ents := make([]elfSym, num)
	var maxOff uint64
	for i := range ents {
		ents[i] = parseSym(raw[i*entSize:], l.Ptr)
		if ents[i].shndx != 0 && ents[i].name > maxOff { // SHN_UNDEF symbols are never named in a lookup
			maxOff = ents[i].name
		}
	}
	if maxOff >= uint64(lim.MaxStrtab) {
		return nil, nil, fmt.Errorf("mod_kallsyms at %#x: a name at offset %#x of strtab %#x, past %d bytes: %w",
			ks, maxOff, strtab, lim.MaxStrtab, vmi.ErrLimit)
	}
	strs := newStrtab(mem, strtab, maxOff)
	syms := make([]Symbol, 0, num)
	// Index 0 is ELF's null symbol; the kernel starts at 1 as well.
	for i := 1; i < len(ents); i++ {
		e := ents[i]
		if e.shndx == 0 { // SHN_UNDEF
			continue
		}
		name, err := strs.at(e.name)
		if err != nil {
			return nil, nil, fmt.Errorf("symbol %d of mod_kallsyms at %#x: name at %#x: %w", i, ks, strtab+e.name, err)
		}
		if name == "" {
			continue // unnamed: /proc/kallsyms leaves them out too
		}
		var typ byte
		if types != nil {
			typ = types[i]
		}
		syms = append(syms, Symbol{Addr: e.value, Size: e.size, Name: name, Type: typ, mapping: isMappingSymbol(name)})
	}
	// Sort by address, remembering table order for name lookups.
	order := make([]int32, len(syms))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(a, b int32) int {
		switch x, y := syms[a].Addr, syms[b].Addr; {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	})
	sorted := make([]Symbol, len(syms))
	pos := make([]int32, len(syms)) // table index -> sorted index
	for s, i := range order {
		sorted[s] = syms[i]
		pos[i] = int32(s)
	}
	return sorted, pos, nil
}

// isMappingSymbol tells the names that the kernel's address lookup skips
// (is_mapping_symbol, include/linux/module_symbol.h): local labels (".L…",
// "L0…") and ARM's and RISC-V's "$x"-style markers. /proc/kallsyms still
// lists them, and a lookup by name still finds them.
func isMappingSymbol(s string) bool {
	return len(s) >= 2 && (s[0] == '.' && s[1] == 'L' || s[0] == 'L' && s[1] == '0') || len(s) >= 1 && s[0] == '$'
}

type elfSym struct {
	name, value, size uint64
	shndx             uint16
}

func parseSym(b []byte, ptr int) elfSym {
	le := binary.LittleEndian
	if ptr == 4 {
		return elfSym{name: uint64(le.Uint32(b)), value: uint64(le.Uint32(b[4:])), size: uint64(le.Uint32(b[8:])), shndx: le.Uint16(b[14:])}
	}
	return elfSym{name: uint64(le.Uint32(b)), shndx: le.Uint16(b[6:]), value: le.Uint64(b[8:]), size: le.Uint64(b[16:])}
}

// strtab reads names from a module's string table: its first maxOff bytes
// in one read (every name but the last starts there), and what lies past
// them a page at a time, so that a table that ends just before an unmapped
// page is read whole.
type strtab struct {
	mem  Memory
	base uint64
	head []byte // strtab[0:len(head)], or nil when that read failed
	tail map[uint64]string
}

func newStrtab(mem Memory, base, maxOff uint64) *strtab {
	s := &strtab{mem: mem, base: base, tail: map[uint64]string{}}
	if maxOff > 0 {
		b := make([]byte, maxOff)
		if mem.ReadVirt(b, base) == nil {
			s.head = b
		}
	}
	return s
}

func (s *strtab) at(off uint64) (string, error) {
	if off < uint64(len(s.head)) {
		rest := s.head[off:]
		if i := bytes.IndexByte(rest[:min(len(rest), maxName)], 0); i >= 0 {
			return string(rest[:i]), nil
		}
	}
	if v, ok := s.tail[off]; ok {
		return v, nil
	}
	v, err := readCString(s.mem, s.base+off, maxName)
	if err != nil {
		return "", err
	}
	s.tail[off] = v
	return v, nil
}

// readCString reads a NUL-terminated string of at most max bytes at va,
// never reading past the page where it ends.
func readCString(mem Memory, va uint64, max int) (string, error) {
	var out []byte
	for len(out) < max {
		n := min(int(4096-(va+uint64(len(out)))%4096), max-len(out))
		buf := make([]byte, n)
		if err := mem.ReadVirt(buf, va+uint64(len(out))); err != nil {
			return "", err
		}
		if i := bytes.IndexByte(buf, 0); i >= 0 {
			return string(append(out, buf[:i]...)), nil
		}
		out = append(out, buf...)
	}
	return string(out), nil // cut at KSYM_NAME_LEN, as the kernel's strscpy does
}

// readExports reads a module's export table (module.syms) as name ->
// value, as the kernel's is_exported looks there.
func readExports(mem Memory, addr uint64, l Layout, lim Limits) (map[string]uint64, error) {
	base, err := mem.ReadUintVirt(addr+l.Syms, l.Ptr)
	if err != nil {
		return nil, fmt.Errorf("read exports pointer at %#x: %w", addr+l.Syms, err)
	}
	num, err := mem.ReadUintVirt(addr+l.NumSyms, 4)
	if err != nil {
		return nil, fmt.Errorf("read num_syms at %#x: %w", addr+l.NumSyms, err)
	}
	out := map[string]uint64{}
	if num == 0 {
		return out, nil
	}
	if num > uint64(lim.MaxModuleSymbols) {
		return nil, fmt.Errorf("num_syms %d is more than %d: %w", num, lim.MaxModuleSymbols, vmi.ErrLimit)
	}
	ks := l.Ksym
	if ks.Size == 0 || ks.Size > 64 || ks.Value >= ks.Size || ks.Name >= ks.Size {
		return nil, fmt.Errorf("struct kernel_symbol of %d bytes: %w", ks.Size, vmi.ErrFormat)
	}
	raw := make([]byte, num*ks.Size)
	if err := mem.ReadVirt(raw, base); err != nil {
		return nil, fmt.Errorf("read %d exports at %#x: %w", num, base, err)
	}
	le := binary.LittleEndian
	for i := range num {
		at := base + i*ks.Size
		e := raw[i*ks.Size:]
		var value, name uint64
		switch {
		case ks.Prel32:
			value = at + ks.Value + uint64(int64(int32(le.Uint32(e[ks.Value:]))))
			name = at + ks.Name + uint64(int64(int32(le.Uint32(e[ks.Name:]))))
		case l.Ptr == 4:
			value, name = uint64(le.Uint32(e[ks.Value:])), uint64(le.Uint32(e[ks.Name:]))
		default:
			value, name = le.Uint64(e[ks.Value:]), le.Uint64(e[ks.Name:])
		}
		if l.Ptr == 4 {
			value, name = value&0xffffffff, name&0xffffffff
		}
		n, err := readCString(mem, name, maxName)
		if err != nil {
			return nil, fmt.Errorf("export %d at %#x: name at %#x: %w", i, at, name, err)
		}
		if _, dup := out[n]; !dup {
			out[n] = value
		}
	}
	return out, nil
}

// caseByExport is s's letter as /proc/kallsyms prints it for a module
// symbol: upper case when the module exports it, lower case otherwise.
func caseByExport(s Symbol, exports map[string]uint64) byte {
	t := s.Type
	if v, ok := exports[s.Name]; ok && v == s.Addr {
		if t >= 'a' && t <= 'z' {
			return t - 'a' + 'A'
		}
		return t
	}
	if t >= 'A' && t <= 'Z' {
		return t - 'A' + 'a'
	}
	return t
}
