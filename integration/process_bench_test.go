package integration

import (
	"testing"
	"time"
)

// BenchmarkLuaProcessReadU32: p:read_u32(a) on pid 1's first mapping of the
// committed image, from a Lua loop. It also times as many kernel reads,
// read_u32(init_task), right after and reports the ratio (x-kernel): the
// cost of a method call and a process's own page walk against the global.
func BenchmarkLuaProcessReadU32(b *testing.B) {
	rt := luaState(b)
	if err := rt.RunString(`p = assert(process(1)); y = assert(p:vmas())[1].start`, "setup", nil); err != nil {
		b.Fatal(err)
	}
	proc, kernel := compileLoop(b, rt.L, "p:read_u32(y)"), compileLoop(b, rt.L, "read_u32(x)")
	b.ResetTimer()
	start := time.Now()
	runLoop(b, rt.L, proc, b.N)
	procTime := time.Since(start)
	b.StopTimer()
	start = time.Now()
	runLoop(b, rt.L, kernel, b.N)
	b.ReportMetric(float64(procTime)/float64(time.Since(start)), "x-kernel")
}
