package types

import "testing"

func TestCanonicalName(t *testing.T) {
	for in, want := range map[string]string{
		"unsigned long":          "long unsigned int",
		"long unsigned int":      "long unsigned int",
		"unsigned  long   int":   "long unsigned int",
		"long":                   "long int",
		"signed long":            "long int",
		"unsigned long long":     "long long unsigned int",
		"long long unsigned int": "long long unsigned int",
		"long long":              "long long int",
		"unsigned":               "unsigned int",
		"signed":                 "int",
		"int":                    "int",
		"short":                  "short int",
		"unsigned short":         "short unsigned int",
		"short unsigned int":     "short unsigned int",
		"char":                   "char",
		"signed char":            "signed char",
		"unsigned char":          "unsigned char",
		"_Bool":                  "_Bool",
		"double":                 "double",
		"long double":            "long double",
		"unsigned __int128":      "__int128 unsigned",
		"__int128":               "__int128",
		"u64":                    "u64",
		"struct  module":         "struct module",
		"unsigned u64":           "unsigned u64",
		"long long long":         "long long long",
		"short long":             "short long",
		"":                       "",
	} {
		if got := CanonicalName(in); got != want {
			t.Errorf("CanonicalName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSetLookup(t *testing.T) {
	s, ty := testGraph()
	for name, want := range map[string]*Type{
		"module": ty["module"], "struct module": ty["module"], " struct   module ": ty["module"],
		"module_t": ty["module_t"], "u64": ty["u64"], "list_head": ty["list_head"],
	} {
		if got, err := s.Lookup(name); err != nil || got != want {
			t.Errorf("Lookup(%q) = %v, %v", name, got, err)
		}
	}
	for _, name := range []string{"unsigned long", "long unsigned int", "unsigned long int"} {
		if got, err := s.Lookup(name); err != nil || got.Name != "long unsigned int" || got.Size != 8 {
			t.Errorf("Lookup(%q) = %v, %v", name, got, err)
		}
	}
	if got, err := s.Lookup("enum module_state"); err != nil || got.Kind != Enum {
		t.Errorf("Lookup(enum module_state) = %v, %v", got, err)
	}
	for _, name := range []string{"union module", "enum module", "nosuch", "struct u64", "short"} {
		if _, err := s.Lookup(name); err == nil {
			t.Errorf("Lookup(%q) found something", name)
		}
	}
	// A complete struct replaces a forward declaration, not the other way.
	fwd := &Type{Kind: Struct, Name: "task_struct"}
	full := &Type{Kind: Struct, Name: "task_struct", Size: 64, Members: []Member{{Name: "pid", Type: &Type{Kind: Int, Size: 4}}}}
	s.Add(fwd)
	s.Add(full)
	s.Add(&Type{Kind: Struct, Name: "task_struct"})
	if got, _ := s.Lookup("task_struct"); got != full {
		t.Errorf("Lookup(task_struct) = %+v", got)
	}
	names, _ := s.CompositeNames()
	if len(names) != 4 || names[0] != "layout" || names[3] != "task_struct" {
		t.Errorf("CompositeNames = %v", names)
	}
}

func TestEnumValue(t *testing.T) {
	s, _ := testGraph()
	for _, c := range []struct {
		enum, name string
		want       int64
		ok         bool
	}{
		{"module_state", "MODULE_STATE_GOING", 2, true},
		{"enum module_state", "MODULE_STATE_UNFORMED", 3, true},
		{"", "MODULE_STATE_COMING", 1, true},
		{"module_state", "MOD_TEXT", 0, false},
		{"", "MOD_TEXT", 0, false},
		{"nosuch", "MODULE_STATE_GOING", 0, false},
	} {
		v, err := s.EnumValue(c.enum, c.name)
		if (err == nil) != c.ok || v != c.want {
			t.Errorf("EnumValue(%q, %q) = %d, %v", c.enum, c.name, v, err)
		}
	}
}
