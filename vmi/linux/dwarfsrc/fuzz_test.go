package dwarfsrc

import (
	"os"
	"testing"
)

// FuzzLoad: a hostile file must give errors, never panics or endless walks.
// The seeds are the committed fixtures, so mutations hit real DWARF.
func FuzzLoad(f *testing.F) {
	for path := range fixtures() {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("\x7fELF"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ty, err := parse(data)
		if err != nil {
			return
		}
		ty.PointerSize()
		for _, q := range [][2]string{{"module", "list.next"}, {"module", "hi"}, {"module", "grid[1][2]"},
			{"module", "flags"}, {"task_struct", "outer.inner.wide"}, {"module_t", "layouts[3].size"}, {"module", "nope"}} {
			ty.Offsetof(q[0], q[1])
		}
		for _, n := range []string{"module", "u64", "matrix_t", "union both", "enum module_state", "struct only_here"} {
			ty.Sizeof(n)
		}
	})
}
