package dwarfsrc

import (
	"debug/dwarf"
	"fmt"
	"strings"

	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/linux/memberpath"
)

// resolvePath walks a member path ("core_layout.size", "layouts[2].base")
// from the struct at r. The semantics are those of btfsrc, so that a
// script gets the same answers whichever source the layouts came from.
func (t *Types) resolvePath(r ref, path string) (member, error) {
	if path == "" {
		return member{}, fmt.Errorf("empty member path: %w", vmi.ErrNotFound)
	}
	var (
		bitOff  uint64
		bitSize uint64
		cur     = r
		last    string
	)
	for comp := range strings.SplitSeq(path, ".") {
		name, idxs, err := splitIndexes(comp)
		if err != nil {
			return member{}, fmt.Errorf("member path %q: %w", path, err)
		}
		_, n, err := t.strip(cur)
		if err != nil {
			return member{}, err
		}
		if n == nil || !isComposite(n.tag) {
			return member{}, fmt.Errorf("member path %q: %q is a %s, not a struct or union: %w",
				path, last, describe(n), vmi.ErrNotFound)
		}
		m, off, found, err := t.findMember(n, name, 0)
		if err != nil {
			return member{}, fmt.Errorf("member path %q: %w", path, err)
		}
		if !found {
			return member{}, t.noMember(n, name, path)
		}
		bitOff += off
		bitSize = m.bitSize
		cur = m.typ
		if bitOff, err = t.index(cur, bitOff, idxs, path, comp, &cur); err != nil {
			return member{}, err
		}
		if len(idxs) > 0 {
			bitSize = 0 // an element of an array member is not a bitfield
		}
		last = comp
	}
	if bitSize == 0 && bitOff%8 != 0 {
		return member{}, fmt.Errorf("member %q at bit %d is not byte-aligned: %w", path, bitOff, vmi.ErrFormat)
	}
	return member{off: bitOff / 8, bitOff: bitOff, bitSize: bitSize}, nil
}

// index applies array indexes to the member of type typ at bitOff and sets
// *elem to the element type. DWARF gives "int m[3][4]" one array entry
// with two dimensions, while "typedef int row[4]; row m[3]" nests two
// array entries: both index the same way.
func (t *Types) index(typ ref, bitOff uint64, idxs []uint64, path, comp string, elem *ref) (uint64, error) {
	var dims []uint64
	cur := typ
	for _, idx := range idxs {
		if len(dims) == 0 {
			_, n, err := t.strip(cur)
			if err != nil {
				return 0, err
			}
			if n == nil || n.tag != dwarf.TagArrayType || len(n.dims) == 0 || !n.hasType {
				return 0, fmt.Errorf("member path %q: %s is a %s, not an array: %w", path, comp, describe(n), vmi.ErrNotFound)
			}
			dims, cur = n.dims, n.typ
		}
		// Count 0 is a flexible array member: any index, as in C.
		if dims[0] != 0 && idx >= dims[0] {
			return 0, fmt.Errorf("member path %q: index %d out of range [0, %d): %w", path, idx, dims[0], vmi.ErrNotFound)
		}
		stride, err := t.size(cur)
		if err != nil {
			return 0, fmt.Errorf("member path %q: %w", path, err)
		}
		for _, d := range dims[1:] {
			if d != 0 && stride > (1<<40)/d {
				return 0, fmt.Errorf("member path %q: array too large: %w", path, vmi.ErrLimit)
			}
			stride *= d
		}
		if stride != 0 && idx > (1<<40)/stride {
			return 0, fmt.Errorf("member path %q: index %d too large: %w", path, idx, vmi.ErrLimit)
		}
		bitOff += idx * stride * 8
		dims = dims[1:]
	}
	if len(dims) > 0 {
		// A partly indexed array ("m[1]" of "int m[3][4]") is a row, whose
		// type has no entry of its own; the caller only needs its offset.
		*elem = typ
		return bitOff, nil
	}
	*elem = cur
	return bitOff, nil
}

// splitIndexes splits "arr[3][2]" into "arr" and [3 2].
func splitIndexes(comp string) (string, []uint64, error) { return memberpath.SplitIndexes(comp) }

// findMember looks for name among the members of composite n, descending
// into anonymous struct and union members as C does. off is the member's
// bit offset in n.
func (t *Types) findMember(n *node, name string, depth int) (m memberNode, off uint64, found bool, err error) {
	if depth > maxDepth {
		return m, 0, false, fmt.Errorf("anonymous members nested deeper than %d: %w", maxDepth, vmi.ErrLimit)
	}
	for _, mm := range n.members {
		if mm.name == name && name != "" {
			off, err := t.memberBits(mm)
			return mm, off, err == nil, err
		}
		if mm.name != "" {
			continue
		}
		_, inner, err := t.strip(mm.typ)
		if err != nil {
			return m, 0, false, err
		}
		if inner == nil || !isComposite(inner.tag) {
			continue
		}
		im, ioff, ok, err := t.findMember(inner, name, depth+1)
		if err != nil {
			return m, 0, false, err
		}
		if ok {
			base, err := t.memberBits(mm)
			if err != nil {
				return m, 0, false, err
			}
			return im, base + ioff, true, nil
		}
	}
	return m, 0, false, nil
}

// noMember builds the not-found error, naming a few of the members there are.
func (t *Types) noMember(n *node, name, path string) error {
	var names []string
	var collect func(n *node, depth int)
	collect = func(n *node, depth int) {
		for _, mm := range n.members {
			if len(names) > 8 || depth > 3 {
				return
			}
			if mm.name != "" {
				names = append(names, mm.name)
			} else if _, inner, err := t.strip(mm.typ); err == nil && inner != nil && isComposite(inner.tag) {
				collect(inner, depth+1)
			}
		}
	}
	collect(n, 0)
	list := strings.Join(names, ", ")
	if len(names) > 8 {
		list = strings.Join(names[:8], ", ") + ", ..."
	}
	where := describe(n)
	if name != path {
		where += fmt.Sprintf(" (in path %q)", path)
	}
	return fmt.Errorf("no member %q in %s (members: %s): %w", name, where, list, vmi.ErrNotFound)
}
