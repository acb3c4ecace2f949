package btfsrc

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/types"
)

// synthTypes builds a small BTF blob with cilium's encoder: nesting,
// anonymous unions and structs, arrays, typedefs, qualifiers, bitfields.
func synthTypes(tb testing.TB) []byte {
	tb.Helper()
	intT := &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}
	uint := &btf.Int{Name: "unsigned int", Size: 4}
	ulong := &btf.Int{Name: "long unsigned int", Size: 8}
	char := &btf.Int{Name: "char", Size: 1, Encoding: btf.Signed | btf.Char}
	u64 := &btf.Typedef{Name: "u64", Type: ulong}
	listHead := &btf.Struct{Name: "list_head", Size: 16}
	listHead.Members = []btf.Member{
		{Name: "next", Type: &btf.Pointer{Target: listHead}, Offset: 0},
		{Name: "prev", Type: &btf.Pointer{Target: listHead}, Offset: 64},
	}
	layout := &btf.Struct{Name: "module_layout", Size: 16, Members: []btf.Member{
		{Name: "base", Type: &btf.Pointer{Target: &btf.Void{}}, Offset: 0},
		{Name: "size", Type: uint, Offset: 64},
		{Name: "text_size", Type: uint, Offset: 96},
	}}
	state := &btf.Enum{Name: "module_state", Size: 4, Signed: false, Values: []btf.EnumValue{{Name: "LIVE", Value: 0}}}
	anonInner := &btf.Struct{Size: 8, Members: []btf.Member{
		{Name: "lo", Type: uint, Offset: 0},
		{Name: "hi", Type: uint, Offset: 32},
	}}
	anonUnion := &btf.Union{Size: 8, Members: []btf.Member{
		{Name: "whole", Type: u64, Offset: 0},
		{Name: "", Type: anonInner, Offset: 0},
	}}
	matrix := &btf.Array{Index: intT, Type: &btf.Array{Index: intT, Type: intT, Nelems: 3}, Nelems: 2}
	module := &btf.Struct{Name: "module", Size: 160, Members: []btf.Member{
		{Name: "state", Type: state, Offset: 0},
		{Name: "list", Type: listHead, Offset: 64},
		{Name: "name", Type: &btf.Array{Index: intT, Type: char, Nelems: 56}, Offset: 192},
		{Name: "core_layout", Type: layout, Offset: 640},
		{Name: "", Type: anonUnion, Offset: 768},
		{Name: "flags", Type: uint, Offset: 832, BitfieldSize: 3},
		{Name: "more", Type: uint, Offset: 835, BitfieldSize: 5},
		{Name: "refs", Type: &btf.Volatile{Type: &btf.Const{Type: u64}}, Offset: 896},
		{Name: "matrix", Type: matrix, Offset: 960},
		{Name: "layouts", Type: &btf.Array{Index: intT, Type: layout, Nelems: 0}, Offset: 1152},
		{Name: "init", Type: &btf.Pointer{Target: &btf.FuncProto{Return: intT}}, Offset: 1152},
	}}
	modT := &btf.Typedef{Name: "module_t", Type: module}
	// A struct and a typedef sharing a name: bare names prefer the struct.
	pageTD := &btf.Typedef{Name: "page", Type: ulong}
	page := &btf.Struct{Name: "page", Size: 64}
	fwd := &btf.Fwd{Name: "task_struct", Kind: btf.FwdStruct}
	task := &btf.Struct{Name: "task_struct", Size: 32, Members: []btf.Member{
		{Name: "comm", Type: &btf.Array{Index: intT, Type: char, Nelems: 16}, Offset: 0},
		{Name: "mod", Type: &btf.Pointer{Target: modT}, Offset: 128},
		{Name: "fwd", Type: &btf.Pointer{Target: fwd}, Offset: 192},
	}}
	b, err := btf.NewBuilder([]btf.Type{fwd, pageTD, page, modT, task}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	raw, err := b.Marshal(nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

func TestOffsetof(t *testing.T) {
	ty, err := Parse(synthTypes(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		strct, member string
		want          uint64
	}{
		{"module", "state", 0},
		{"module", "list", 8},
		{"struct module", "list.next", 8},
		{"module", "list.prev", 16},
		{"module", "name", 24},
		{"module", "name[3]", 27},
		{"module", "core_layout.size", 88},
		{"module", "whole", 96}, // in the anonymous union
		{"module", "hi", 100},   // in an anonymous struct in the anonymous union
		{"module", "refs", 112},
		{"module", "matrix[1]", 132},
		{"module", "matrix[1][2]", 140},
		{"module", "layouts[2].size", 144 + 2*16 + 8}, // flexible array: any index
		{"module_t", "list", 8},                       // typedef of a struct
		{"task_struct", "comm", 0},                    // not the forward declaration
		{"task_struct", "mod", 16},
		{"list_head", "prev", 8},
	} {
		got, err := ty.Offsetof(c.strct, c.member)
		if err != nil || got != c.want {
			t.Errorf("Offsetof(%q, %q) = %d, %v; want %d", c.strct, c.member, got, err, c.want)
		}
	}
}

func TestOffsetofErrors(t *testing.T) {
	ty, err := Parse(synthTypes(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		strct, member, want string
		is                  error
	}{
		{"module", "foo", `no member "foo" in struct module (members: state, list, name, core_layout, whole, lo, hi, flags, ...)`, vmi.ErrNotFound},
		{"module", "list.foo", `no member "foo" in struct list_head (in path "list.foo") (members: next, prev)`, vmi.ErrNotFound},
		{"nosuch", "x", `no type "nosuch"`, vmi.ErrNotFound},
		{"struct nosuch", "x", `no type "struct nosuch"`, vmi.ErrNotFound},
		{"u64", "x", `not a struct or union`, vmi.ErrNotFound},
		{"module", "name[56]", "index 56 out of range [0, 56)", vmi.ErrNotFound},
		{"module", "list[0]", "not an array", vmi.ErrNotFound},
		{"module", "name.x", "not a struct or union", vmi.ErrNotFound},
		{"module", "name[x]", "bad index", vmi.ErrNotFound},
		{"module", "name[1", "bad index syntax", vmi.ErrNotFound},
		{"module", "", "empty member path", vmi.ErrNotFound},
		{"module", "flags", "3-bit bitfield at bit 832", vmi.ErrUnsupported},
		{"task_struct", "fwd.x", "not a struct or union", vmi.ErrNotFound},
	} {
		_, err := ty.Offsetof(c.strct, c.member)
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, c.is) {
			t.Errorf("Offsetof(%q, %q) = %v; want %v containing %q", c.strct, c.member, err, c.is, c.want)
		}
	}
}

// TestGraph checks what the graph gives for the members of the synthetic
// struct module: kinds, names, signedness, sizes, bitfields, qualifiers
// dropped, forward declarations resolved to the complete struct.
func TestGraph(t *testing.T) {
	ty, err := Parse(synthTypes(t))
	if err != nil {
		t.Fatal(err)
	}
	g := ty.Graph()
	field := func(strct, path string) types.Field {
		t.Helper()
		f, err := types.FieldOf(g, strct, path)
		if err != nil {
			t.Fatalf("FieldOf(%s, %s): %v", strct, path, err)
		}
		return f
	}
	if f := field("module", "more"); f.BitSize != 5 || f.Offset != 104 || f.BitOffset != 3 || f.Type.Size != 4 {
		t.Errorf("module.more = %+v", f)
	}
	if f := field("module", "name"); f.Type.Kind != types.Array || f.Type.Len != 56 || f.Type.Size != 56 ||
		f.Type.Target.Name != "char" || !f.Type.Target.Signed || f.Type.String() != "char[56]" {
		t.Errorf("module.name = %+v", f.Type)
	}
	if f := field("module", "list.next"); f.Type.Kind != types.Pointer || f.Type.Size != 8 ||
		f.Type.String() != "struct list_head *" {
		t.Errorf("module.list.next = %+v", f.Type)
	}
	// volatile const u64: qualifiers dropped, the typedef kept.
	if f := field("module", "refs"); f.Type.Kind != types.Typedef || f.Type.Name != "u64" || f.Type.Size != 8 ||
		types.Underlying(f.Type).Name != "long unsigned int" || types.Underlying(f.Type).Signed {
		t.Errorf("module.refs = %+v", f.Type)
	}
	if f := field("module", "state"); f.Type.Kind != types.Enum || f.Type.Name != "module_state" || f.Type.Size != 4 ||
		len(f.Type.Enumerators) != 1 || f.Type.Enumerators[0].Name != "LIVE" {
		t.Errorf("module.state = %+v", f.Type)
	}
	if f := field("module", "matrix[1]"); f.Type.Kind != types.Array || f.Type.Len != 3 || f.Type.Size != 12 {
		t.Errorf("module.matrix[1] = %+v", f.Type)
	}
	if f := field("module", "init"); f.Type.Kind != types.Pointer || f.Type.Target.Kind != types.Func {
		t.Errorf("module.init = %+v", f.Type)
	}
	// The pointer to the forward declaration leads to the complete struct.
	if f := field("task_struct", "fwd"); f.Type.Target.Name != "task_struct" || f.Type.Target.Size != 32 || len(f.Type.Target.Members) != 3 {
		t.Errorf("task_struct.fwd = %+v", f.Type.Target)
	}
	if f := field("task_struct", "mod"); f.Type.Target.Kind != types.Typedef || types.Underlying(f.Type.Target) != types.Underlying(mustLookup(t, g, "module")) {
		t.Errorf("task_struct.mod does not point to the one struct module")
	}
	if v, err := g.EnumValue("module_state", "LIVE"); err != nil || v != 0 {
		t.Errorf("EnumValue(module_state, LIVE) = %d, %v", v, err)
	}
	if v, err := g.EnumValue("", "LIVE"); err != nil || v != 0 {
		t.Errorf("EnumValue(, LIVE) = %d, %v", v, err)
	}
	if _, err := g.EnumValue("", "DEAD"); !errors.Is(err, vmi.ErrNotFound) {
		t.Errorf("EnumValue(, DEAD) = %v", err)
	}
	for _, n := range []string{"unsigned long", "long unsigned int"} {
		if u, err := g.Lookup(n); err != nil || u.Size != 8 || u.Kind != types.Int {
			t.Errorf("Lookup(%q) = %+v, %v", n, u, err)
		}
	}
}

func mustLookup(t *testing.T, g types.Graph, name string) *types.Type {
	t.Helper()
	ty, err := g.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return ty
}

func TestSizeof(t *testing.T) {
	ty, err := Parse(synthTypes(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		want uint64
	}{
		{"module", 160}, {"struct module", 160}, {"module_t", 160}, {"list_head", 16},
		{"u64", 8}, {"int", 4}, {"char", 1}, {"enum module_state", 4},
		{"page", 64}, // the struct, not the typedef
		{"struct list_head *", 8}, {"  struct   module ", 160},
	} {
		got, err := ty.Sizeof(c.name)
		if err != nil || got != c.want {
			t.Errorf("Sizeof(%q) = %d, %v; want %d", c.name, got, err, c.want)
		}
	}
	if _, err := ty.Sizeof("union module"); !errors.Is(err, vmi.ErrNotFound) {
		t.Errorf("Sizeof(union module) = %v, want ErrNotFound", err)
	}
	if ty.PointerSize() != 8 {
		t.Errorf("PointerSize = %d", ty.PointerSize())
	}
}

func TestParseErrors(t *testing.T) {
	raw := synthTypes(t)
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"magic", append([]byte{1, 2}, raw[2:]...)},
		{"truncated", raw[:30]},
	} {
		if _, err := Parse(c.data); err == nil {
			t.Errorf("%s: Parse succeeded", c.name)
		}
	}
	// A type section cut mid-type parses but fails on first use.
	cut := append([]byte(nil), raw...)
	cut[12] -= 5 // type_len (little endian)
	if ty, err := Parse(cut); err == nil {
		if _, err := ty.Offsetof("module", "list"); err == nil {
			t.Errorf("Offsetof on a cut type section succeeded")
		}
	}
}

// TestLoadPersistedIndex loads a BTF file twice: the second Load answers
// from the persisted index and must agree with the first.
func TestLoadPersistedIndex(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "btf")
	if err := os.WriteFile(path, synthTypes(t), 0o644); err != nil {
		t.Fatal(err)
	}
	opt := unpack.Options{CacheDir: filepath.Join(dir, "cache")}
	for i := range 2 {
		ty, err := Load(path, opt)
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 && ty.b.pSlots == nil {
			t.Errorf("second Load did not use the persisted index")
		}
		for _, q := range [][2]string{{"module", "hi"}, {"task_struct", "mod"}, {"module_t", "list.prev"}} {
			if _, err := ty.Offsetof(q[0], q[1]); err != nil {
				t.Errorf("load %d: Offsetof(%s, %s): %v", i, q[0], q[1], err)
			}
		}
		if n, err := ty.Sizeof("page"); err != nil || n != 64 {
			t.Errorf("load %d: Sizeof(page) = %d, %v", i, n, err)
		}
		if _, err := ty.Sizeof("nosuch"); !errors.Is(err, vmi.ErrNotFound) {
			t.Errorf("load %d: Sizeof(nosuch) = %v", i, err)
		}
		ty.Close()
	}
}

func TestCrossCheckSynthetic(t *testing.T) {
	ty, err := Parse(synthTypes(t))
	if err != nil {
		t.Fatal(err)
	}
	n, err := CrossCheck(ty, []string{"list_head", "module"})
	if err != nil || n < 5 {
		t.Fatalf("CrossCheck: %d members, %v", n, err)
	}
	if _, err := CrossCheck(ty, []string{"no_such_struct"}); err == nil || !strings.Contains(err.Error(), "no_such_struct") {
		t.Errorf("a struct cilium cannot find: %v", err)
	}
}
