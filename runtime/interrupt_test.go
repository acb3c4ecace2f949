package runtime

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xascript/xascript/bindings"
	"github.com/xascript/xascript/diskmon"
)

// finishingDisk stands for a disk monitor at shutdown: its watch reports
// nothing until shutdown is closed, then hands every event to the loop (as
// the tracker's last rescan does inside disk.Shutdown) and closes posted.
// The interrupt comes after that, as cmd/xascript cancels only once
// Shutdown returned.
type finishingDisk struct {
	events   int
	shutdown chan struct{}
	posted   chan struct{}
}

type idleWatch struct {
	done chan struct{}
	once sync.Once
}

func (w *idleWatch) Close()                { w.once.Do(func() { close(w.done) }) }
func (w *idleWatch) Done() <-chan struct{} { return w.done }

func (d *finishingDisk) Watch(path string, _ diskmon.WatchOptions, fn func(diskmon.Event)) (bindings.DiskWatch, error) {
	go func() {
		<-d.shutdown
		for i := range d.events {
			fn(diskmon.Event{Op: diskmon.OpRmfile, Path: fmt.Sprintf("%s/f%d", path, i), Watch: path})
		}
		close(d.posted)
	}()
	return &idleWatch{done: make(chan struct{})}, nil
}

// runInterruptedMonitor runs src with a finishingDisk of n events: it lets
// the loop wait, shuts the disk down, interrupts once every event is posted,
// and returns what the script printed, its error and how long after the
// interrupt it ended.
func runInterruptedMonitor(t *testing.T, n int, src string) (string, error, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	disk := &finishingDisk{events: n, shutdown: make(chan struct{}), posted: make(chan struct{})}
	var out strings.Builder
	rt := New(Config{Stdout: &out, Env: &bindings.Env{Disk: disk, Ctx: ctx}})
	defer rt.Close()
	done := make(chan error, 1)
	go func() { done <- rt.RunString(src, "mon.lua", nil) }()
	time.Sleep(50 * time.Millisecond) // the main chunk returns; the loop waits
	close(disk.shutdown)
	<-disk.posted
	cancel()
	interrupted := time.Now()
	select {
	case err := <-done:
		took := time.Since(interrupted)
		rt.Flush()
		return out.String(), err, took
	case <-time.After(30 * time.Second):
		t.Fatal("the interrupted monitor did not end")
	}
	return "", nil, 0
}

// What the disk's last rescan found when the monitor was interrupted reaches
// the callbacks, every event of it, although delivering them takes longer
// than CallbackGrace: each callback runs normally (here each spins ~10 ms of
// Lua code, which an interrupt applied at once would cut short).
func TestInterruptDeliversPendingEvents(t *testing.T) {
	const n = 150
	out, err, took := runInterruptedMonitor(t, n, `
on_disk_event("/root", function(ev)
  local t = now()
  while now() - t < 0.01 do end
  print(ev.op, ev.path)
end)`)
	// err may be nil: the watch's end, posted on the interrupt, can release
	// the loop before it sees the interrupt itself.
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != n {
		t.Fatalf("%d events delivered after the interrupt, want %d (error %v)", len(lines), n, err)
	}
	for i, l := range lines {
		if want := fmt.Sprintf("RMFILE\t/root/f%d", i); l != want {
			t.Fatalf("event %d: %q, want %q", i, l, want)
		}
	}
	t.Logf("delivered %d events in %v after the interrupt", n, took.Round(time.Millisecond))
}

// A callback that never returns is cut short once it has made no progress
// for CallbackGrace, and the events before it were delivered.
func TestInterruptEndsStuckCallback(t *testing.T) {
	out, err, took := runInterruptedMonitor(t, 5, `
on_disk_event("/root", function(ev)
  print(ev.path)
  if ev.path == "/root/f2" then while true do pcall(sleep, 1) end end
end)`)
	if err == nil {
		t.Fatal("the stuck callback ended without an error")
	}
	if out != "/root/f0\n/root/f1\n/root/f2\n" {
		t.Errorf("printed %q, want f0 to f2", out)
	}
	if took < CallbackGrace/2 || took > 3*CallbackGrace+2*time.Second {
		t.Errorf("ended %v after the interrupt, want about CallbackGrace (%v)", took, CallbackGrace)
	}
}

// The main chunk is interrupted at once, also in code that catches errors.
func TestInterruptMainChunk(t *testing.T) {
	for _, src := range []string{
		`while true do end`,
		`while true do pcall(sleep, 1) end`,
		`local co = coroutine.wrap(function() while true do end end) co()`,
		`pcall(function() while true do pcall(error, "x") end end) print("after")`,
	} {
		ctx, cancel := context.WithCancel(context.Background())
		var out strings.Builder
		rt := New(Config{Stdout: &out, Env: &bindings.Env{Ctx: ctx}})
		done := make(chan error, 1)
		go func() { done <- rt.RunString(src, "busy.lua", nil) }()
		time.Sleep(30 * time.Millisecond)
		cancel()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("%s: ended without an error", src)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: not ended by the interrupt", src)
		}
		rt.Close()
		if out.String() != "" {
			t.Errorf("%s: went on after the interrupt and printed %q", src, out.String())
		}
	}
}

// A run that begins after the interrupt (it came while the target was being
// opened) runs nothing.
func TestInterruptBeforeRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out strings.Builder
	rt := New(Config{Stdout: &out, Env: &bindings.Env{Ctx: ctx}})
	defer rt.Close()
	if err := rt.RunString(`print("ran")`, "late.lua", nil); err == nil || out.String() != "" {
		t.Errorf("err %v, printed %q; want an error and nothing run", err, out.String())
	}
}
