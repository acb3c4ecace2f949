package isf

import (
	"fmt"
	"slices"
	"strings"

	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/linux/symbols"
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

// Offsetof returns the byte offset of member in structName. member is a
// path as for btfsrc: "list.next", "core_layout.size", "name[3]"; members
// of anonymous structs and unions are found as in C. structName may be
// "module", "struct module" or "union foo"; an ISF has no typedefs, so a
// typedef name is not found. Bitfields have no byte offset: an error.
func (p *Profile) Offsetof(structName, member string) (uint64, error) {
	tag, name := splitTag(structName)
	u, err := p.composite(tag, name)
	if err != nil {
		return 0, err
	}
	if member == "" {
		return 0, fmt.Errorf("empty member path: %w", vmi.ErrNotFound)
	}
	var off uint64
	comps := strings.Split(member, ".")
	for i, comp := range comps {
		fname, idxs, err := splitIndexes(comp)
		if err != nil {
			return 0, fmt.Errorf("member path %q: %w", member, err)
		}
		f, foff, found, err := p.findField(u, fname, 0)
		if err != nil {
			return 0, fmt.Errorf("member path %q: %w", member, err)
		}
		if !found {
			return 0, p.noMember(u, name, fname, member)
		}
		if off, err = addOffset(off, foff); err != nil {
			return 0, fmt.Errorf("member path %q: %w", member, err)
		}
		d := f.Type
		if d == nil {
			return 0, fmt.Errorf("ISF %s: member %q has no type: %w", p.name, comp, vmi.ErrFormat)
		}
		if d.Kind == "bitfield" {
			return 0, fmt.Errorf("%s.%s is a bitfield, it has no byte offset: %w", structName, member, vmi.ErrUnsupported)
		}
		for _, idx := range idxs {
			if d.Kind != "array" || d.Subtype == nil {
				return 0, fmt.Errorf("member path %q: %s is a %s, not an array: %w", member, comp, d.Kind, vmi.ErrNotFound)
			}
			count, err := num(d.Count, "array count")
			if err != nil {
				return 0, fmt.Errorf("ISF %s: %w", p.name, err)
			}
			// Count 0 is a flexible array member: any index, as in C.
			if count != 0 && idx >= count {
				return 0, fmt.Errorf("member path %q: index %d out of range [0, %d): %w", member, idx, count, vmi.ErrNotFound)
			}
			esz, err := p.descSize(d.Subtype, 0)
			if err != nil {
				return 0, err
			}
			if esz != 0 && idx > maxOffset/esz {
				return 0, fmt.Errorf("member path %q: index %d too large: %w", member, idx, vmi.ErrLimit)
			}
			if off, err = addOffset(off, idx*esz); err != nil {
				return 0, fmt.Errorf("member path %q: %w", member, err)
			}
			d = d.Subtype
		}
		if i == len(comps)-1 {
			break
		}
		if d.Kind != "struct" && d.Kind != "union" {
			return 0, fmt.Errorf("member path %q: %q is a %s, not a struct or union: %w", member, comp, d.Kind, vmi.ErrNotFound)
		}
		if u, err = p.userType(d.Name); err != nil {
			return 0, err
		}
		name = d.Name
	}
	return off, nil
}

func addOffset(a, b uint64) (uint64, error) {
	if a > maxOffset || b > maxOffset-a {
		return 0, fmt.Errorf("offset beyond %d: %w", uint64(maxOffset), vmi.ErrLimit)
	}
	return a + b, nil
}

// composite finds a struct or union; tag is "struct", "union" or "".
func (p *Profile) composite(tag, name string) (*userType, error) {
	if tag == "enum" {
		return nil, fmt.Errorf("enum %s has no members: %w", name, vmi.ErrNotFound)
	}
	u, err := p.userType(name)
	if err != nil {
		return nil, err
	}
	if tag != "" && u.kind != tag {
		return nil, fmt.Errorf("%s %s: ISF %s has it as a %s: %w", tag, name, p.name, u.kind, vmi.ErrNotFound)
	}
	return u, nil
}

// findField finds name among u's fields, descending into anonymous ones as
// Volatility's 6.2 reader flattens them. off is the field's offset from u.
func (p *Profile) findField(u *userType, name string, depth int) (f fieldJSON, off uint64, found bool, err error) {
	if depth > maxDepth {
		return f, 0, false, fmt.Errorf("anonymous members nested deeper than %d: %w", maxDepth, vmi.ErrLimit)
	}
	if f, ok := u.fields[name]; ok {
		off, err := num(f.Offset, "offset of "+name)
		return f, off, err == nil, err
	}
	// Anonymous members in name order, so that a (malformed) name found
	// in two of them resolves the same way every time.
	var anon []string
	for n, f := range u.fields {
		if f.Anonymous {
			anon = append(anon, n)
		}
	}
	slices.Sort(anon)
	for _, n := range anon {
		a := u.fields[n]
		if a.Type == nil || (a.Type.Kind != "struct" && a.Type.Kind != "union") {
			continue
		}
		inner, err := p.userType(a.Type.Name)
		if err != nil {
			return f, 0, false, err
		}
		f, ioff, ok, err := p.findField(inner, name, depth+1)
		if err != nil {
			return f, 0, false, err
		}
		if ok {
			aoff, err := num(a.Offset, "offset of "+n)
			if err != nil {
				return f, 0, false, err
			}
			return f, aoff + ioff, true, nil
		}
	}
	return f, 0, false, nil
}

// noMember names a few of the members there are.
func (p *Profile) noMember(u *userType, structName, name, path string) error {
	var names []string
	for n, f := range u.fields {
		if !f.Anonymous {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	list := strings.Join(names, ", ")
	if len(names) > 8 {
		list = strings.Join(names[:8], ", ") + ", ..."
	}
	where := u.kind + " " + structName
	if name != path {
		where += fmt.Sprintf(" (in path %q)", path)
	}
	return fmt.Errorf("no member %q in %s (members: %s): %w", name, where, list, vmi.ErrNotFound)
}

// Sizeof returns the size in bytes of a type: "struct module", "module",
// "long unsigned int", "enum pid_type", or a pointer such as "struct page *".
// Typedefs ("u64") are not in an ISF.
func (p *Profile) Sizeof(typeName string) (uint64, error) {
	if strings.HasSuffix(strings.TrimSpace(typeName), "*") {
		return uint64(p.ptrSize), nil
	}
	tag, name := splitTag(typeName)
	switch tag {
	case "struct", "union":
		u, err := p.composite(tag, name)
		if err != nil {
			return 0, err
		}
		return u.size, nil
	case "enum":
		return p.enumSize(name)
	}
	if _, ok := p.rawUser(name); ok {
		u, err := p.userType(name)
		if err != nil {
			return 0, err
		}
		return u.size, nil
	}
	if b, ok := p.base[name]; ok {
		sz, err := num(b.Size, "size of "+name)
		if err != nil {
			return 0, fmt.Errorf("ISF %s: %w", p.name, err)
		}
		return sz, nil
	}
	if _, ok := p.rawEnum(name); ok {
		return p.enumSize(name)
	}
	return 0, fmt.Errorf("no type %q in ISF %s (an ISF has structs, unions, enums and base types; typedefs are resolved away): %w",
		typeName, p.name, vmi.ErrNotFound)
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
