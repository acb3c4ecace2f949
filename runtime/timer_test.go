package runtime

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/xascript/xascript/bindings"
)

// A timer runs its function from the event loop after the main chunk, and
// returning false ends it (and with it the loop it alone held).
func TestEveryStopsOnFalse(t *testing.T) {
	out, err := runFile(t, Config{Env: &bindings.Env{}}, write(t, t.TempDir(), "e.lua", `
local n = 0
local tm = every(0.005, function() n = n + 1; print("tick " .. n); if n == 3 then return false end end)
assert(tm.interval == 0.005)
print("main done")`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "main done\ntick 1\ntick 2\ntick 3\n"; out != want {
		t.Fatalf("got %q want %q", out, want)
	}
}

// Timers and disk events share the loop: both are delivered, one at a time,
// until stop(); cancel() ends a timer without ending the loop a watch holds.
func TestEveryWithDiskEvents(t *testing.T) {
	env := &bindings.Env{Disk: &scriptedDisk{events: paperEvents()}}
	out, err := runFile(t, Config{Env: env}, write(t, t.TempDir(), "m.lua", `
local events, ticks, busy = 0, 0, false
on_disk_event("/root", function(ev)
  assert(not busy); events = events + 1
end)
local other = every(0.002, function() error("cancelled timer ran") end)
other:cancel()
every(0.01, function()
  busy = true; ticks = ticks + 1; busy = false
  if events == 3 and ticks >= 2 then print("events " .. events .. " ticks>=2"); stop() end
end)`))
	if err != nil {
		t.Fatal(err)
	}
	if out != "events 3 ticks>=2\n" {
		t.Fatalf("got %q", out)
	}
}

// An error in the timer's function ends the script with its file:line; bad
// intervals are script errors; an interrupt ends a loop held by a timer.
func TestEveryErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := runFile(t, Config{Env: &bindings.Env{}}, write(t, dir, "err.lua", `
every(0.001, function()
  error("boom")
end)`))
	if err == nil || !strings.Contains(err.Error(), "err.lua:3") || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("error in timer: %v", err)
	}
	for _, bad := range []string{"0", "-1", "0/0", "86401", `"x"`} {
		_, err := runFile(t, Config{Env: &bindings.Env{}}, write(t, dir, "bad.lua", "every("+bad+", function() end)"))
		if err == nil || !strings.Contains(err.Error(), "every: seconds must be") {
			t.Errorf("every(%s): %v", bad, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = runFile(t, Config{Env: &bindings.Env{Ctx: ctx}}, write(t, dir, "forever.lua", `every(0.01, function() end)`))
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("interrupted timer loop: %v after %v", err, time.Since(start))
	}
}
