package modsyms

import "sort"

// Table is the symbols of the modules on the list, in list order (newest
// first, as /proc/modules lists them).
type Table struct {
	Modules []Module
	byName  map[string][]ref
}

type ref struct{ mod, sym int32 }

// index builds the name index: each name's symbols in list order, then
// table order, as find_kallsyms_symbol_value looks.
func (t *Table) index() {
	t.byName = map[string][]ref{}
	for mi := range t.Modules {
		m := &t.Modules[mi]
		// m.order gives the sorted position of each symbol in table order.
		for _, si := range m.order {
			name := m.Symbols[si].Name
			t.byName[name] = append(t.byName[name], ref{int32(mi), si})
		}
	}
}

// Len is the number of symbols over all modules.
func (t *Table) Len() int {
	n := 0
	for _, m := range t.Modules {
		n += len(m.Symbols)
	}
	return n
}

// Lookup returns the address of symbol name in the first module that
// defines it, and that module's name.
func (t *Table) Lookup(name string) (uint64, string, bool) {
	refs := t.byName[name]
	if len(refs) == 0 {
		return 0, "", false
	}
	r := refs[0]
	return t.Modules[r.mod].Symbols[r.sym].Addr, t.Modules[r.mod].Name, true
}

// LookupIn returns the address of symbol name in module mod.
func (t *Table) LookupIn(mod, name string) (uint64, bool) {
	for _, r := range t.byName[name] {
		if t.Modules[r.mod].Name == mod {
			return t.Modules[r.mod].Symbols[r.sym].Addr, true
		}
	}
	return 0, false
}

// Hit is what At finds for an address.
type Hit struct {
	Module *Module
	Span   Span
	// Symbol is the nearest symbol at or below the address in the same
	// span of the module's memory; HasSymbol is false when the span holds
	// none below it (or the module's table could not be read: Module.Err).
	Symbol    Symbol
	HasSymbol bool
	Offset    uint64
}

// At finds the module whose memory holds addr, and the symbol addr is in,
// as the kernel's find_kallsyms_symbol does but within the one block of
// memory (text, data, ...) that holds addr, so that an address in a
// module's data is not named after the last function of its text.
func (t *Table) At(addr uint64) (Hit, bool) {
	for mi := range t.Modules {
		m := &t.Modules[mi]
		for _, sp := range m.Spans {
			if addr < sp.Start || addr >= sp.End {
				continue
			}
			h := Hit{Module: m, Span: sp}
			// The last symbol at or below addr, then back over labels
			// the kernel skips and over aliases to the first of them.
			i := sort.Search(len(m.Symbols), func(i int) bool { return m.Symbols[i].Addr > addr }) - 1
			for i >= 0 && m.Symbols[i].mapping {
				i--
			}
			if i < 0 || m.Symbols[i].Addr < sp.Start {
				return h, true
			}
			for i > 0 && m.Symbols[i-1].Addr == m.Symbols[i].Addr && !m.Symbols[i-1].mapping {
				i--
			}
			h.Symbol, h.HasSymbol, h.Offset = m.Symbols[i], true, addr-m.Symbols[i].Addr
			return h, true
		}
	}
	return Hit{}, false
}
