package main

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/xascript/xascript/internal/testimages"
)

// BenchmarkWarmRunISF times a whole warm run (target opened, profile
// loaded, one symbol read) of a one-line script on the committed 6.1 dump:
// with the profile derived from memory and cached (no-isf), and with
// --isf naming an ISF that xascript exported from the same dump, plain and
// xz-compressed. Issue 13's goal: a warm run with --isf costs at most 2x one
// without. Cold runs (the first, which index the ISF) are not measured.
//
//	go test -run '^$' -bench WarmRunISF -benchtime 50x ./cmd/xascript/
func BenchmarkWarmRunISF(b *testing.B) {
	dump := testimages.Path(b, "x86_64-4level", "mem.raw.zst")
	dir := b.TempDir()
	cache := filepath.Join(dir, "cache")
	script := filepath.Join(dir, "t.lua")
	if err := os.WriteFile(script, []byte(`assert(symbol("init_task")); assert(offsetof("task_struct", "comm") > 0)`), 0o600); err != nil {
		b.Fatal(err)
	}
	isfPath := filepath.Join(dir, "kernel.json")
	if code := run([]string{"profile", "--isf", isfPath, "--file", dump, "--cache-dir", cache, "-q"}, io.Discard, io.Discard); code != 0 {
		b.Fatalf("profile --isf: exit %d", code)
	}
	modes := []struct {
		name string
		args []string
	}{
		{"no-isf", nil},
		{"isf", []string{"--isf", isfPath}},
	}
	for _, m := range modes {
		args := append([]string{script, "--file", dump, "--cache-dir", cache, "-q"}, m.args...)
		if code := run(args, io.Discard, os.Stderr); code != 0 { // the cold run fills the caches
			b.Fatalf("%s: exit %d", m.name, code)
		}
		b.Run(m.name, func(b *testing.B) {
			for b.Loop() {
				if code := run(args, io.Discard, os.Stderr); code != 0 {
					b.Fatalf("exit %d", code)
				}
			}
		})
	}
}
