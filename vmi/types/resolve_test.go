package types

import (
	"errors"
	"strings"
	"testing"

	"github.com/xascript/xascript/vmi"
)

// testGraph builds, by hand, a layout shaped like the kernel's struct module:
//
//	struct list_head { struct list_head *next, *prev; };
//	typedef unsigned long long u64; typedef u64 u64_t;
//	struct layout { void *base; unsigned int size; };
//	struct module {
//		enum module_state state;          // 0
//		struct list_head list;             // 8
//		char name[56];                     // 24
//		union { u64_t whole; struct { u32 lo, hi; }; };  // 80
//		unsigned int flags:3, more:5;      // bits 704, 707
//		int matrix[2][3];                  // 92
//		struct layout layouts[];           // 120 (flexible)
//	};
func testGraph() (*Set, map[string]*Type) {
	ulong := &Type{Kind: Int, Name: "long unsigned int", Size: 8}
	ull := &Type{Kind: Int, Name: "long long unsigned int", Size: 8}
	uint := &Type{Kind: Int, Name: "unsigned int", Size: 4}
	sint := &Type{Kind: Int, Name: "int", Size: 4, Signed: true}
	char := &Type{Kind: Int, Name: "char", Size: 1, Signed: true}
	void := &Type{Kind: Void}
	u64 := &Type{Kind: Typedef, Name: "u64", Size: 8, Target: ull}
	u64t := &Type{Kind: Typedef, Name: "u64_t", Size: 8, Target: u64}
	lh := &Type{Kind: Struct, Name: "list_head", Size: 16}
	lhp := &Type{Kind: Pointer, Size: 8, Target: lh}
	lh.Members = []Member{{Name: "next", Type: lhp}, {Name: "prev", BitOffset: 64, Type: lhp}}
	state := &Type{Kind: Enum, Name: "module_state", Size: 4, Enumerators: []Enumerator{
		{"MODULE_STATE_LIVE", 0}, {"MODULE_STATE_COMING", 1}, {"MODULE_STATE_GOING", 2}, {"MODULE_STATE_UNFORMED", 3}}}
	layout := &Type{Kind: Struct, Name: "layout", Size: 16, Members: []Member{
		{Name: "base", Type: &Type{Kind: Pointer, Size: 8, Target: void}},
		{Name: "size", BitOffset: 64, Type: uint}}}
	loHi := &Type{Kind: Struct, Size: 8, Members: []Member{{Name: "lo", Type: uint}, {Name: "hi", BitOffset: 32, Type: uint}}}
	anon := &Type{Kind: Union, Size: 8, Members: []Member{{Name: "whole", Type: u64t}, {Type: loHi}}}
	row := &Type{Kind: Array, Size: 12, Len: 3, Target: sint}
	mod := &Type{Kind: Struct, Name: "module", Size: 120, Members: []Member{
		{Name: "state", Type: state},
		{Name: "list", BitOffset: 64, Type: lh},
		{Name: "name", BitOffset: 192, Type: &Type{Kind: Array, Size: 56, Len: 56, Target: char}},
		{BitOffset: 640, Type: anon},
		{Name: "flags", BitOffset: 704, BitSize: 3, Type: uint},
		{Name: "more", BitOffset: 707, BitSize: 5, Type: uint},
		{Name: "matrix", BitOffset: 736, Type: &Type{Kind: Array, Size: 24, Len: 2, Target: row}},
		{Name: "layouts", BitOffset: 960, Type: &Type{Kind: Array, Len: 0, Target: layout}},
	}}
	modT := &Type{Kind: Typedef, Name: "module_t", Size: 120, Target: mod}
	s := NewSet("test graph")
	for _, t := range []*Type{ulong, ull, uint, sint, char, u64, u64t, lh, state, layout, mod, modT} {
		s.Add(t)
	}
	return s, map[string]*Type{"module": mod, "module_t": modT, "list_head": lh, "u64": u64, "layout": layout}
}

func TestResolve(t *testing.T) {
	_, ty := testGraph()
	for _, c := range []struct {
		typ, path string
		off       uint64
		kind      Kind
		name      string
	}{
		{"module", "state", 0, Enum, "module_state"},
		{"module", "list", 8, Struct, "list_head"},
		{"module", "list.next", 8, Pointer, ""},
		{"module", "list.prev", 16, Pointer, ""},
		{"module", "name", 24, Array, ""},
		{"module", "name[3]", 27, Int, "char"},
		{"module", "name[0x37]", 79, Int, "char"},
		{"module", "whole", 80, Typedef, "u64_t"}, // in the anonymous union
		{"module", "hi", 84, Int, "unsigned int"}, // in an anonymous struct in it
		{"module", "matrix[1]", 104, Array, ""},
		{"module", "matrix[1][2]", 112, Int, "int"},
		{"module", "layouts[2].size", 120 + 2*16 + 8, Int, "unsigned int"}, // flexible: any index
		{"module", "layouts[1000000]", 120 + 16*1000000, Struct, "layout"},
		{"module_t", "list.prev", 16, Pointer, ""}, // typedef of a struct
		{"list_head", "next", 0, Pointer, ""},
	} {
		f, err := Resolve(ty[c.typ], c.path)
		if err != nil || f.Offset != c.off || f.BitSize != 0 || f.Type == nil || f.Type.Kind != c.kind || f.Type.Name != c.name {
			t.Errorf("Resolve(%s, %q) = %+v, %v; want offset %d, %v %q", c.typ, c.path, f, err, c.off, c.kind, c.name)
		}
	}
	// Bitfields: the byte holding the first bit, the bit within it.
	f, err := Resolve(ty["module"], "more")
	if err != nil || f.Offset != 88 || f.BitOffset != 3 || f.BitSize != 5 || !f.IsBitfield() || f.Type.Name != "unsigned int" {
		t.Errorf("Resolve(module, more) = %+v, %v", f, err)
	}
	f, err = Resolve(ty["module"], "flags")
	if err != nil || f.Offset != 88 || f.BitOffset != 0 || f.BitSize != 3 {
		t.Errorf("Resolve(module, flags) = %+v, %v", f, err)
	}
	// Pointers are not followed: list.next.next is not a path into module.
	if _, err := Resolve(ty["module"], "list.next.next"); !errors.Is(err, vmi.ErrNotFound) {
		t.Errorf("a path through a pointer: %v", err)
	}
}

func TestResolveErrors(t *testing.T) {
	_, ty := testGraph()
	for _, c := range []struct {
		typ, path, want string
		is              error
	}{
		{"module", "foo", `no member "foo" in struct module (members: state, list, name, whole, lo, hi, flags, more, ...)`, vmi.ErrNotFound},
		{"module", "list.foo", `no member "foo" in struct list_head (in path "list.foo") (members: next, prev)`, vmi.ErrNotFound},
		{"module", "nmae", `no member "nmae" in struct module (did you mean name? members: `, vmi.ErrNotFound},
		{"module", "layout", `did you mean layouts?`, vmi.ErrNotFound},
		{"u64", "x", `not a struct or union`, vmi.ErrNotFound},
		{"module", "name[56]", "index 56 out of range [0, 56)", vmi.ErrNotFound},
		{"module", "matrix[0][3]", "index 3 out of range [0, 3)", vmi.ErrNotFound},
		{"module", "list[0]", "not an array", vmi.ErrNotFound},
		{"module", "name.x", "not a struct or union", vmi.ErrNotFound},
		{"module", "name[x]", "bad index", vmi.ErrNotFound},
		{"module", "name[1", "bad index syntax", vmi.ErrNotFound},
		{"module", "name]", `no member "name]"`, vmi.ErrNotFound},
		{"module", "", "empty member path", vmi.ErrNotFound},
		{"module", ".", `no member ""`, vmi.ErrNotFound},
		{"module", "layouts[0x10000000000]", "too large", vmi.ErrLimit},
		{"module", "layouts[18446744073709551615]", "too large", vmi.ErrLimit},
		{"module", "layouts[99999999999999999999]", "bad index", vmi.ErrNotFound},
	} {
		_, err := Resolve(ty[c.typ], c.path)
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, c.is) {
			t.Errorf("Resolve(%s, %q) = %v; want %v containing %q", c.typ, c.path, err, c.is, c.want)
		}
	}
	if _, err := Resolve(nil, "x"); !errors.Is(err, vmi.ErrNotFound) {
		t.Errorf("Resolve(nil): %v", err)
	}
}

// TestResolveHostile: graphs no compiler makes but guest memory can hold.
func TestResolveHostile(t *testing.T) {
	// A typedef cycle: Underlying stops at the bound.
	a := &Type{Kind: Typedef, Name: "a"}
	b := &Type{Kind: Typedef, Name: "b", Target: a}
	a.Target = b
	if u := Underlying(a); u == nil || u.Kind != Typedef {
		t.Errorf("Underlying of a typedef cycle = %v", u)
	}
	if _, err := Resolve(a, "x"); !errors.Is(err, vmi.ErrNotFound) || !strings.Contains(err.Error(), "not a struct or union") {
		t.Errorf("Resolve through a typedef cycle: %v", err)
	}
	// A struct that is its own anonymous member.
	self := &Type{Kind: Struct, Name: "self", Size: 8}
	self.Members = []Member{{Type: self}}
	if _, err := Resolve(self, "x"); !errors.Is(err, vmi.ErrLimit) {
		t.Errorf("Resolve in a self-containing struct: %v", err)
	}
	if n := MemberNames(self, 0); len(n) != 0 {
		t.Errorf("MemberNames of a self-containing struct = %v", n)
	}
	// An array of itself: each index step is bounded by the path.
	arr := &Type{Kind: Array, Len: 2, Size: 1 << 39}
	arr.Target = arr
	holder := &Type{Kind: Struct, Name: "h", Members: []Member{{Name: "a", Type: arr}}}
	if _, err := Resolve(holder, "a[1][1][1][1]"); !errors.Is(err, vmi.ErrLimit) {
		t.Errorf("an array of itself, indexed: %v", err)
	}
	if _, err := Resolve(holder, "a[0]"); !errors.Is(err, vmi.ErrLimit) {
		t.Errorf("an array of itself: %v", err)
	}
	if _, err := Sizeof(NewSet("x"), "x", 8); !errors.Is(err, vmi.ErrNotFound) {
		t.Errorf("Sizeof in an empty set: %v", err)
	}
	cyc := NewSet("cycles")
	cyc.Add(&Type{Kind: Typedef, Name: "arr_t", Target: arr})
	cyc.Add(a)
	for _, n := range []string{"arr_t", "a"} {
		if _, err := Sizeof(cyc, n, 8); !errors.Is(err, vmi.ErrLimit) {
			t.Errorf("Sizeof(%s) in a cycle: %v", n, err)
		}
	}
	// Indexes that pass the array's bound but reach beyond 1 TiB.
	big := &Type{Kind: Struct, Name: "big", Size: 1 << 39}
	bigs := &Type{Kind: Struct, Name: "bigs", Members: []Member{{Name: "b", Type: &Type{Kind: Array, Len: 4, Target: big}}}}
	if _, err := Resolve(bigs, "b[3]"); !errors.Is(err, vmi.ErrLimit) {
		t.Errorf("b[3] of 512 GiB elements: %v", err)
	}
	if f, err := Resolve(bigs, "b[1]"); err != nil || f.Offset != 1<<39 {
		t.Errorf("b[1] = %+v, %v", f, err)
	}
	// Member bit offsets near 2^64 do not wrap around.
	huge := &Type{Kind: Struct, Name: "huge", Members: []Member{
		{Name: "x", BitOffset: ^uint64(0) - 7, Type: &Type{Kind: Int, Name: "char", Size: 1}},
		{BitOffset: ^uint64(0), Type: &Type{Kind: Struct, Members: []Member{{Name: "y", BitOffset: 64, Type: &Type{Kind: Int, Size: 1}}}}},
	}}
	for _, p := range []string{"x", "y"} {
		if _, err := Resolve(huge, p); !errors.Is(err, vmi.ErrLimit) {
			t.Errorf("Resolve(huge, %q): %v", p, err)
		}
	}
	// A misaligned non-bitfield member is malformed, not a wrong offset.
	odd := &Type{Kind: Struct, Name: "odd", Members: []Member{{Name: "x", BitOffset: 3, Type: &Type{Kind: Int, Size: 4}}}}
	if _, err := Resolve(odd, "x"); !errors.Is(err, vmi.ErrFormat) {
		t.Errorf("Resolve(odd, x): %v", err)
	}
	// nil member types (a loader that could not convert one) are not followed.
	holey := &Type{Kind: Struct, Name: "holey", Members: []Member{{Name: "p", Type: nil}, {Type: nil}}}
	if f, err := Resolve(holey, "p"); err != nil || f.Type != nil {
		t.Errorf("Resolve(holey, p) = %+v, %v", f, err)
	}
	if _, err := Resolve(holey, "p.q"); !errors.Is(err, vmi.ErrNotFound) {
		t.Errorf("Resolve(holey, p.q): %v", err)
	}
}

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{{"comm", "comm", 0}, {"comn", "comm", 1}, {"cmo", "comm", 2}, {"abc", "xyz", 3}, {"", "ab", 2}, {"nmae", "name", 1}, {"abdc", "abcd", 1}} {
		if got := editDistance(c.a, c.b, 5); got != c.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
	if got := editDistance("abcdef", "uvwxyz", 2); got != 3 {
		t.Errorf("cut off at max: %d", got)
	}
}

func TestSpell(t *testing.T) {
	_, ty := testGraph()
	for _, c := range []struct {
		path, want string
	}{{"list.next", "struct list_head *"}, {"name", "char[56]"}, {"matrix", "int[3][2]"}, {"state", "enum module_state"},
		{"whole", "u64_t"}, {"layouts", "struct layout[0]"}} {
		f, err := Resolve(ty["module"], c.path)
		if err != nil || f.Type.String() != c.want {
			t.Errorf("%s: %v, %v; want %q", c.path, f.Type, err, c.want)
		}
	}
	pp := &Type{Kind: Pointer, Target: &Type{Kind: Pointer, Target: &Type{Kind: Int, Name: "char"}}}
	if pp.String() != "char **" {
		t.Errorf("char ** spelled %q", pp)
	}
	loop := &Type{Kind: Pointer}
	loop.Target = loop
	_ = loop.String() // bounded
	if (&Type{Kind: Union}).String() != "anonymous union" || (*Type)(nil).String() != "void" {
		t.Error("anonymous and nil spellings")
	}
}

func TestQueries(t *testing.T) {
	s, _ := testGraph()
	if off, err := Offsetof(s, "struct module", "list.prev"); err != nil || off != 16 {
		t.Errorf("Offsetof(module, list.prev) = %d, %v", off, err)
	}
	_, err := Offsetof(s, "module", "more")
	if !errors.Is(err, vmi.ErrUnsupported) || !strings.Contains(err.Error(), "module.more is a 5-bit bitfield at bit 707") {
		t.Errorf("Offsetof of a bitfield: %v", err)
	}
	if _, err := Offsetof(s, "u64", "x"); !errors.Is(err, vmi.ErrNotFound) || !strings.Contains(err.Error(), `type "u64" is a long long unsigned int, not a struct or union`) {
		t.Errorf("Offsetof(u64): %v", err)
	}
	if _, err := Offsetof(s, "nosuch", "x"); !errors.Is(err, vmi.ErrNotFound) || !strings.Contains(err.Error(), `no type "nosuch" in test graph`) {
		t.Errorf("Offsetof(nosuch): %v", err)
	}
	for name, want := range map[string]uint64{"module": 120, "module_t": 120, "u64": 8, "unsigned long": 8, "struct list_head *": 4, "enum module_state": 4} {
		if got, err := Sizeof(s, name, 4); err != nil || got != want {
			t.Errorf("Sizeof(%q) = %d, %v; want %d", name, got, err, want)
		}
	}
	s.Add(&Type{Kind: Typedef, Name: "fn_t", Target: &Type{Kind: Func}})
	if _, err := Sizeof(s, "fn_t", 8); !errors.Is(err, vmi.ErrUnsupported) {
		t.Errorf("Sizeof(fn_t): %v", err)
	}
}
