package linux

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cilium/ebpf/btf"

	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/linux/btfsrc"
	"github.com/xascript/xascript/vmi/types"
)

// moduleGraph is the types of loaded modules' split BTF in the one type
// graph. Types a module's BTF takes from vmlinux's are vmlinux's own graph
// nodes (btfsrc.Types.TypeByID), so a module struct's list_head member is the
// same *types.Type as vmlinux's. Conversion is lazy and memoized like
// btfsrc's: a lookup converts the closure of what it finds.
type moduleGraph struct {
	base     *btfsrc.Types
	baseSpec *btf.Spec
	mods     []moduleSpec

	mu   sync.Mutex
	memo map[btf.Type]*types.Type
}

// Lookup implements types.Graph over the modules, in list order.
func (m *moduleGraph) Lookup(name string) (*types.Type, error) {
	sp := types.ParseSpelling(name)
	for _, s := range m.mods {
		for _, k := range sp.Kinds {
			cands, err := s.spec.AnyTypesByName(sp.Name)
			if err != nil {
				continue
			}
			for _, c := range cands {
				if ciliumKind(c) != k {
					continue
				}
				if f, ok := c.(*btf.Fwd); ok && f != nil {
					continue // a declaration, not the type
				}
				return m.convert(c)
			}
		}
	}
	return nil, fmt.Errorf("type %q: not in vmlinux's BTF nor in the BTF of %d loaded modules: %w", name, len(m.mods), vmi.ErrNotFound)
}

// EnumValue implements types.Graph over the modules' own enums.
func (m *moduleGraph) EnumValue(enum, name string) (int64, error) {
	var enums []*types.Type
	for _, s := range m.mods {
		for t, err := range s.spec.All() {
			if err != nil {
				break
			}
			e, ok := t.(*btf.Enum)
			if !ok || (enum != "" && types.ParseSpelling("enum "+trimEnum(enum)).Name != e.Name) {
				continue
			}
			if id, err := m.baseSpec.TypeID(e); err == nil && id != 0 {
				continue // vmlinux's: asked there already
			}
			for _, v := range e.Values {
				if v.Name == name {
					c, err := m.convert(e)
					if err != nil {
						return 0, err
					}
					enums = append(enums, c)
				}
			}
		}
	}
	return types.EnumValueIn(enums, enum, name, fmt.Sprintf("the BTF of %d loaded modules", len(m.mods)))
}

func trimEnum(s string) string {
	sp := types.ParseSpelling(s)
	return sp.Name
}

func ciliumKind(t btf.Type) types.Kind {
	switch t := t.(type) {
	case *btf.Struct:
		return types.Struct
	case *btf.Union:
		return types.Union
	case *btf.Typedef:
		return types.Typedef
	case *btf.Enum:
		return types.Enum
	case *btf.Int:
		return types.Int
	case *btf.Float:
		return types.Float
	case *btf.Fwd:
		if t.Kind == btf.FwdUnion {
			return types.Union
		}
		return types.Struct
	}
	return types.Void
}

// convert converts t and its closure (memoized; m.mu taken).
func (m *moduleGraph) convert(t btf.Type) (*types.Type, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.memo == nil {
		m.memo = map[btf.Type]*types.Type{}
	}
	var work []btf.Type
	var fresh []btf.Type
	node := func(t btf.Type) (*types.Type, error) {
		for range types.MaxDepth {
			switch q := t.(type) {
			case *btf.Const:
				t = q.Type
				continue
			case *btf.Volatile:
				t = q.Type
				continue
			case *btf.Restrict:
				t = q.Type
				continue
			case *btf.TypeTag:
				t = q.Type
				continue
			}
			break
		}
		if c, ok := m.memo[t]; ok {
			return c, nil
		}
		if id, err := m.baseSpec.TypeID(t); err == nil {
			c, err := m.base.TypeByID(uint32(id))
			if err != nil {
				return nil, err
			}
			m.memo[t] = c
			return c, nil
		}
		c := &types.Type{}
		m.memo[t] = c
		fresh = append(fresh, t)
		work = append(work, t)
		return c, nil
	}
	root, err := node(t)
	for err == nil && len(work) > 0 {
		next := work[len(work)-1]
		work = work[:len(work)-1]
		err = m.fill(next, m.memo[next], node)
	}
	if err != nil {
		for _, f := range fresh {
			delete(m.memo, f)
		}
		return nil, err
	}
	return root, nil
}

func (m *moduleGraph) fill(t btf.Type, c *types.Type, node func(btf.Type) (*types.Type, error)) error {
	var err error
	switch t := t.(type) {
	case *btf.Void, nil:
		c.Kind, c.Name = types.Void, "void"
	case *btf.Int:
		c.Kind, c.Name, c.Size, c.Signed = types.Int, types.CanonicalName(t.Name), uint64(t.Size), t.Encoding&btf.Signed != 0
	case *btf.Float:
		c.Kind, c.Name, c.Size, c.Signed = types.Float, types.CanonicalName(t.Name), uint64(t.Size), true
	case *btf.Pointer:
		c.Kind, c.Size = types.Pointer, uint64(m.base.PointerSize())
		c.Target, err = node(t.Target)
	case *btf.Array:
		c.Kind, c.Len = types.Array, uint64(t.Nelems)
		if n, err := btf.Sizeof(t); err == nil {
			c.Size = uint64(n)
		}
		c.Target, err = node(t.Type)
	case *btf.Typedef:
		c.Kind, c.Name = types.Typedef, t.Name
		if n, err := btf.Sizeof(t); err == nil {
			c.Size = uint64(n)
		}
		c.Target, err = node(t.Type)
	case *btf.Struct, *btf.Union:
		var ms []btf.Member
		if s, ok := t.(*btf.Struct); ok {
			c.Kind, c.Name, c.Size, ms = types.Struct, s.Name, uint64(s.Size), s.Members
		} else {
			u := t.(*btf.Union)
			c.Kind, c.Name, c.Size, ms = types.Union, u.Name, uint64(u.Size), u.Members
		}
		c.Members = make([]types.Member, len(ms))
		for i, bm := range ms {
			tm := &c.Members[i]
			tm.Name, tm.BitOffset, tm.BitSize = bm.Name, uint64(bm.Offset), uint32(bm.BitfieldSize)
			if tm.Type, err = node(bm.Type); err != nil {
				return err
			}
		}
	case *btf.Fwd:
		c.Kind, c.Name = types.Struct, t.Name
		if t.Kind == btf.FwdUnion {
			c.Kind = types.Union
		}
	case *btf.Enum:
		c.Kind, c.Name, c.Size, c.Signed = types.Enum, t.Name, uint64(t.Size), t.Signed
		c.Enumerators = make([]types.Enumerator, len(t.Values))
		for i, v := range t.Values {
			c.Enumerators[i] = types.Enumerator{Name: v.Name, Value: int64(v.Value)}
		}
	case *btf.Func:
		c.Kind, c.Name = types.Func, t.Name
	case *btf.FuncProto:
		c.Kind = types.Func
	default:
		c.Kind = types.Void // variables, data sections, tags: not data types
	}
	return err
}

// kernelGraph is what Kernel.Types gives: the profile's graph, then the
// BTF of loaded modules for the types vmlinux lacks (read on the first
// such miss).
type kernelGraph struct {
	k    *Kernel
	base types.Graph
}

// Lookup implements types.Graph.
func (g *kernelGraph) Lookup(name string) (*types.Type, error) {
	t, err := g.base.Lookup(name)
	if err == nil || !errors.Is(err, vmi.ErrNotFound) {
		return t, err
	}
	m, merr := g.k.moduleTypes()
	if merr != nil {
		return nil, withModuleError(err, merr)
	}
	return m.graph.Lookup(name)
}

// EnumValue implements types.Graph.
func (g *kernelGraph) EnumValue(enum, name string) (int64, error) {
	v, err := g.base.EnumValue(enum, name)
	if err == nil || !errors.Is(err, vmi.ErrNotFound) {
		return v, err
	}
	m, merr := g.k.moduleTypes()
	if merr != nil {
		return 0, withModuleError(err, merr)
	}
	if v, merr := m.graph.EnumValue(enum, name); merr == nil {
		return v, nil
	}
	return 0, err
}

// CompositeNames implements types.Lister: vmlinux's names (module-only
// structs are not listed).
func (g *kernelGraph) CompositeNames() ([]string, error) {
	l, ok := g.base.(types.Lister)
	if !ok {
		return nil, fmt.Errorf("struct layouts from %s cannot be listed: %w", g.k.TypesFrom, vmi.ErrUnsupported)
	}
	return l.CompositeNames()
}
