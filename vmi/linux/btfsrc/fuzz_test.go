package btfsrc

import (
	"testing"

	"github.com/xascript/xascript/vmi/types"
)

// FuzzBTF: hostile BTF must give errors, never panics or endless walks.
func FuzzBTF(f *testing.F) {
	f.Add(synthTypes(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		ty, err := Parse(data)
		if err != nil {
			return
		}
		ty.PointerSize()
		for _, q := range [][2]string{{"module", "list.next"}, {"module", "hi"}, {"module", "matrix[1][2]"},
			{"task_struct", "comm"}, {"module_t", "layouts[3].size"}} {
			ty.Offsetof(q[0], q[1])
		}
		for _, n := range []string{"module", "page", "u64", "struct list_head"} {
			ty.Sizeof(n)
			types.MembersAt(ty.Graph(), n, "")
		}
		ty.CompositeNames()
		g := ty.Graph()
		for _, n := range []string{"module", "module_t", "task_struct", "u64", "unsigned int", "enum module_state"} {
			if st, err := g.Lookup(n); err == nil {
				types.Resolve(st, "list.next")
				types.Resolve(st, "layouts[3].size")
				types.MemberNames(st, 0)
				_ = st.String()
			}
		}
		g.EnumValue("", "MODULE_STATE_LIVE")
		g.EnumValue("module_state", "MODULE_STATE_GOING")
		ty.TypeByID(5)
	})
}
