package bindings

import (
	"os"
	"strings"
	"testing"
)

// TestReferenceIsCurrent fails when docs/lua-api.md no longer matches the doc
// strings in the code.
func TestReferenceIsCurrent(t *testing.T) {
	got, err := os.ReadFile("../docs/lua-api.md")
	if err != nil {
		t.Fatalf("%v: run `make docs`", err)
	}
	if string(got) != Markdown() {
		t.Fatal("docs/lua-api.md needs to be regenerated; run `make docs`")
	}
}

// TestEveryBindingDocumented keeps each binding's doc and signature honest.
func TestEveryBindingDocumented(t *testing.T) {
	seen := map[string]bool{}
	for _, a := range Areas(nil) {
		if a.Doc == "" || a.Title == "" {
			t.Errorf("area %s has no title or doc", a.Name)
		}
		for _, b := range a.Bindings {
			if seen[b.Name] {
				t.Errorf("binding %s defined twice", b.Name)
			}
			seen[b.Name] = true
			if b.Doc == "" || b.Fn == nil || !strings.HasPrefix(b.Signature, b.Name+"(") {
				t.Errorf("binding %s: doc, function and a signature starting with its name are required", b.Name)
			}
		}
	}
}
