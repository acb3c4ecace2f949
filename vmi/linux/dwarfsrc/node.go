package dwarfsrc

import (
	"debug/dwarf"
	"fmt"

	"github.com/xascript/xascript/vmi"
)

// maxChildren bounds the members or dimensions read from one entry.
const maxChildren = 1 << 16

// node decodes (once) the entry at r, with its members or array
// dimensions. Callers hold t.mu.
func (t *Types) node(r ref) (*node, error) {
	if n, ok := t.nodes[r.off]; ok {
		return n, nil
	}
	u, err := t.unitAt(r.cu)
	if err != nil {
		return nil, err
	}
	if r.off < u.base {
		return nil, fmt.Errorf("DWARF entry %#x lies before its unit at %#x: %w", r.off, u.base, vmi.ErrFormat)
	}
	rd := u.d.Reader()
	rd.Seek(dwarf.Offset(r.off - u.base))
	e, err := rd.Next()
	if err != nil {
		return nil, fmt.Errorf("DWARF entry %#x: %w: %w", r.off, vmi.ErrFormat, err)
	}
	if e == nil || uint64(e.Offset) != r.off-u.base {
		return nil, fmt.Errorf("no DWARF entry at %#x: %w", r.off, vmi.ErrFormat)
	}
	n := &node{tag: e.Tag}
	n.name, _ = e.Val(dwarf.AttrName).(string)
	n.decl, _ = e.Val(dwarf.AttrDeclaration).(bool)
	if v, ok := e.Val(dwarf.AttrByteSize).(int64); ok && v >= 0 {
		n.size, n.hasSize = uint64(v), true
	}
	if v, ok := e.Val(dwarf.AttrType).(dwarf.Offset); ok {
		n.typ, n.hasType = ref{r.cu, u.base + uint64(v)}, true
	}
	n.enc, _ = e.Val(dwarf.AttrEncoding).(int64)
	if e.Children && (isComposite(n.tag) || n.tag == dwarf.TagArrayType || n.tag == dwarf.TagEnumerationType) {
		if err := t.children(rd, u, r, n); err != nil {
			return nil, fmt.Errorf("DWARF entry %#x (%s): %w", r.off, describe(n), err)
		}
	}
	t.nodes[r.off] = n
	return n, nil
}

// children reads the members of a struct or union, or the subranges of an
// array, skipping everything else (nested type definitions, functions).
func (t *Types) children(rd *dwarf.Reader, u *unit, r ref, n *node) error {
	for i := 0; ; i++ {
		if i > maxChildren {
			return fmt.Errorf("more than %d children: %w", maxChildren, vmi.ErrLimit)
		}
		e, err := rd.Next()
		if err != nil {
			return fmt.Errorf("%w: %w", vmi.ErrFormat, err)
		}
		if e == nil || e.Tag == 0 {
			return nil
		}
		switch {
		case e.Tag == dwarf.TagMember && n.tag != dwarf.TagArrayType:
			n.members = append(n.members, t.memberOf(e, u, r))
		case e.Tag == dwarf.TagSubrangeType && n.tag == dwarf.TagArrayType:
			n.dims = append(n.dims, count(e))
		case e.Tag == dwarf.TagEnumerator && n.tag == dwarf.TagEnumerationType:
			c := enumConst{}
			c.name, _ = e.Val(dwarf.AttrName).(string)
			switch v := e.Val(dwarf.AttrConstValue).(type) {
			case int64:
				c.value = v
			case uint64:
				c.value = int64(v)
			}
			n.consts = append(n.consts, c)
		}
		if e.Children {
			rd.SkipChildren()
		}
	}
}

// memberOf decodes a member's name, type and bit position. DWARF 4 and 5
// give bitfields DW_AT_data_bit_offset; DWARF 2 and 3 give the storage
// unit's byte offset and DW_AT_bit_offset counted from its most
// significant bit, which GCC still emits with -gdwarf-2/3.
func (t *Types) memberOf(e *dwarf.Entry, u *unit, r ref) memberNode {
	m := memberNode{}
	m.name, _ = e.Val(dwarf.AttrName).(string)
	if v, ok := e.Val(dwarf.AttrType).(dwarf.Offset); ok {
		m.typ = ref{r.cu, u.base + uint64(v)}
	} else {
		m.err = fmt.Errorf("member %q has no type: %w", m.name, vmi.ErrFormat)
	}
	if v, ok := e.Val(dwarf.AttrBitSize).(int64); ok && v > 0 {
		m.bitSize = uint64(v)
	}
	if v, ok := e.Val(dwarf.AttrDataBitOffset).(int64); ok {
		if v < 0 {
			m.err = fmt.Errorf("member %q at negative bit offset %d: %w", m.name, v, vmi.ErrFormat)
		}
		m.bitOff = uint64(v)
		return m
	}
	var byteOff uint64
	switch v := e.Val(dwarf.AttrDataMemberLoc).(type) {
	case nil: // union members, and the first member with some producers
	case int64:
		if v < 0 {
			m.err = fmt.Errorf("member %q at negative offset %d: %w", m.name, v, vmi.ErrFormat)
		}
		byteOff = uint64(v)
	case []byte:
		// DWARF 2 spells a constant offset as the expression
		// DW_OP_plus_uconst N.
		off, ok := plusUconst(v)
		if !ok {
			m.err = fmt.Errorf("member %q has a location expression (% x) that is not a constant offset: %w", m.name, v, vmi.ErrUnsupported)
		}
		byteOff = off
	default:
		m.err = fmt.Errorf("member %q has a location of type %T: %w", m.name, v, vmi.ErrUnsupported)
	}
	if byteOff > 1<<40 {
		m.err = fmt.Errorf("member %q at offset %#x: %w", m.name, byteOff, vmi.ErrFormat)
	}
	m.bitOff = byteOff * 8
	if bo, ok := e.Val(dwarf.AttrBitOffset).(int64); ok && m.bitSize != 0 {
		// Resolved per query (bitOffset): the storage size may need the
		// member's type, and reading types while reading this entry's
		// children could recurse without bound on cyclic input.
		m.legacy = &legacyBits{bitOffset: bo, storage: -1}
		if sz, ok := e.Val(dwarf.AttrByteSize).(int64); ok {
			m.legacy.storage = sz
		}
	}
	return m
}

// legacyBits is a DWARF 2/3 bitfield position: DW_AT_bit_offset counts
// from the most significant bit of a storage unit of storage bytes.
type legacyBits struct{ bitOffset, storage int64 }

// memberBits returns m's bit offset in its container.
func (t *Types) memberBits(m memberNode) (uint64, error) {
	if m.err != nil {
		return 0, m.err
	}
	if m.legacy == nil {
		return m.bitOff, nil
	}
	storage := m.legacy.storage
	if storage < 0 {
		sz, err := t.size(m.typ)
		if err != nil {
			return 0, fmt.Errorf("bitfield %q: %w", m.name, err)
		}
		storage = int64(min(sz, 1<<20))
	}
	bo := m.legacy.bitOffset
	lsb := storage*8 - bo - int64(m.bitSize)
	if t.bigEndian() {
		lsb = bo
	}
	if lsb < 0 || bo < 0 || storage > 1<<20 {
		return 0, fmt.Errorf("bitfield %q has bit offset %d in %d bytes: %w", m.name, bo, storage, vmi.ErrFormat)
	}
	return m.bitOff + uint64(lsb), nil
}

func (t *Types) bigEndian() bool { return t.bo != nil && t.bo.Uint16([]byte{0, 1}) == 1 }

// plusUconst decodes the expression DW_OP_plus_uconst N (0x23, ULEB128).
func plusUconst(expr []byte) (uint64, bool) {
	if len(expr) < 2 || expr[0] != 0x23 {
		return 0, false
	}
	var v uint64
	for i, c := range expr[1:] {
		if i >= 9 {
			return 0, false
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return v, i+2 == len(expr)
		}
	}
	return 0, false
}

// count is the element count of an array dimension: DW_AT_count, or
// DW_AT_upper_bound minus DW_AT_lower_bound plus one. 0 when unknown: a
// flexible array member ("long tail[]"), a zero-length array, or a bound
// that is not a constant (a variable-length array).
func count(e *dwarf.Entry) uint64 {
	if c, ok := e.Val(dwarf.AttrCount).(int64); ok {
		return uint64(max(c, 0))
	}
	ub, ok := e.Val(dwarf.AttrUpperBound).(int64)
	if !ok {
		return 0
	}
	lb, _ := e.Val(dwarf.AttrLowerBound).(int64)
	// GCC spells "[0]" as upper bound -1, sometimes as the unsigned
	// all-ones of a 4-byte form.
	if ub == -1 || ub == 0xffffffff || ub < lb {
		return 0
	}
	return uint64(ub-lb) + 1
}
