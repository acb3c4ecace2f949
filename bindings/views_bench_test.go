package bindings_test

import (
	"fmt"
	"syscall"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/xascript/xascript/bindings"
	"github.com/xascript/xascript/runtime"
)

// The cost of a view's members against the raw reads at a precomputed
// offset that they replace, side by side: each benchmark runs a Lua loop of
// 100,000 view reads and one of 100,000 raw reads, alternately, on the
// synthetic guest (fixtureGuest's first module), and reports both in CPU
// time per read (the process's, GC included: on a machine shared with other
// work, wall time measures the neighbours as much as us) and their ratio,
// which drifts less than two separate benchmarks would. The real-image
// figures are in integration (BenchmarkViewTask*).
//
//	go test -run XXX -bench View ./bindings/

const benchLoop = 100000

func benchPair(b *testing.B, viewSrc, rawSrc string) {
	g := fixtureGuest()
	rt := runtime.New(runtime.Config{Env: &bindings.Env{Guest: g}})
	defer rt.Close()
	mod := fmt.Sprintf("%#x", g.Syms["modules"]+0x10000+0x123) // the first module
	prefix := fmt.Sprintf("local m, n = addr(...), %d\n", benchLoop)
	run := func(src string) int64 {
		start := cpuTime()
		if err := rt.RunString(prefix+src, "bench.lua", []string{mod}); err != nil {
			b.Fatal(err)
		}
		return cpuTime() - start
	}
	run(viewSrc) // warm the caches, check both run
	run(rawSrc)
	b.ResetTimer()
	var viewCPU, rawCPU int64
	for range b.N {
		viewCPU += run(viewSrc)
		rawCPU += run(rawSrc)
	}
	reads := float64(b.N * benchLoop)
	b.ReportMetric(float64(viewCPU)/reads, "view-cpu-ns/read")
	b.ReportMetric(float64(rawCPU)/reads, "raw-cpu-ns/read")
	b.ReportMetric(float64(viewCPU)/float64(rawCPU), "x-raw")
}

func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// m.name through a view (a char[56] read up to its NUL) against
// read_cstring at the precomputed offset (target: x-raw at most 2).
func BenchmarkViewName(b *testing.B) {
	benchPair(b, `local v = view("module", m) for i = 1, n do local s = v.name end`,
		`local a = m + 0x18 for i = 1, n do local s = read_cstring(a, 56) end`)
}

// m.state, a 4-byte enum member, against read_u32 at the precomputed
// offset (target: x-raw at most 1.5).
func BenchmarkViewU32(b *testing.B) {
	benchPair(b, `local v = view("module", m) for i = 1, n do local x = v.state end`,
		`local a = m + 0 for i = 1, n do local x = read_u32(a) end`)
}

// m.refcnt.counter: an embedded struct (a view made per access), then an
// int, against read_u32.
func BenchmarkViewNested(b *testing.B) {
	benchPair(b, `local v = view("module", m) for i = 1, n do local x = v.refcnt.counter end`,
		`local a = m + 0x50 for i = 1, n do local x = read_u32(a) end`)
}

// The floor under any view: gopher-lua's cost of an __index metamethod
// that does nothing against a Go function call that does nothing (x-raw):
// the key is converted to a new string value and the call goes through
// LState.Call, so a member read cannot cost less than this ratio of a read
// call, less what the read itself adds to both.
func BenchmarkViewIndexFloor(b *testing.B) {
	L := lua.NewState()
	defer L.Close()
	L.SetGlobal("bare", L.NewFunction(func(L *lua.LState) int { L.Get(1); L.Push(lua.LNumber(1)); return 1 }))
	ud := L.NewUserData()
	mt := L.NewTable()
	L.SetField(mt, "__index", L.NewFunction(func(L *lua.LState) int { L.Get(1); L.Get(2); L.Push(lua.LNumber(1)); return 1 }))
	ud.Metatable = mt
	L.SetGlobal("x", ud)
	index, err := L.LoadString("local n = ... for i = 1, n do local v = x.pid end")
	if err != nil {
		b.Fatal(err)
	}
	call, err := L.LoadString("local n = ... for i = 1, n do local v = bare(x) end")
	if err != nil {
		b.Fatal(err)
	}
	run := func(fn *lua.LFunction) int64 {
		start := cpuTime()
		L.Push(fn)
		L.Push(lua.LNumber(benchLoop))
		L.Call(1, 0)
		return cpuTime() - start
	}
	b.ResetTimer()
	var indexCPU, callCPU int64
	for range b.N {
		indexCPU += run(index)
		callCPU += run(call)
	}
	b.ReportMetric(float64(indexCPU)/float64(callCPU), "x-raw")
}
