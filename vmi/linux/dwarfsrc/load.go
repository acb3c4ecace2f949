package dwarfsrc

import (
	"bytes"
	"debug/dwarf"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi"
)

// Types answers layout questions from the DWARF of one ELF file. It is safe
// for concurrent use. Close releases the file it was loaded from.
type Types struct {
	file    *unpack.File // the (decompressed) ELF; nil from a test's parse
	idxFile *unpack.File // the persisted index, when there is one
	ptrSize int

	// Per-unit mode (info != nil): the sections are slices of the mapped
	// file and each compile unit gets its own small dwarf.Data on demand.
	// Whole mode (info == nil): one dwarf.Data from debug/elf, for object
	// files (whose DWARF needs relocating) and compressed sections.
	info, abbrev []byte
	extra        map[string][]byte // .debug_str, .debug_line_str, ...
	bo           binary.ByteOrder

	idx  index
	path string // for the persisted index; "" when parsed from memory
	opt  unpack.Options

	mu      sync.Mutex
	whole   *dwarf.Data
	wholeFn func() (*dwarf.Data, error)
	units   map[uint64]*unit
	nodes   map[uint64]*node

	graphOnce sync.Once
	graph     *graph // the types.Graph view (graph.go)
}

// unit is one compile unit's view of .debug_info; base is where it starts,
// so that base+Entry.Offset is the offset in the whole section.
type unit struct {
	d    *dwarf.Data
	base uint64
}

// Load reads the DWARF of the vmlinux (or any ELF with .debug_info) at path,
// which may be compressed. Load reads section headers only. The first
// question about a file scans it once for type names and persists that
// index (internal/unpack.Derived); later runs map the index and decode only
// the entries a question touches.
func Load(path string, opt unpack.Options) (*Types, error) {
	f, err := unpack.Open(path, opt)
	if err != nil {
		return nil, fmt.Errorf("dwarf: %w", err)
	}
	t, err := parse(f.Data)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("dwarf: %s: %w", path, err)
	}
	t.file, t.path, t.opt = f, path, opt
	return t, nil
}

// Close releases the mappings of the file and of its index.
func (t *Types) Close() error {
	// unpack.File.Close is nil-safe: either may be absent.
	err := errors.Join(t.idxFile.Close(), t.file.Close())
	t.idxFile, t.file = nil, nil
	return err
}

// PointerSize is the target's pointer size in bytes, from the ELF class.
func (t *Types) PointerSize() int { return t.ptrSize }

// parse opens the ELF in data and picks the mode. It reads section headers
// only: no DWARF is decoded until a question or the index needs it.
func parse(data []byte) (t *Types, err error) {
	defer firewall(&err)
	ef, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("ELF: %w: %w", vmi.ErrFormat, err)
	}
	t = &Types{ptrSize: 8, bo: ef.ByteOrder, units: map[uint64]*unit{}, nodes: map[uint64]*node{}}
	if ef.Class == elf.ELFCLASS32 {
		t.ptrSize = 4
	}
	info, abbrev := ef.Section(".debug_info"), ef.Section(".debug_abbrev")
	if info == nil || abbrev == nil {
		if ef.Section(".zdebug_info") == nil {
			return nil, fmt.Errorf("ELF has no .debug_info (a stripped vmlinux? use the one from the -dbg package): %w", vmi.ErrNotFound)
		}
	}
	// Object files need their relocations applied to .debug_info, and
	// compressed sections need inflating: debug/elf does both, by copying
	// every DWARF section. That is fine for small files; a vmlinux is an
	// executable with plain sections, read in place.
	inPlace := ef.Type != elf.ET_REL && info != nil && abbrev != nil
	for _, s := range ef.Sections {
		if len(s.Name) > 7 && s.Name[:7] == ".debug_" && (s.Flags&elf.SHF_COMPRESSED != 0 || s.Type == elf.SHT_NOBITS) {
			inPlace = false
		}
	}
	if !inPlace {
		t.wholeFn = func() (*dwarf.Data, error) { return ef.DWARF() }
		return t, nil
	}
	t.extra = map[string][]byte{}
	for _, s := range ef.Sections {
		if len(s.Name) < 7 || s.Name[:7] != ".debug_" {
			continue
		}
		if s.Offset > uint64(len(data)) || s.Size > uint64(len(data))-s.Offset {
			return nil, fmt.Errorf("ELF section %s [%#x, +%#x) lies outside the %d-byte file: %w",
				s.Name, s.Offset, s.Size, len(data), vmi.ErrFormat)
		}
		b := data[s.Offset : s.Offset+s.Size : s.Offset+s.Size]
		switch s.Name {
		case ".debug_info":
			t.info = b
		case ".debug_abbrev":
			t.abbrev = b
		case ".debug_str", ".debug_line_str", ".debug_str_offsets", ".debug_addr":
			t.extra[s.Name] = b
		}
	}
	// A reference of form DW_FORM_ref_addr crosses compile units, which
	// per-unit views cannot follow: such units are read through one view
	// of the whole section, built only if needed.
	t.wholeFn = func() (*dwarf.Data, error) { return t.newData(t.info) }
	return t, nil
}

// newData builds a dwarf.Data over info (the whole section or one unit).
// dwarf.New parses every unit header and abbreviation table in info: ~0.2 s
// for a whole vmlinux, microseconds for one unit.
func (t *Types) newData(info []byte) (*dwarf.Data, error) {
	d, err := dwarf.New(t.abbrev, nil, nil, info, nil, nil, nil, t.extra[".debug_str"])
	if err != nil {
		return nil, err
	}
	for _, n := range []string{".debug_line_str", ".debug_str_offsets", ".debug_addr"} {
		if b, ok := t.extra[n]; ok {
			if err := d.AddSection(n, b); err != nil {
				return nil, err
			}
		}
	}
	return d, nil
}

// wholeData returns the dwarf.Data over all of .debug_info.
func (t *Types) wholeData() (*dwarf.Data, error) {
	if t.whole == nil {
		d, err := t.wholeFn()
		if err != nil {
			return nil, fmt.Errorf("DWARF: %w: %w", vmi.ErrFormat, err)
		}
		t.whole = d
	}
	return t.whole, nil
}

// unitAt returns the view that can decode the unit starting at cu (an
// offset in .debug_info; ignored in whole mode). Callers hold t.mu.
func (t *Types) unitAt(cu uint64) (*unit, error) {
	if u, ok := t.units[cu]; ok {
		return u, nil
	}
	u := &unit{}
	if t.info == nil {
		d, err := t.wholeData()
		if err != nil {
			return nil, err
		}
		u.d = d
	} else {
		end, crosses, err := unitBounds(t.info, t.abbrev, t.bo, cu)
		if err != nil {
			return nil, err
		}
		if crosses {
			if u.d, err = t.wholeData(); err != nil {
				return nil, err
			}
		} else {
			if u.d, err = t.newData(t.info[cu:end]); err != nil {
				return nil, fmt.Errorf("DWARF unit at %#x: %w: %w", cu, vmi.ErrFormat, err)
			}
			u.base = cu
		}
	}
	t.units[cu] = u
	return u, nil
}

// firewall turns a panic in debug/dwarf or debug/elf on hostile input into
// an error: those packages aim not to panic, but a profile loader must not
// take the session down if they miss a case.
func firewall(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("DWARF decoder failed on malformed input (%v): %w", r, vmi.ErrFormat)
	}
}
