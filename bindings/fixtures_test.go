package bindings_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xascript/xascript/bindings"
	"github.com/xascript/xascript/internal/fakeguest"
	"github.com/xascript/xascript/runtime"
)

var update = flag.Bool("update", false, "rewrite the .golden files from the current output (review the diff!)")

const v = fakeguest.VirtOffset

// fixtureGuest is the synthetic guest that testdata/*.lua run against.
func fixtureGuest() *fakeguest.Guest {
	g := fakeguest.New()
	mods := g.ModuleList(v+0x1000, []string{"ext4", "loop", "dummy"})
	g.Write(v+0x1ffc, []byte("abc\x00"))
	g.Write(v+0x3ffc, []byte("wxyz"))
	// cyclic: head -> A -> B -> A
	g.Syms["cyclic"] = v + 0x50000
	g.WritePtr(v+0x50000, v+0x51008)
	g.WritePtr(v+0x51008, v+0x52008)
	g.WritePtr(v+0x52008, v+0x51008)
	// broken: head -> A -> unmapped
	g.Syms["broken"] = v + 0x60000
	g.WritePtr(v+0x60000, v+0x61008)
	g.WritePtr(v+0x61008, v+0x777000)
	addViewData(g, mods)
	return g
}

// TestFixtures runs every testdata/*.lua against the synthetic guest and
// compares its output with the .golden file next to it.
func TestFixtures(t *testing.T) {
	scripts, err := filepath.Glob("testdata/*.lua")
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, script := range scripts {
		t.Run(filepath.Base(script), func(t *testing.T) {
			var out strings.Builder
			rt := runtime.New(runtime.Config{Stdout: &out, Env: &bindings.Env{Guest: fixtureGuest()}})
			defer rt.Close()
			src, err := os.ReadFile(script)
			if err != nil {
				t.Fatal(err)
			}
			if err := rt.RunString(string(src), filepath.Base(script), nil); err != nil {
				t.Fatalf("script failed: %v", err)
			}
			golden := strings.TrimSuffix(script, ".lua") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(out.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != string(want) {
				t.Errorf("output differs from %s\n--- got ---\n%s--- want ---\n%s", golden, out.String(), want)
			}
		})
	}
}
