package bindings

import (
	"math"
	"runtime"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// Boxed numbers keep their values after the box moves on to new blocks and
// after garbage collections.
func TestNumberBoxValues(t *testing.T) {
	var box numberBox
	var vals []lua.LValue
	want := []uint32{0, 1, 255, 256, math.MaxUint32}
	for i := uint32(0); i < 3*numberBlock; i++ {
		want = append(want, i*7919+300)
	}
	for _, v := range want {
		vals = append(vals, box.value(v))
	}
	runtime.GC()
	for i, v := range vals {
		n, ok := v.(lua.LNumber)
		if !ok || float64(n) != float64(want[i]) {
			t.Fatalf("value %d: got %v (%T), want %d", i, v, v, want[i])
		}
	}
}

func BenchmarkNumberBox(b *testing.B) {
	var box numberBox
	var sink lua.LValue
	for i := 0; b.Loop(); i++ {
		sink = box.value(uint32(i) + 1000)
	}
	_ = sink
}
