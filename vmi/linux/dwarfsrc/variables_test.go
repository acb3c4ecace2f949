package dwarfsrc

import (
	"os"
	"path/filepath"
	"testing"
)

// TestVariableTypes reads the fixtures' variables (fixture.c, fixture2.c):
// structs, unions, a pointer to a typedef'd struct, arrays of typedef'd
// arrays (which the declarator form cannot spell: left out), and a
// variable only declared in one unit and defined in the other.
func TestVariableTypes(t *testing.T) {
	want := map[string]string{
		"the_module":     "struct module",
		"init_task":      "struct task_struct",
		"a_union":        "union both",
		"a_typedef":      "struct module *",
		"a_declared_ref": "struct module *",
		"only_here_v":    "struct only_here",
		"a_row":          "int[4]",
	}
	for _, elf := range []string{"fixture64.elf", "fixture32.elf"} {
		got, err := VariableTypes(filepath.Join("testdata", elf))
		if err != nil {
			t.Fatal(err)
		}
		for name, w := range want {
			if got[name] != w {
				t.Errorf("%s: %s = %q, want %q", elf, name, got[name], w)
			}
		}
		if g, ok := got["a_matrix"]; ok {
			t.Errorf("%s: a_matrix (an array of arrays) spelled %q; the form has one dimension", elf, g)
		}
	}
}

// TestVariableTypesHostile: a file that is not an ELF, or an ELF with a
// broken .debug_info, is an error, not a panic.
func TestVariableTypesHostile(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk")
	os.WriteFile(junk, []byte("\x7fELF not really"), 0o600)
	if _, err := VariableTypes(junk); err == nil {
		t.Error("junk accepted")
	}
	orig, err := os.ReadFile(filepath.Join("testdata", "fixture64.elf"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(orig); i += 97 {
		b := append([]byte{}, orig...)
		for j := i; j < i+64 && j < len(b); j++ {
			b[j] ^= 0x5a
		}
		p := filepath.Join(dir, "bad.elf")
		os.WriteFile(p, b, 0o600)
		VariableTypes(p) // must return, whatever it says
	}
}
