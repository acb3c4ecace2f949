package btfsrc

import (
	"errors"
	"slices"
	"testing"

	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/types"
)

func TestCompositeNames(t *testing.T) {
	ty, err := Parse(synthTypes(t))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ty.CompositeNames()
	if err != nil {
		t.Fatal(err)
	}
	// The anonymous struct and union of struct module are not named; the
	// forward declaration of task_struct is not a struct; typedefs are not
	// listed (module_t, page as a typedef).
	want := []string{"list_head", "module", "module_layout", "page", "task_struct"}
	if !slices.Equal(got, want) {
		t.Errorf("CompositeNames = %q, want %q", got, want)
	}
}

func TestMemberNames(t *testing.T) {
	ty, err := Parse(synthTypes(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		strct, path string
		want        []string
	}{
		// whole, lo and hi come from the anonymous union and the anonymous
		// struct inside it, in declaration order.
		{"module", "", []string{"state", "list", "name", "core_layout", "whole", "lo", "hi", "flags", "more", "refs", "matrix", "layouts", "init"}},
		{"struct module", "core_layout", []string{"base", "size", "text_size"}},
		{"module_t", "list", []string{"next", "prev"}},
		{"list_head", "", []string{"next", "prev"}},
	} {
		got, err := types.MembersAt(ty.Graph(), tc.strct, tc.path)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("MemberNames(%q, %q) = %q, %v; want %q", tc.strct, tc.path, got, err, tc.want)
		}
	}
	// Not a struct: a pointer member, a scalar member, an unknown struct.
	for _, tc := range []struct{ strct, path string }{{"module", "list.next"}, {"module", "state"}, {"nosuch", ""}} {
		if got, err := types.MembersAt(ty.Graph(), tc.strct, tc.path); !errors.Is(err, vmi.ErrNotFound) {
			t.Errorf("MemberNames(%q, %q) = %q, %v; want ErrNotFound", tc.strct, tc.path, got, err)
		}
	}
}
