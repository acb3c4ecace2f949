package isf

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/types"
)

// Graph returns the ISF's types as the project's one type graph
// (vmi/types), converted lazily: a lookup decodes and converts the closure
// of the type it finds, once. An ISF has no typedefs (they are resolved
// away); anonymous members keep their offsets with an empty name; a
// bitfield's bit offset is its storage unit's offset plus its bit position.
// Safe for concurrent use.
func (p *Profile) Graph() types.Graph {
	p.graphOnce.Do(func() { p.graph = &graph{p: p, named: map[gkey]*types.Type{}} })
	return p.graph
}

type gkey struct {
	kind types.Kind
	name string
}

type graph struct {
	p     *Profile
	mu    sync.Mutex
	named map[gkey]*types.Type
	canon map[string]string // canonical base type name -> the ISF's spelling
	work  []pendingUser
	fresh []gkey
	enums map[string]*types.Type // enums converted by EnumValue
}

type pendingUser struct {
	name string
	t    *types.Type
}

func (g *graph) source() string { return "ISF " + g.p.name }

// Lookup implements types.Graph.
func (g *graph) Lookup(name string) (*types.Type, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	sp := types.ParseSpelling(name)
	for _, k := range sp.Kinds {
		var t *types.Type
		var err error
		switch k {
		case types.Struct, types.Union:
			if _, ok := g.p.rawUser(sp.Name); !ok {
				continue
			}
			u, uerr := g.p.userType(sp.Name)
			if uerr != nil {
				return nil, uerr
			}
			if u.kind != k.String() {
				continue
			}
			t, err = g.convert(func() (*types.Type, error) { return g.user(sp.Name) })
		case types.Enum:
			if _, ok := g.p.rawEnum(sp.Name); !ok {
				continue
			}
			t, err = g.enum(sp.Name)
		case types.Int, types.Float:
			isfName, ok := g.baseName(sp.Name)
			if !ok {
				continue
			}
			t, err = g.base(isfName)
			if err == nil && t.Kind != k {
				continue
			}
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("type %q: %w", name, err)
		}
		return t, nil
	}
	return nil, fmt.Errorf("no type %q in ISF %s (an ISF has structs, unions, enums and base types; typedefs are resolved away): %w",
		name, g.p.name, vmi.ErrNotFound)
}

// EnumValue implements types.Graph.
func (g *graph) EnumValue(enum, name string) (int64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var names []string
	if enum != "" {
		names = []string{types.ParseSpelling("enum " + strings.TrimPrefix(strings.TrimSpace(enum), "enum ")).Name}
	} else {
		names = g.p.enumNames()
	}
	var enums []*types.Type
	for _, n := range names {
		if _, ok := g.p.rawEnum(n); !ok {
			continue
		}
		e, err := g.enum(n)
		if err != nil {
			return 0, err
		}
		enums = append(enums, e)
		if enum == "" && slices.ContainsFunc(e.Enumerators, func(c types.Enumerator) bool { return c.Name == name }) {
			break
		}
	}
	return types.EnumValueIn(enums, enum, name, g.source())
}

// CompositeNames implements types.Lister.
func (g *graph) CompositeNames() ([]string, error) {
	names := g.p.userNames()
	slices.Sort(names)
	return slices.Compact(names), nil
}

// convert runs root, then fills every user type it allocated; on error
// nothing of this conversion stays memoized. g.mu is held.
func (g *graph) convert(root func() (*types.Type, error)) (*types.Type, error) {
	g.work, g.fresh = g.work[:0], g.fresh[:0]
	t, err := root()
	for err == nil && len(g.work) > 0 {
		w := g.work[len(g.work)-1]
		g.work = g.work[:len(g.work)-1]
		err = g.fillUser(w.name, w.t)
	}
	if err != nil {
		for _, k := range g.fresh {
			delete(g.named, k)
		}
		return nil, err
	}
	return t, nil
}

// user returns the node of user type name, queued to be filled.
func (g *graph) user(name string) (*types.Type, error) {
	for _, k := range []types.Kind{types.Struct, types.Union} {
		if t, ok := g.named[gkey{k, name}]; ok {
			return t, nil
		}
	}
	u, err := g.p.userType(name)
	if err != nil {
		return nil, err
	}
	t := &types.Type{Kind: types.Struct, Name: cName(name), Size: u.size}
	switch u.kind {
	case "struct", "class":
	case "union":
		t.Kind = types.Union
	default:
		return nil, fmt.Errorf("ISF %s: user type %q is a %q: %w", g.p.name, name, u.kind, vmi.ErrFormat)
	}
	k := gkey{t.Kind, name}
	g.named[k] = t
	g.fresh = append(g.fresh, k)
	g.work = append(g.work, pendingUser{name, t})
	return t, nil
}

// fillUser converts the fields of user type name, in offset order.
func (g *graph) fillUser(name string, t *types.Type) error {
	u, err := g.p.userType(name)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(u.fields))
	for n := range u.fields {
		names = append(names, n)
	}
	slices.Sort(names)
	t.Members = make([]types.Member, 0, len(names))
	for _, n := range names {
		f := u.fields[n]
		off, err := num(f.Offset, "offset of "+name+"."+n)
		if err != nil {
			return fmt.Errorf("ISF %s: %w", g.p.name, err)
		}
		if f.Type == nil {
			return fmt.Errorf("ISF %s: member %s.%s has no type: %w", g.p.name, name, n, vmi.ErrFormat)
		}
		m := types.Member{Name: n, BitOffset: off * 8}
		if f.Anonymous {
			m.Name = ""
		}
		d := f.Type
		if d.Kind == "bitfield" {
			pos, err := num(d.BitPosition, "bit position of "+name+"."+n)
			if err != nil {
				return fmt.Errorf("ISF %s: %w", g.p.name, err)
			}
			bits, err := num(d.BitLength, "bit length of "+name+"."+n)
			if err != nil || bits == 0 || bits > 64 {
				return fmt.Errorf("ISF %s: bitfield %s.%s of %s bits: %w", g.p.name, name, n, d.BitLength, vmi.ErrFormat)
			}
			if d.Type == nil {
				return fmt.Errorf("ISF %s: bitfield %s.%s without type: %w", g.p.name, name, n, vmi.ErrFormat)
			}
			m.BitOffset += pos
			m.BitSize = uint32(bits)
			d = d.Type
		}
		if m.Type, err = g.desc(d, 0); err != nil {
			return fmt.Errorf("ISF %s: member %s.%s: %w", g.p.name, name, n, err)
		}
		t.Members = append(t.Members, m)
	}
	slices.SortStableFunc(t.Members, func(a, b types.Member) int {
		switch {
		case a.BitOffset < b.BitOffset:
			return -1
		case a.BitOffset > b.BitOffset:
			return 1
		}
		return 0
	})
	return nil
}

// desc converts a type descriptor.
func (g *graph) desc(d *typeDesc, depth int) (*types.Type, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("type descriptors nested deeper than %d: %w", maxDepth, vmi.ErrLimit)
	}
	if d == nil {
		return nil, fmt.Errorf("a descriptor without type: %w", vmi.ErrFormat)
	}
	switch d.Kind {
	case "base":
		return g.base(d.Name)
	case "struct", "union", "class":
		return g.user(d.Name)
	case "enum":
		return g.enum(d.Name)
	case "pointer":
		target, err := g.desc(d.Subtype, depth+1)
		if err != nil {
			return nil, err
		}
		return &types.Type{Kind: types.Pointer, Size: uint64(g.p.ptrSize), Target: target}, nil
	case "array":
		count, err := num(d.Count, "array count")
		if err != nil {
			return nil, err
		}
		elem, err := g.desc(d.Subtype, depth+1)
		if err != nil {
			return nil, err
		}
		size, err := g.p.descSize(d, depth)
		if err != nil {
			return nil, err
		}
		return &types.Type{Kind: types.Array, Len: count, Size: size, Target: elem}, nil
	case "function":
		return &types.Type{Kind: types.Func}, nil
	case "bitfield":
		return nil, fmt.Errorf("a bitfield descriptor outside a member: %w", vmi.ErrFormat)
	}
	return nil, fmt.Errorf("descriptor of kind %q: %w", d.Kind, vmi.ErrFormat)
}

// baseName finds the ISF's spelling of a canonical base type name.
func (g *graph) baseName(canonical string) (string, bool) {
	if g.canon == nil {
		g.canon = make(map[string]string, len(g.p.base))
		for n := range g.p.base {
			c := types.CanonicalName(n)
			if old, ok := g.canon[c]; !ok || n < old {
				g.canon[c] = n
			}
		}
	}
	n, ok := g.canon[canonical]
	return n, ok
}

// base converts base type name (the ISF's spelling).
func (g *graph) base(name string) (*types.Type, error) {
	k := gkey{types.Int, name}
	if t, ok := g.named[k]; ok {
		return t, nil
	}
	b, ok := g.p.base[name]
	if !ok {
		return nil, fmt.Errorf("no base type %q in ISF %s: %w", name, g.p.name, vmi.ErrNotFound)
	}
	size, err := num(b.Size, "size of "+name)
	if err != nil {
		return nil, fmt.Errorf("ISF %s: %w", g.p.name, err)
	}
	t := &types.Type{Kind: types.Int, Name: types.CanonicalName(name), Size: size, Signed: b.Signed}
	switch b.Kind {
	case "float":
		t.Kind = types.Float
	case "void":
		t.Kind, t.Size, t.Signed = types.Void, 0, false
	}
	g.named[k] = t // a leaf: complete as soon as made
	return t, nil
}

// enum converts enum name (a leaf: complete as soon as made).
func (g *graph) enum(name string) (*types.Type, error) {
	k := gkey{types.Enum, name}
	if t, ok := g.named[k]; ok {
		return t, nil
	}
	raw, ok := g.p.rawEnum(name)
	if !ok {
		return nil, fmt.Errorf("no enum %q in ISF %s: %w", name, g.p.name, vmi.ErrNotFound)
	}
	var e enumJSON
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, fmt.Errorf("ISF %s: enum %q: %w: %w", g.p.name, name, vmi.ErrFormat, err)
	}
	size, err := num(e.Size, "size of enum "+name)
	if err != nil {
		return nil, fmt.Errorf("ISF %s: %w", g.p.name, err)
	}
	t := &types.Type{Kind: types.Enum, Name: cName(name), Size: size}
	if b, ok := g.p.base[e.Base]; ok {
		t.Signed = b.Signed
	}
	for c, v := range e.Constants {
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			u, uerr := strconv.ParseUint(string(v), 10, 64)
			if uerr != nil {
				return nil, fmt.Errorf("ISF %s: enum %s constant %s is %s, not an integer: %w", g.p.name, name, c, v, vmi.ErrFormat)
			}
			n = int64(u)
		}
		if n < 0 {
			t.Signed = true
		}
		t.Enumerators = append(t.Enumerators, types.Enumerator{Name: c, Value: n})
	}
	slices.SortFunc(t.Enumerators, func(a, b types.Enumerator) int {
		if a.Value != b.Value {
			if a.Value < b.Value {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	g.named[k] = t
	return t, nil
}

// userNames lists the names of the user types (structs, unions).
func (p *Profile) userNames() []string { return rawNames(p.userIx, p.userRaw) }

// enumNames lists the names of the enums, sorted.
func (p *Profile) enumNames() []string {
	n := rawNames(p.enumIx, p.enumRaw)
	slices.Sort(n)
	return n
}

func rawNames(ix *sortedRaw, m map[string][]byte) []string {
	if ix != nil {
		names := make([]string, ix.n)
		for i := range ix.n {
			names[i] = string(ix.name(i))
		}
		return names
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	return names
}

// cName is the C name of an ISF user type or enum: writers name anonymous
// ones "unnamed_" and a hash (dwarf2json, Write), which C calls anonymous.
func cName(isfName string) string {
	if strings.HasPrefix(isfName, "unnamed_") {
		return ""
	}
	return isfName
}
