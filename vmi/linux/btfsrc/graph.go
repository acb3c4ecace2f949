package btfsrc

import (
	"fmt"
	"strings"
	"sync"
	"unsafe"

	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/types"
)

// Graph returns the blob's types as the project's one type graph
// (vmi/types). Conversion is lazy: a lookup converts the closure of the type
// it finds (everything reachable through members, pointers, arrays and
// typedefs) once, so loading a profile costs nothing more and a script pays
// only for the types it touches. Safe for concurrent use; what a lookup
// returns never changes afterwards.
func (t *Types) Graph() types.Graph {
	t.graphOnce.Do(func() { t.graph = &graph{t: t, byName: map[string]*types.Type{}, enumVals: map[[2]string]int64{}} })
	return t.graph
}

// TypeByID converts BTF type id (and its closure) into the graph: how split
// BTF (a module's) refers to its base.
func (t *Types) TypeByID(id uint32) (*types.Type, error) {
	g := t.Graph().(*graph)
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.prepare(); err != nil {
		return nil, err
	}
	return g.convert(id)
}

type graph struct {
	t        *Types
	mu       sync.Mutex
	conv     []*types.Type          // BTF id -> converted type (qualifiers and forward declarations resolved)
	strs     string                 // the string section in place (unsafe.String): names are substrings of it
	byName   map[string]*types.Type // Lookup spellings answered
	enumVals map[[2]string]int64
	work     []uint32     // ids allocated but not yet filled, during convert
	fresh    []uint32     // ids allocated by the current convert (dropped on error)
	slab     []types.Type // types, members and enumerators are allocated in chunks
	mslab    []types.Member
	eslab    []types.Enumerator
}

// prepare sizes the id table and copies the string section, once; g.mu is held.
func (g *graph) prepare() error {
	if err := g.t.b.index(); err != nil {
		return err
	}
	if g.conv == nil {
		g.conv = make([]*types.Type, g.t.b.numTypes()+1)
		// No copy of the 2-3 MB string section: names alias the blob, which
		// therefore stays mapped once the graph is used (Types.Close).
		if len(g.t.b.strings) > 0 {
			g.strs = unsafe.String(&g.t.b.strings[0], len(g.t.b.strings))
		}
	}
	return nil
}

// used reports whether the graph has converted anything (its names alias the blob).
func (g *graph) used() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.conv != nil
}

// name is the string at off, without allocating.
func (g *graph) name(off uint32) string {
	if uint64(off) >= uint64(len(g.strs)) {
		return ""
	}
	s := g.strs[off:]
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return s
}

func (g *graph) members(n int) []types.Member {
	if n > 64 {
		return make([]types.Member, n)
	}
	if len(g.mslab)+n > cap(g.mslab) {
		g.mslab = make([]types.Member, 0, 1024)
	}
	g.mslab = g.mslab[:len(g.mslab)+n]
	return g.mslab[len(g.mslab)-n : len(g.mslab) : len(g.mslab)]
}

func (g *graph) enumerators(n int) []types.Enumerator {
	if n > 64 {
		return make([]types.Enumerator, n)
	}
	if len(g.eslab)+n > cap(g.eslab) {
		g.eslab = make([]types.Enumerator, 0, 256)
	}
	g.eslab = g.eslab[:len(g.eslab)+n]
	return g.eslab[len(g.eslab)-n : len(g.eslab) : len(g.eslab)]
}

// Lookup implements types.Graph.
func (g *graph) Lookup(name string) (*types.Type, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if tt, ok := g.byName[name]; ok {
		return tt, nil
	}
	if err := g.prepare(); err != nil {
		return nil, err
	}
	sp := types.ParseSpelling(name)
	for _, k := range sp.Kinds {
		ids := g.t.b.findByName(sp.Name, isKinds(btfKinds(k)))
		if len(ids) == 0 && (k == types.Int || k == types.Float) {
			// BTF from clang spells base types its own way.
			if raw := strings.Join(strings.Fields(name), " "); raw != sp.Name {
				ids = g.t.b.findByName(raw, isKinds(btfKinds(k)))
			}
		}
		if len(ids) == 0 {
			continue
		}
		tt, err := g.convert(ids[0])
		if err != nil {
			return nil, fmt.Errorf("type %q: %w", name, err)
		}
		g.byName[name] = tt
		return tt, nil
	}
	return nil, types.NotFound(name, "BTF")
}

// EnumValue implements types.Graph.
func (g *graph) EnumValue(enum, name string) (int64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	key := [2]string{enum, name}
	if v, ok := g.enumVals[key]; ok {
		return v, nil
	}
	if err := g.prepare(); err != nil {
		return 0, err
	}
	var enums []*types.Type
	if enum != "" {
		en := strings.TrimPrefix(strings.Join(strings.Fields(enum), " "), "enum ")
		for _, id := range g.t.b.findByName(en, isKinds([]int{kindEnum, kindEnum64})) {
			tt, err := g.convert(id)
			if err != nil {
				return 0, err
			}
			enums = append(enums, tt)
		}
	} else {
		// Any enum: find the constant by name without converting every enum.
		offs := g.t.b.nameOffsets(name)
		for id := 1; id <= g.t.b.numTypes() && len(offs) > 0; id++ {
			rt, err := g.t.b.typ(uint32(id))
			if err != nil {
				return 0, err
			}
			k := rt.kind()
			if k != kindEnum && k != kindEnum64 {
				continue
			}
			stride := 8
			if k == kindEnum64 {
				stride = 12
			}
			for i := range rt.vlen() {
				no := g.t.b.bo.Uint32(rt.data[stride*i:])
				if no == offs[0] || (len(offs) > 1 && g.t.b.nameIs(no, name)) {
					tt, err := g.convert(uint32(id))
					if err != nil {
						return 0, err
					}
					enums = append(enums, tt)
					break
				}
			}
			if len(enums) > 0 {
				break
			}
		}
	}
	v, err := types.EnumValueIn(enums, enum, name, "BTF")
	if err == nil {
		g.enumVals[key] = v
	}
	return v, err
}

// CompositeNames implements types.Lister.
func (g *graph) CompositeNames() ([]string, error) { return g.t.CompositeNames() }

func btfKinds(k types.Kind) []int {
	switch k {
	case types.Struct:
		return []int{kindStruct}
	case types.Union:
		return []int{kindUnion}
	case types.Typedef:
		return []int{kindTypedef}
	case types.Enum:
		return []int{kindEnum, kindEnum64}
	case types.Int:
		return []int{kindInt}
	case types.Float:
		return []int{kindFloat}
	}
	return nil
}

func isKinds(ks []int) func(int) bool {
	return func(k int) bool {
		for _, w := range ks {
			if k == w {
				return true
			}
		}
		return false
	}
}

// convert returns the converted type id, converting its closure first.
// g.mu is held; on error nothing of this conversion stays memoized.
func (g *graph) convert(id uint32) (*types.Type, error) {
	if int64(id) >= int64(len(g.conv)) {
		return nil, fmt.Errorf("BTF type id %d out of range [0, %d]: %w", id, len(g.conv)-1, vmi.ErrFormat)
	}
	if tt := g.conv[id]; tt != nil {
		return tt, nil
	}
	g.fresh, g.work = g.fresh[:0], g.work[:0]
	root, err := g.node(id)
	for err == nil && len(g.work) > 0 {
		next := g.work[len(g.work)-1]
		g.work = g.work[:len(g.work)-1]
		err = g.fill(next, g.conv[next])
	}
	if err != nil {
		for _, f := range g.fresh {
			g.conv[f] = nil
		}
		return nil, err
	}
	return root, nil
}

// node returns the (possibly not yet filled) type for id, seeing through
// qualifiers and resolving a forward declaration to the complete struct or
// union of its name when the blob has one.
func (g *graph) node(id uint32) (*types.Type, error) {
	if int64(id) >= int64(len(g.conv)) {
		return nil, fmt.Errorf("BTF type id %d out of range [0, %d]: %w", id, len(g.conv)-1, vmi.ErrFormat)
	}
	if tt := g.conv[id]; tt != nil {
		return tt, nil
	}
	orig := id
	for range maxDepth {
		if id == 0 {
			break
		}
		rt, err := g.t.b.typ(id)
		if err != nil {
			return nil, err
		}
		k := rt.kind()
		if k == kindVolatile || k == kindConst || k == kindRestrict || k == kindTypeTag {
			id = rt.sizeTyp
			continue
		}
		if k == kindFwd {
			want := kindStruct
			if rt.kindFlag() {
				want = kindUnion
			}
			if ids := g.t.b.findByName(g.name(rt.nameOff), isKind(want)); len(ids) > 0 {
				id = ids[0]
			}
		}
		break
	}
	if int64(id) >= int64(len(g.conv)) {
		return nil, fmt.Errorf("BTF type id %d out of range [0, %d]: %w", id, len(g.conv)-1, vmi.ErrFormat)
	}
	if tt := g.conv[id]; tt != nil {
		g.conv[orig] = tt
		g.fresh = append(g.fresh, orig)
		return tt, nil
	}
	if len(g.slab) == cap(g.slab) {
		g.slab = make([]types.Type, 0, 1024)
	}
	g.slab = append(g.slab, types.Type{})
	tt := &g.slab[len(g.slab)-1]
	g.conv[id] = tt
	g.fresh = append(g.fresh, id)
	if orig != id {
		g.conv[orig] = tt
		g.fresh = append(g.fresh, orig)
	}
	g.work = append(g.work, id)
	return tt, nil
}

// fill converts type id into tt, allocating (not filling) what it refers to.
func (g *graph) fill(id uint32, tt *types.Type) error {
	if id == 0 {
		tt.Kind, tt.Name = types.Void, "void"
		return nil
	}
	b := g.t.b
	rt, err := b.typ(id)
	if err != nil {
		return err
	}
	name := g.name(rt.nameOff)
	switch rt.kind() {
	case kindInt:
		enc := b.bo.Uint32(rt.data) >> 24
		tt.Kind, tt.Name, tt.Size, tt.Signed = types.Int, types.CanonicalName(name), uint64(rt.sizeTyp), enc&1 != 0
	case kindFloat:
		tt.Kind, tt.Name, tt.Size, tt.Signed = types.Float, types.CanonicalName(name), uint64(rt.sizeTyp), true
	case kindPtr:
		tt.Kind, tt.Size = types.Pointer, uint64(g.t.PointerSize())
		tt.Target, err = g.node(rt.sizeTyp)
	case kindArray:
		tt.Kind, tt.Len = types.Array, uint64(b.bo.Uint32(rt.data[8:]))
		if n, err := g.t.size(id); err == nil {
			tt.Size = n
		}
		tt.Target, err = g.node(b.bo.Uint32(rt.data))
	case kindTypedef:
		tt.Kind, tt.Name = types.Typedef, name
		if n, err := g.t.size(id); err == nil {
			tt.Size = n
		}
		tt.Target, err = g.node(rt.sizeTyp)
	case kindStruct, kindUnion:
		tt.Kind, tt.Name, tt.Size = types.Struct, name, uint64(rt.sizeTyp)
		if rt.kind() == kindUnion {
			tt.Kind = types.Union
		}
		tt.Members = g.members(rt.vlen())
		for i := range tt.Members {
			m := b.member(rt, i)
			tm := &tt.Members[i]
			tm.Name, tm.BitOffset, tm.BitSize = g.name(m.nameOff), uint64(m.bitOffset), m.bitSize
			if tm.Type, err = g.node(m.typ); err != nil {
				return err
			}
			if m.bitSize == 0 && !rt.kindFlag() && mayBeInt(b, m.typ) {
				// Legacy bitfields (kind_flag clear) hide in the int encoding.
				if _, it, err := g.t.strip(m.typ); err == nil && it.kind() == kindInt {
					enc := b.bo.Uint32(it.data)
					bits, intOff := enc&0xff, (enc>>16)&0xff
					if bits != it.sizeTyp*8 || intOff != 0 {
						tm.BitSize, tm.BitOffset = bits, tm.BitOffset+uint64(intOff)
					}
				}
			}
		}
	case kindFwd:
		tt.Kind, tt.Name = types.Struct, name
		if rt.kindFlag() {
			tt.Kind = types.Union
		}
	case kindEnum, kindEnum64:
		tt.Kind, tt.Name, tt.Size, tt.Signed = types.Enum, name, uint64(rt.sizeTyp), rt.kindFlag()
		tt.Enumerators = g.enumerators(rt.vlen())
		for i := range tt.Enumerators {
			e := &tt.Enumerators[i]
			if rt.kind() == kindEnum {
				d := rt.data[8*i:]
				e.Name = g.name(b.bo.Uint32(d))
				v := b.bo.Uint32(d[4:])
				if tt.Signed {
					e.Value = int64(int32(v))
				} else {
					e.Value = int64(v)
				}
			} else {
				d := rt.data[12*i:]
				e.Name = g.name(b.bo.Uint32(d))
				e.Value = int64(uint64(b.bo.Uint32(d[8:]))<<32 | uint64(b.bo.Uint32(d[4:])))
			}
		}
	case kindFunc, kindFuncProto:
		tt.Kind, tt.Name = types.Func, name
	case kindVar, kindDatasec, kindDeclTag:
		tt.Kind = types.Void // not a data type; only hostile BTF points a member here
	default:
		return fmt.Errorf("BTF type %d: kind %s in a type graph: %w", id, kindName(rt.kind()), vmi.ErrFormat)
	}
	return err
}

// mayBeInt tells whether type id may be an int after typedefs and
// qualifiers: pointers, structs and arrays, most members, need no strip.
func mayBeInt(b *blob, id uint32) bool {
	rt, err := b.typ(id)
	if err != nil {
		return false
	}
	switch rt.kind() {
	case kindInt, kindTypedef, kindConst, kindVolatile, kindRestrict, kindTypeTag:
		return true
	}
	return false
}
