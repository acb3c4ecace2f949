package types

import (
	"strings"
	"testing"
)

func TestCompareStruct(t *testing.T) {
	a, _ := testGraph()
	b, ty := testGraph()
	if n, diffs := CompareStruct(a, b, "module"); n != 10 || len(diffs) != 0 {
		t.Errorf("identical graphs: %d members, %v", n, diffs)
	}
	// Move one member, make another signed, change a bitfield's width.
	mod := ty["module"]
	mod.Members[1].BitOffset += 64
	mod.Members[6].Type.Target.Target = &Type{Kind: Int, Name: "unsigned int", Size: 4}
	mod.Members[5].BitSize = 4
	_, diffs := CompareStruct(a, b, "module")
	got := strings.Join(diffs, "\n")
	for _, want := range []string{"module.list: at 8 bit 0 (0 bits) vs at 16", `of int "int" size 4 signed vs array[2] size 24 of array[3] size 12 of int "unsigned int"`,
		"module.more: at 88 bit 3 (5 bits) vs at 88 bit 3 (4 bits)"} {
		if !strings.Contains(got, want) {
			t.Errorf("diffs lack %q:\n%s", want, got)
		}
	}
	if _, diffs := CompareStruct(a, b, "nosuch"); len(diffs) != 1 {
		t.Errorf("a missing struct: %v", diffs)
	}
}

func TestSignature(t *testing.T) {
	anon := &Type{Kind: Struct, Size: 4, Members: []Member{{Name: "counter", Type: &Type{Kind: Int, Name: "int", Size: 4, Signed: true}}}}
	atomic := &Type{Kind: Typedef, Name: "atomic_t", Size: 4, Target: anon}
	named := &Type{Kind: Struct, Name: "atomic_t", Size: 4}
	if Signature(atomic) != Signature(named) {
		t.Errorf("typedef'd anonymous struct %q vs ISF's named one %q", Signature(atomic), Signature(named))
	}
	long := &Type{Kind: Typedef, Name: "atomic_long_t", Target: &Type{Kind: Typedef, Name: "atomic64_t", Target: anon}}
	if s := Signature(long); !strings.Contains(s, `"atomic64_t"`) {
		t.Errorf("the innermost typedef names the struct: %q", s)
	}
	uc := &Type{Kind: Int, Name: "char", Size: 1}
	sc := &Type{Kind: Int, Name: "char", Size: 1, Signed: true}
	if Signature(uc) != Signature(sc) {
		t.Error("plain char's signedness is left out")
	}
	ul := &Type{Kind: Int, Name: "unsigned long", Size: 8}
	sl := &Type{Kind: Int, Name: "long unsigned int", Size: 8, Signed: true}
	if Signature(ul) == Signature(sl) || !strings.Contains(Signature(ul), `"long unsigned int"`) {
		t.Errorf("%q vs %q", Signature(ul), Signature(sl))
	}
}
