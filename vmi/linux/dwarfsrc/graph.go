package dwarfsrc

import (
	"debug/dwarf"
	"fmt"
	"strings"

	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/types"
)

// DWARF base type encodings (DWARF 5, 7.8).
const (
	ateBoolean      = 0x02
	ateFloat        = 0x04
	ateSigned       = 0x05
	ateSignedChar   = 0x06
	ateUnsigned     = 0x07
	ateUnsignedChar = 0x08
)

// Graph returns the DWARF's types as the project's one type graph
// (vmi/types), converted lazily: a lookup decodes and converts the closure
// of the type it finds, once. Declarations resolve to the complete
// definition in another unit; qualifiers are dropped; multi-dimensional
// arrays become arrays of arrays. Safe for concurrent use.
func (t *Types) Graph() types.Graph {
	t.graphOnce.Do(func() { t.graph = &graph{t: t, conv: map[uint64]*types.Type{}, enumVals: map[[2]string]int64{}} })
	return t.graph
}

type graph struct {
	t        *Types
	conv     map[uint64]*types.Type // entry offset -> type (under t.mu)
	enumVals map[[2]string]int64
	work     []ref
	fresh    []uint64
	void     *types.Type
}

// Lookup implements types.Graph.
func (g *graph) Lookup(name string) (tt *types.Type, err error) {
	defer firewall(&err)
	if err := g.t.ensureIndex(); err != nil {
		return nil, fmt.Errorf("DWARF index: %w", err)
	}
	g.t.mu.Lock()
	defer g.t.mu.Unlock()
	sp := types.ParseSpelling(name)
	for _, k := range sp.Kinds {
		key := map[types.Kind]byte{types.Struct: 's', types.Union: 'u', types.Typedef: 't', types.Enum: 'e', types.Int: 'b', types.Float: 'b'}[k]
		r, ok := g.t.idx.find(string(key) + sp.Name)
		if !ok && key == 'b' {
			r, ok = g.t.idx.find("b" + strings.Join(strings.Fields(name), " "))
		}
		if !ok {
			continue
		}
		if n, err := g.t.node(r); err == nil && n.decl && key != 't' {
			if _, dn, err := g.t.strip(r); err != nil || dn == nil {
				return nil, fmt.Errorf("%s is only declared in the DWARF, never defined: %w", describe(n), vmi.ErrNotFound)
			}
		}
		tt, err := g.convert(r)
		if err != nil {
			return nil, fmt.Errorf("type %q: %w", name, err)
		}
		if (k == types.Int || k == types.Float) && tt.Kind != k {
			continue
		}
		return tt, nil
	}
	return nil, types.NotFound(name, "DWARF")
}

// EnumValue implements types.Graph. Without an enum name only enums that a
// lookup already converted are searched: the index names enums, not their
// constants.
func (g *graph) EnumValue(enum, name string) (v int64, err error) {
	defer firewall(&err)
	if err := g.t.ensureIndex(); err != nil {
		return 0, fmt.Errorf("DWARF index: %w", err)
	}
	g.t.mu.Lock()
	defer g.t.mu.Unlock()
	var enums []*types.Type
	if enum != "" {
		en := types.ParseSpelling("enum " + strings.TrimPrefix(strings.TrimSpace(enum), "enum ")).Name
		if r, ok := g.t.idx.find("e" + en); ok {
			e, err := g.convert(r)
			if err != nil {
				return 0, err
			}
			enums = append(enums, e)
		}
	} else {
		for _, c := range g.conv {
			if c.Kind == types.Enum {
				enums = append(enums, c)
			}
		}
	}
	return types.EnumValueIn(enums, enum, name, "DWARF")
}

// convert converts the type at r and its closure; t.mu is held. On error
// nothing of this conversion stays memoized.
func (g *graph) convert(r ref) (*types.Type, error) {
	g.work, g.fresh = g.work[:0], g.fresh[:0]
	root, err := g.node(r, true)
	for err == nil && len(g.work) > 0 {
		next := g.work[len(g.work)-1]
		g.work = g.work[:len(g.work)-1]
		err = g.fill(next, g.conv[next.off])
	}
	if err != nil {
		for _, f := range g.fresh {
			delete(g.conv, f)
		}
		return nil, err
	}
	return root, nil
}

// node returns the (maybe not yet filled) type at r, seeing through
// qualifiers and declarations. has false is void.
func (g *graph) node(r ref, has bool) (*types.Type, error) {
	for range maxDepth {
		if !has {
			if g.void == nil {
				g.void = &types.Type{Kind: types.Void, Name: "void"}
			}
			return g.void, nil
		}
		if c, ok := g.conv[r.off]; ok {
			return c, nil
		}
		n, err := g.t.node(r)
		if err != nil {
			return nil, err
		}
		switch n.tag {
		case dwarf.TagConstType, dwarf.TagVolatileType, dwarf.TagRestrictType,
			dwarf.TagAtomicType, dwarf.TagImmutableType, dwarf.TagSharedType:
			r, has = n.typ, n.hasType
			continue
		case dwarf.TagStructType, dwarf.TagUnionType, dwarf.TagClassType, dwarf.TagEnumerationType:
			if n.decl && n.name != "" {
				kind := map[dwarf.Tag]byte{dwarf.TagStructType: 's', dwarf.TagClassType: 's', dwarf.TagUnionType: 'u', dwarf.TagEnumerationType: 'e'}[n.tag]
				if full, ok := g.t.idx.find(string(kind) + n.name); ok && full != r {
					r = full
					continue
				}
			}
		}
		c := &types.Type{}
		g.conv[r.off] = c
		g.fresh = append(g.fresh, r.off)
		g.work = append(g.work, r)
		return c, nil
	}
	return nil, fmt.Errorf("DWARF entry %#x: qualifier chain longer than %d: %w", r.off, maxDepth, vmi.ErrLimit)
}

// fill converts the entry at r into c.
func (g *graph) fill(r ref, c *types.Type) error {
	n, err := g.t.node(r)
	if err != nil {
		return err
	}
	switch n.tag {
	case dwarf.TagBaseType:
		c.Name, c.Size = types.CanonicalName(n.name), n.size
		switch n.enc {
		case ateFloat:
			c.Kind, c.Signed = types.Float, true
		case ateSigned, ateSignedChar:
			c.Kind, c.Signed = types.Int, true
		default:
			c.Kind = types.Int
		}
	case dwarf.TagPointerType, dwarf.TagReferenceType, dwarf.TagRvalueReferenceType:
		c.Kind, c.Size = types.Pointer, uint64(g.t.ptrSize)
		if n.hasSize {
			c.Size = n.size
		}
		c.Target, err = g.node(n.typ, n.hasType)
	case dwarf.TagTypedef:
		c.Kind, c.Name = types.Typedef, n.name
		if sz, err := g.t.size(r); err == nil {
			c.Size = sz
		}
		c.Target, err = g.node(n.typ, n.hasType)
	case dwarf.TagArrayType:
		elem, err := g.node(n.typ, n.hasType)
		if err != nil {
			return err
		}
		dims := n.dims
		if len(dims) == 0 {
			dims = []uint64{0}
		}
		// int m[2][3]: an array of 2 arrays of 3 ints; build from the inside.
		esz, err := g.t.size(n.typ)
		if !n.hasType || err != nil {
			esz = 0
		}
		for i := len(dims) - 1; i >= 1; i-- {
			esz = min(esz*dims[i], 1<<41)
			elem = &types.Type{Kind: types.Array, Len: dims[i], Size: esz, Target: elem}
		}
		c.Kind, c.Len, c.Target = types.Array, dims[0], elem
		if sz, err := g.t.size(r); err == nil {
			c.Size = sz
		}
	case dwarf.TagStructType, dwarf.TagUnionType, dwarf.TagClassType:
		c.Kind, c.Name, c.Size = types.Struct, n.name, n.size
		if n.tag == dwarf.TagUnionType {
			c.Kind = types.Union
		}
		c.Members = make([]types.Member, len(n.members))
		for i, m := range n.members {
			bit, err := g.t.memberBits(m)
			if err != nil {
				return fmt.Errorf("%s: %w", describe(n), err)
			}
			tm := &c.Members[i]
			tm.Name, tm.BitOffset, tm.BitSize = m.name, bit, uint32(min(m.bitSize, 1<<16))
			if tm.Type, err = g.node(m.typ, true); err != nil {
				return err
			}
		}
	case dwarf.TagEnumerationType:
		c.Kind, c.Name, c.Size = types.Enum, n.name, n.size
		if n.hasType {
			if _, bn, err := g.t.strip(n.typ); err == nil && bn != nil && (bn.enc == ateSigned || bn.enc == ateSignedChar) {
				c.Signed = true
			}
		}
		c.Enumerators = make([]types.Enumerator, len(n.consts))
		for i, k := range n.consts {
			c.Enumerators[i] = types.Enumerator{Name: k.name, Value: k.value}
			if k.value < 0 {
				c.Signed = true
			}
		}
	case dwarf.TagSubroutineType, dwarf.TagSubprogram:
		c.Kind, c.Name = types.Func, n.name
	default:
		c.Kind, c.Name = types.Void, "void" // unspecified types and the like
	}
	return err
}
