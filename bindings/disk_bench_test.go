package bindings

import (
	"context"
	"strconv"
	"syscall"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/xascript/xascript/diskmon"
)

// BenchmarkEventTable builds the Lua table of one MKFILE event, as the
// event loop does for every event a watch delivers.
func BenchmarkEventTable(b *testing.B) {
	L := lua.NewState()
	defer L.Close()
	ev := diskmon.Event{Op: diskmon.OpMkfile, Path: "/root/fig7/n1000-r1/f1", Watch: "/root/fig7", Ino: 1234,
		Type: diskmon.TypeFile, Mode: 0o644, Links: 1, Time: time.Now(), Ctime: time.Now()}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if eventTable(L, ev).RawGetString("op") == lua.LNil {
			b.Fatal("no op")
		}
	}
}

// BenchmarkWatchDelivery hands one Figure 7 run's events (1,000 MKFILE,
// 1,000 RMFILE) from a tracker goroutine to a Lua callback that formats
// each as diskwatch.lua does, as on_disk_event delivers them. cpu-ns/op
// counts the GC's work too, which a wall-clock ns/op hides on a host with
// cores to spare.
func BenchmarkWatchDelivery(b *testing.B) {
	const events = 2000
	L := lua.NewState()
	defer L.Close()
	if err := L.DoString(`n = 0; function cb(ev) local s = ev.op .. ": " .. ev.path; n = n + 1 end`); err != nil {
		b.Fatal(err)
	}
	fn := L.GetGlobal("cb").(*lua.LFunction)
	evs := make([]diskmon.Event, events)
	for i := range evs {
		evs[i] = diskmon.Event{Op: diskmon.OpMkfile, Path: "/root/fig7/n1000-r1/f" + strconv.Itoa(i), Watch: "/root/fig7",
			Ino: uint32(100 + i), Type: diskmon.TypeFile, Mode: 0o644, Links: 1, Time: time.Now(), Ctime: time.Now()}
		if i >= events/2 {
			evs[i].Op = diskmon.OpRmfile
		}
	}
	ctx := context.Background()
	b.ReportAllocs()
	cpu0 := processCPU(b)
	for i := 0; i < b.N; i++ {
		loop := NewLoop()
		release := loop.Hold()
		go func() {
			for _, ev := range evs {
				loop.Post(ctx, func(L *lua.LState) error { return deliverEvent(L, fn, ev) })
			}
			loop.Post(ctx, func(*lua.LState) error { release(); return nil })
		}()
		if err := loop.Run(ctx, L, nil); err != nil {
			b.Fatal(err)
		}
	}
	// The process's CPU time, all goroutines and the GC: what the tap
	// takes from a guest that shares the host's cores.
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
	if n := int(lua.LVAsNumber(L.GetGlobal("n"))); n != b.N*events {
		b.Fatalf("%d callbacks, want %d", n, b.N*events)
	}
}

// processCPU is the CPU time this process has used (user and system).
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
