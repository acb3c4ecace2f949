package types

import (
	"testing"
)

// FuzzResolve: any member path over the test graph gives a field inside the
// bound or an error, never a panic.
func FuzzResolve(f *testing.F) {
	for _, p := range []string{"list.next", "layouts[3].size", "matrix[1][2]", "name[0x10]", "hi", "x[", "a..b", "[1]"} {
		f.Add(p)
	}
	_, ty := testGraph()
	f.Fuzz(func(t *testing.T, path string) {
		fl, err := Resolve(ty["module_t"], path)
		if err == nil && fl.Offset > maxOffset {
			t.Fatalf("Resolve(%q) = offset %d beyond the bound", path, fl.Offset)
		}
		_ = CanonicalName(path)
		_ = ParseSpelling(path)
	})
}
