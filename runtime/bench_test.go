package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/xascript/xascript/bindings"
	"github.com/xascript/xascript/internal/fakeguest"
)

// BenchmarkPrint100kLinesToFile is the batch cost of print: a script that
// prints 100,000 lines with stdout redirected to a file (not a terminal, so
// output is block-buffered and flushed only at blocking points and the end).
func BenchmarkPrint100kLinesToFile(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "out.txt"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	const src = `for i = 1, 100000 do print("module", i, "at 0xffffffffc0a1b000") end`
	rt := New(Config{Stdout: f})
	defer rt.Close()
	b.ResetTimer()
	for range b.N {
		if _, err := f.Seek(0, 0); err != nil {
			b.Fatal(err)
		}
		if err := rt.RunString(src, "print.lua", nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLuaLoop1M is the cost of pure Lua code: a million iterations of
// a loop body with arithmetic and a table store. The runtime runs every
// script under a context that gopher-lua checks before each instruction
// (so that an interrupt ends a busy loop); this measures what that costs.
func BenchmarkLuaLoop1M(b *testing.B) {
	const src = `local t, s = {}, 0 for i = 1, 1000000 do s = s + i % 7; t[i % 64] = s end`
	rt := New(Config{})
	defer rt.Close()
	b.ResetTimer()
	for range b.N {
		if err := rt.RunString(src, "loop.lua", nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadU32Loop1M is a script's hot path: a million read_u32 calls
// from a Lua loop on a synthetic guest (the binding, its argument check
// and the Lua call; the read itself is a map lookup).
func BenchmarkReadU32Loop1M(b *testing.B) {
	g := fakeguest.New()
	g.Write(fakeguest.VirtOffset+0x1000, []byte{1, 2, 3, 4})
	const src = `local a, s = addr(...), 0 for i = 1, 1000000 do s = s + read_u32(a) end`
	rt := New(Config{Env: &bindings.Env{Guest: g}})
	defer rt.Close()
	arg := fmt.Sprintf("%#x", uint64(fakeguest.VirtOffset+0x1000))
	b.ResetTimer()
	for range b.N {
		if err := rt.RunString(src, "read.lua", []string{arg}); err != nil {
			b.Fatal(err)
		}
	}
}
