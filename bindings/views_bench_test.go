package bindings_test

import (
	"fmt"
	"syscall"
	"testing"

	"github.com/xascript/xascript/bindings"
	"github.com/xascript/xascript/runtime"
)

// The cost of a view's members against the raw reads at a precomputed
// offset that they replace, side by side: each runs a Lua loop of 100,000
// reads on the synthetic guest (fixtureGuest's first module), so the
// figures are the binding's cost, not a real guest's page walks.
// Compare with: go test -run XXX -bench 'Loop100k' ./bindings/ (the
// cpu-ns/read figure: the process's CPU time per read).

const benchLoop = 100000

func benchScript(b *testing.B, src string) {
	g := fixtureGuest()
	rt := runtime.New(runtime.Config{Env: &bindings.Env{Guest: g}})
	defer rt.Close()
	mod := fmt.Sprintf("%#x", g.Syms["modules"]+0x10000+0x123) // the first module
	src = fmt.Sprintf("local m, n = addr(...), %d\n", benchLoop) + src
	if err := rt.RunString(src, "bench.lua", []string{mod}); err != nil { // warm the caches, check it runs
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu0 := cpuTime()
	for range b.N {
		if err := rt.RunString(src, "bench.lua", []string{mod}); err != nil {
			b.Fatal(err)
		}
	}
	// The process's CPU time per read, GC included: on a machine shared
	// with other work, wall time measures the neighbours as much as us.
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N*benchLoop), "cpu-ns/read")
}

func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// read_cstring at a precomputed offset: the baseline of m.name.
func BenchmarkReadCStringLoop100k(b *testing.B) {
	benchScript(b, `local a = m + 0x18 for i = 1, n do local s = read_cstring(a, 56) end`)
}

// m.name through a view: a char[56] read up to its NUL.
func BenchmarkViewNameLoop100k(b *testing.B) {
	benchScript(b, `local v = view("module", m) for i = 1, n do local s = v.name end`)
}

// read_u32 at a precomputed offset: the baseline of a numeric member.
func BenchmarkReadU32Loop100k(b *testing.B) {
	benchScript(b, `local a = m + 0x50 for i = 1, n do local x = read_u32(a) end`)
}

// m.state through a view: a 4-byte enum member.
func BenchmarkViewU32Loop100k(b *testing.B) {
	benchScript(b, `local v = view("module", m) for i = 1, n do local x = v.state end`)
}

// m.refcnt.counter: an embedded struct (a view made per access), then an int.
func BenchmarkViewNestedLoop100k(b *testing.B) {
	benchScript(b, `local v = view("module", m) for i = 1, n do local x = v.refcnt.counter end`)
}
