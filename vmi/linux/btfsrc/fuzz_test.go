package btfsrc

import "testing"

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
			ty.Member(q[0], q[1])
		}
		for _, n := range []string{"module", "page", "u64", "struct list_head"} {
			ty.Sizeof(n)
			ty.TypeOf(n)
			ty.Fields(n)
			ty.MemberNames(n, "")
		}
		ty.CompositeNames()
	})
}
