package runtime

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xascript/xascript/bindings"
	"github.com/xascript/xascript/diskmon"
	"github.com/xascript/xascript/internal/fakeguest"
)

// scriptedDisk delivers a fixed list of events per watch from a goroutine,
// as the tracker does, then ends the watch if endAfter is set.
type scriptedDisk struct {
	events   []diskmon.Event
	endAfter bool
}

type scriptedWatch struct {
	done chan struct{}
	once sync.Once
}

func (w *scriptedWatch) Close()                { w.once.Do(func() { close(w.done) }) }
func (w *scriptedWatch) Done() <-chan struct{} { return w.done }

func (d *scriptedDisk) Watch(path string, opts diskmon.WatchOptions, fn func(diskmon.Event)) (bindings.DiskWatch, error) {
	w := &scriptedWatch{done: make(chan struct{})}
	go func() {
		for _, e := range d.events {
			e.Watch = path
			fn(e)
		}
		if d.endAfter {
			w.Close()
		}
	}()
	return w, nil
}

func paperEvents() []diskmon.Event {
	at := time.Unix(1_700_000_000, 0)
	return []diskmon.Event{
		{Op: diskmon.OpMkdir, Path: "/root/foo", Type: diskmon.TypeDir, Time: at},
		{Op: diskmon.OpMkfile, Path: "/root/dummy", Type: diskmon.TypeFile, Time: at},
		{Op: diskmon.OpRmfile, Path: "/root/bar", Type: diskmon.TypeFile, Time: at},
	}
}

const printEvents = `
local w = on_disk_event("/root", function(ev) print(ev.op .. ": " .. ev.path .. " " .. ev.type .. " " .. ev.watch) end)
assert(w.path == "/root")
`

// Callbacks run after the main chunk, on the Lua goroutine, until the
// watch ends.
func TestLoopDeliversUntilWatchEnds(t *testing.T) {
	env := &bindings.Env{Disk: &scriptedDisk{events: paperEvents(), endAfter: true}}
	out, err := runFile(t, Config{Env: env}, write(t, t.TempDir(), "w.lua", printEvents))
	if err != nil {
		t.Fatal(err)
	}
	want := "MKDIR: /root/foo dir /root\nMKFILE: /root/dummy file /root\nRMFILE: /root/bar file /root\n"
	if out != want {
		t.Fatalf("got %q want %q", out, want)
	}
}

// stop() ends a loop that would otherwise wait for ever; an error in a
// callback ends the script with file:line; Ctrl-C (the context) ends it too.
func TestLoopStopErrorInterrupt(t *testing.T) {
	dir := t.TempDir()
	env := &bindings.Env{Disk: &scriptedDisk{events: paperEvents()}}
	out, err := runFile(t, Config{Env: env}, write(t, dir, "s.lua", `
local n = 0
on_disk_event("/root", function(ev) n = n + 1; print(ev.path); if n == 2 then stop() end end)`))
	if err != nil || out != "/root/foo\n/root/dummy\n" {
		t.Fatalf("stop: %q %v", out, err)
	}

	env = &bindings.Env{Disk: &scriptedDisk{events: paperEvents()}}
	_, err = runFile(t, Config{Env: env}, write(t, dir, "e.lua", `
on_disk_event("/root", function(ev)
  error("boom at " .. ev.path)
end)`))
	if err == nil || !strings.Contains(err.Error(), "e.lua:3:") || !strings.Contains(err.Error(), "boom at /root/foo") {
		t.Fatalf("callback error: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	env = &bindings.Env{Disk: &scriptedDisk{}, Ctx: ctx}
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err = runFile(t, Config{Env: env}, write(t, dir, "i.lua", `on_disk_event("/root", print)`))
	if err == nil || ctx.Err() == nil {
		t.Fatalf("interrupt: %v", err)
	}

	// No disk: a usage error naming the flags.
	_, err = runFile(t, Config{Env: &bindings.Env{}}, write(t, dir, "n.lua", `on_disk_event("/root", print)`))
	if err == nil || !strings.Contains(err.Error(), "--disk IMAGE") {
		t.Fatalf("no disk: %v", err)
	}
	// A closed watch releases the loop.
	env = &bindings.Env{Disk: &scriptedDisk{}}
	out, err = runFile(t, Config{Env: env}, write(t, dir, "c.lua", `local w = on_disk_event("/root", print); w:close(); print("closed")`))
	if err != nil || out != "closed\n" {
		t.Fatalf("close: %q %v", out, err)
	}
}

// A disk event's callback reads guest memory (--disk with --qemu or --dom):
// the Lua goroutine owns both.
func TestLoopCallbackReadsMemory(t *testing.T) {
	g := fakeguest.New()
	g.Syms["init_task"] = fakeguest.VirtOffset + 0x1000
	g.Write(fakeguest.VirtOffset+0x1000, []byte("swapper/0\x00"))
	env := &bindings.Env{Guest: g, Disk: &scriptedDisk{events: paperEvents(), endAfter: true}}
	out, err := runFile(t, Config{Env: env}, write(t, t.TempDir(), "m.lua", `
on_disk_event("/root", function(ev)
  print(ev.path, read_cstring(symbol("init_task")))
end)`))
	if err != nil {
		t.Fatal(err)
	}
	if out != "/root/foo\tswapper/0\n/root/dummy\tswapper/0\n/root/bar\tswapper/0\n" {
		t.Fatalf("got %q", out)
	}
}
