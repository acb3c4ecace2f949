package isf

import (
	"fmt"
	"slices"
	"strings"

	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/linux/symbols"
	"github.com/xascript/xascript/vmi/types"
)

// Lookup returns the address of symbol name as the ISF has it (link-time,
// for ISFs made from a System.map).
func (p *Profile) Lookup(name string) (uint64, bool) {
	a, ok := p.symbolMap()[name]
	return a, ok
}

// Symbols lists the symbols sorted by address, then name, for
// symbols.FromList. An ISF does not record nm type letters, so Type is '?'
// (nm's "unknown").
func (p *Profile) Symbols() []symbols.Symbol {
	syms := p.symbolMap()
	out := make([]symbols.Symbol, 0, len(syms))
	for name, a := range syms {
		out = append(out, symbols.Symbol{Addr: a, Type: '?', Name: name})
	}
	slices.SortFunc(out, func(a, b symbols.Symbol) int {
		if a.Addr != b.Addr {
			if a.Addr < b.Addr {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// Offsetof returns the byte offset of member in structName, through the
// type graph (Graph) and the project's one resolver (types.Offsetof): member
// is a path ("list.next", "core_layout.size", "name[3]"); structName may be
// "module", "struct module" or "union foo"; an ISF has no typedefs, so a
// typedef name is not found. A bitfield is an error wrapping
// vmi.ErrUnsupported.
func (p *Profile) Offsetof(structName, member string) (uint64, error) {
	return types.Offsetof(p.Graph(), structName, member)
}

// Sizeof returns the size in bytes of a type: "struct module", "module",
// "long unsigned int", "enum pid_type", or a pointer such as "struct page *".
// Typedefs ("u64") are not in an ISF.
func (p *Profile) Sizeof(typeName string) (uint64, error) {
	return types.Sizeof(p.Graph(), typeName, p.ptrSize)
}

// descSize is the size of the type a descriptor names.
func (p *Profile) descSize(d *typeDesc, depth int) (uint64, error) {
	if depth > maxDepth {
		return 0, fmt.Errorf("ISF %s: type descriptors nested deeper than %d: %w", p.name, maxDepth, vmi.ErrLimit)
	}
	switch d.Kind {
	case "pointer":
		return uint64(p.ptrSize), nil
	case "base":
		b, ok := p.base[d.Name]
		if !ok {
			return 0, fmt.Errorf("no base type %q in ISF %s: %w", d.Name, p.name, vmi.ErrNotFound)
		}
		return num(b.Size, "size of "+d.Name)
	case "struct", "union", "class":
		u, err := p.userType(d.Name)
		if err != nil {
			return 0, err
		}
		return u.size, nil
	case "enum":
		return p.enumSize(d.Name)
	case "array":
		if d.Subtype == nil {
			return 0, fmt.Errorf("ISF %s: array without subtype: %w", p.name, vmi.ErrFormat)
		}
		count, err := num(d.Count, "array count")
		if err != nil {
			return 0, fmt.Errorf("ISF %s: %w", p.name, err)
		}
		esz, err := p.descSize(d.Subtype, depth+1)
		if err != nil {
			return 0, err
		}
		if esz != 0 && count > maxOffset/esz {
			return 0, fmt.Errorf("ISF %s: array of %d elements of %d bytes is too large: %w", p.name, count, esz, vmi.ErrLimit)
		}
		return count * esz, nil
	case "bitfield":
		if d.Type == nil {
			return 0, fmt.Errorf("ISF %s: bitfield without type: %w", p.name, vmi.ErrFormat)
		}
		return p.descSize(d.Type, depth+1)
	}
	return 0, fmt.Errorf("ISF %s: a %q type has no size: %w", p.name, d.Kind, vmi.ErrUnsupported)
}
