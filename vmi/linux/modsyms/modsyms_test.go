package modsyms

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/xascript/xascript/vmi"
)

// pages is a sparse guest memory of 4 KiB pages; a read of a missing page
// fails, as an unmapped kernel address does.
type pages map[uint64][]byte

func (p pages) write(va uint64, b []byte) {
	for len(b) > 0 {
		pg, ok := p[va>>12]
		if !ok {
			pg = make([]byte, 4096)
			p[va>>12] = pg
		}
		n := copy(pg[va&0xfff:], b)
		b, va = b[n:], va+uint64(n)
	}
}

func (p pages) u64(va, v uint64) { p.write(va, binary.LittleEndian.AppendUint64(nil, v)) }
func (p pages) u32(va uint64, v uint32) {
	p.write(va, binary.LittleEndian.AppendUint32(nil, v))
}

func (p pages) ReadVirt(buf []byte, va uint64) error {
	for done := 0; done < len(buf); {
		a := va + uint64(done)
		pg, ok := p[a>>12]
		if !ok {
			return fmt.Errorf("read %#x: %w", a, vmi.ErrNotPresent)
		}
		done += copy(buf[done:], pg[a&0xfff:])
	}
	return nil
}

func (p pages) ReadUintVirt(va uint64, size int) (uint64, error) {
	b := make([]byte, 8)
	if err := p.ReadVirt(b[:size], va); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// A synthetic layout in the shape of 6.4+'s (mem[] blocks).
var testLayout = Layout{
	Ptr: 8, List: 8, Name: 24, NameLen: 56, State: 0, HasState: true, Kallsyms: 0x100,
	Symtab: 0, NumSymtab: 8, Strtab: 16, Typetab: 24, HasTypetab: true,
	Regions: []Region{{Kind: "text", Base: 0x200, Size: 0x208, Text: TextAll}, {Kind: "data", Base: 0x210, Size: 0x218, Text: TextNone}},
}

const head = 0xffffffff82000000

type fakeSym struct {
	name  string
	value uint64
	typ   byte
	undef bool
}

// addModule writes a struct module at m with its text at text (0x1000
// bytes), data after it, and its symbol table.
func addModule(p pages, m uint64, name string, text uint64, syms []fakeSym) {
	p.write(m+testLayout.Name, append([]byte(name), 0))
	p.u64(m+0x200, text)
	p.u32(m+0x208, 0x1000)
	p.u64(m+0x210, text+0x1000)
	p.u32(m+0x218, 0x1000)
	ks := m + 0x400
	p.u64(m+testLayout.Kallsyms, ks)
	symtab, strtab, typetab := m+0x800, m+0x2000, m+0x3000
	p.u64(ks, symtab)
	p.u32(ks+8, uint32(len(syms)+1))
	p.u64(ks+16, strtab)
	p.u64(ks+24, typetab)
	off := uint32(1)
	p.write(strtab, []byte{0})
	p.write(typetab, []byte{0})
	for i, s := range syms {
		e := make([]byte, 24)
		binary.LittleEndian.PutUint32(e, off)
		if !s.undef {
			binary.LittleEndian.PutUint16(e[6:], 1)
		}
		binary.LittleEndian.PutUint64(e[8:], s.value)
		p.write(symtab+uint64(24*(i+1)), e)
		p.write(strtab+uint64(off), append([]byte(s.name), 0))
		off += uint32(len(s.name) + 1)
		p.write(typetab+uint64(i+1), []byte{s.typ})
	}
}

// link makes the modules list head -> mods... -> head.
func link(p pages, mods ...uint64) {
	prev := uint64(head)
	for _, m := range mods {
		p.u64(prev, m+testLayout.List)
		prev = m + testLayout.List
	}
	p.u64(prev, head)
}

func TestReadAndLookup(t *testing.T) {
	p := pages{}
	const a, b = 0xffffffffc0010000, 0xffffffffc0020000
	addModule(p, a, "alpha", 0xffffffffc1000000, []fakeSym{
		{"alpha_init", 0xffffffffc1000000, 't', false},
		{"alpha_alias", 0xffffffffc1000000, 'T', false},
		{".LC0", 0xffffffffc1000040, 'r', false},
		{"alpha_next", 0xffffffffc1000100, 't', false},
		{"printk", 0, 'U', true},
		{"alpha_data", 0xffffffffc1001010, 'd', false},
		{"shared", 0xffffffffc1000200, 't', false},
	})
	addModule(p, b, "beta", 0xffffffffc2000000, []fakeSym{{"shared", 0xffffffffc2000010, 't', false}})
	link(p, a, b)
	tab, err := Read(p, head, testLayout, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.Modules) != 2 || tab.Modules[0].Name != "alpha" || tab.Len() != 7 {
		t.Fatalf("modules %+v, %d symbols", tab.Modules, tab.Len())
	}
	for _, c := range []struct {
		addr      uint64
		name, mod string
		off       uint64
		text, ok  bool
	}{
		{0xffffffffc1000000, "alpha_init", "alpha", 0, true, true},    // the first alias in table order
		{0xffffffffc1000050, "alpha_init", "alpha", 0x50, true, true}, // .LC0 skipped
		{0xffffffffc1000fff, "shared", "alpha", 0xdff, true, true},
		{0xffffffffc1001000, "", "alpha", 0, false, true},              // data below its first symbol
		{0xffffffffc1001020, "alpha_data", "alpha", 0x10, false, true}, // not named after a text symbol
		{0xffffffffc2000010, "shared", "beta", 0, true, true},
		{0xffffffffc3000000, "", "", 0, false, false},
	} {
		h, ok := tab.At(c.addr)
		if ok != c.ok || ok && (h.Module.Name != c.mod || h.Span.Text != c.text || h.HasSymbol != (c.name != "") ||
			h.HasSymbol && (h.Symbol.Name != c.name || h.Offset != c.off)) {
			t.Errorf("At(%#x) = %+v %v", c.addr, h, ok)
		}
	}
	if a, m, ok := tab.Lookup("shared"); !ok || m != "alpha" || a != 0xffffffffc1000200 {
		t.Errorf("Lookup(shared) = %#x %s %v; want alpha's, the first on the list", a, m, ok)
	}
	if a, ok := tab.LookupIn("beta", "shared"); !ok || a != 0xffffffffc2000010 {
		t.Errorf("LookupIn(beta, shared) = %#x %v", a, ok)
	}
	if _, _, ok := tab.Lookup("printk"); ok {
		t.Error("an undefined symbol was found")
	}
	if a, _, ok := tab.Lookup(".LC0"); !ok || a != 0xffffffffc1000040 {
		t.Error("a label is not found by name")
	}
}

// Hostile lists and tables end in errors that name what was wrong, in
// bounded work; one unreadable module does not hide the others.
func TestHostile(t *testing.T) {
	const a, b = 0xffffffffc0010000, 0xffffffffc0020000
	base := func() pages {
		p := pages{}
		addModule(p, a, "alpha", 0xffffffffc1000000, []fakeSym{{"f", 0xffffffffc1000000, 't', false}})
		addModule(p, b, "beta", 0xffffffffc2000000, []fakeSym{{"g", 0xffffffffc2000000, 't', false}})
		link(p, a, b)
		return p
	}
	t.Run("cycle", func(t *testing.T) {
		p := base()
		p.u64(b+testLayout.List, a+testLayout.List)
		if _, err := Read(p, head, testLayout, Limits{}); !errors.Is(err, vmi.ErrFormat) || !strings.Contains(err.Error(), "cyclic") {
			t.Fatalf("cyclic list: %v", err)
		}
	})
	t.Run("too many modules", func(t *testing.T) {
		if _, err := Read(base(), head, testLayout, Limits{MaxModules: 1}); !errors.Is(err, vmi.ErrLimit) {
			t.Fatalf("limit 1: %v", err)
		}
	})
	t.Run("broken list", func(t *testing.T) {
		p := base()
		p.u64(b+testLayout.List, 0xffffffffdead0000)
		if _, err := Read(p, head, testLayout, Limits{}); !errors.Is(err, vmi.ErrNotPresent) || !strings.Contains(err.Error(), "module list at 0xffffffff82000000") {
			t.Fatalf("broken list: %v", err)
		}
	})
	t.Run("huge num_symtab", func(t *testing.T) {
		p := base()
		p.u32(a+0x400+8, 0xffffffff)
		tab, err := Read(p, head, testLayout, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if m := tab.Modules[0]; !errors.Is(m.Err, vmi.ErrLimit) || len(m.Symbols) != 0 {
			t.Errorf("alpha: %v", m.Err)
		}
		if m := tab.Modules[1]; m.Err != nil || len(m.Symbols) != 1 {
			t.Errorf("beta, after a bad alpha: %+v", m)
		}
	})
	t.Run("total budget", func(t *testing.T) {
		if _, err := Read(base(), head, testLayout, Limits{MaxSymbols: 3}); !errors.Is(err, vmi.ErrLimit) {
			t.Fatalf("budget of 3 symbols for 4: %v", err)
		}
	})
	t.Run("name offset far away", func(t *testing.T) {
		p := base()
		p.u32(a+0x800+24, 0x7fffffff)
		tab, err := Read(p, head, testLayout, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if m := tab.Modules[0]; !errors.Is(m.Err, vmi.ErrLimit) {
			t.Errorf("alpha: %v", m.Err)
		}
	})
	t.Run("unmapped symtab", func(t *testing.T) {
		p := base()
		p.u64(a+0x400, 0xffffffffdead0000)
		tab, err := Read(p, head, testLayout, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if m := tab.Modules[0]; !errors.Is(m.Err, vmi.ErrNotPresent) || !strings.Contains(m.Err.Error(), "0xffffffffdead0000") {
			t.Errorf("alpha: %v", m.Err)
		}
	})
	t.Run("name at a page end", func(t *testing.T) {
		// The name runs to the end of its page, and the next page is
		// unmapped: an error, not a read past it.
		p := base()
		lay := testLayout
		lay.HasTypetab = false
		delete(p, (a+0x3000)>>12)
		p.u32(a+0x800+24, 0xff6)
		p.write(a+0x2ff6, []byte("xxxxxxxxxx"))
		tab, err := Read(p, head, lay, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if m := tab.Modules[0]; !errors.Is(m.Err, vmi.ErrNotPresent) {
			t.Errorf("alpha: %v", m.Err)
		}
		// With the next page mapped, it ends there.
		p.write(a+0x3000, []byte("yy\x00"))
		tab, err = Read(p, head, lay, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if m := tab.Modules[0]; m.Err != nil || len(m.Symbols) != 1 || m.Symbols[0].Name != "xxxxxxxxxxyy" {
			t.Errorf("alpha: %v, %+v", m.Err, m.Symbols)
		}
	})
	t.Run("long name", func(t *testing.T) {
		p := base()
		p.write(a+0x2001, []byte(strings.Repeat("x", 2000)))
		tab, err := Read(p, head, testLayout, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if m := tab.Modules[0]; m.Err != nil || len(m.Symbols) != 1 || len(m.Symbols[0].Name) != maxName {
			t.Errorf("alpha: %v; names are cut at KSYM_NAME_LEN", m.Err)
		}
	})
	t.Run("unformed", func(t *testing.T) {
		p := base()
		p.u32(a+testLayout.State, moduleStateUnformed)
		tab, err := Read(p, head, testLayout, Limits{})
		if err != nil || len(tab.Modules) != 1 || tab.Modules[0].Name != "beta" {
			t.Fatalf("%+v, %v", tab, err)
		}
	})
	t.Run("wrapping memory", func(t *testing.T) {
		p := base()
		p.u64(a+0x200, 0xfffffffffffff800)
		tab, err := Read(p, head, testLayout, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if m := tab.Modules[0]; !errors.Is(m.Err, vmi.ErrFormat) {
			t.Errorf("alpha: %v", m.Err)
		}
	})
}
