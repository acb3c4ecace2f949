//go:build guests

package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xascript/xascript/internal/liveguest"
	"github.com/xascript/xascript/vmi/linux"
	"github.com/xascript/xascript/vmi/qemu"
)

// TestGuestLiveQEMU runs the live suite on a guest of each RAM kind: a
// shared memory-backend-file, and plain -m RAM that only QEMU's process
// holds. On each, with no profile flags: lkm.lua through the real binary
// prints the modules the guest listed; pause()/with_paused work; after the
// guest loads one more module, lkm.lua prints exactly the guest's new
// /proc/modules; and a script that loops reading memory while QEMU goes
// away (quit over QMP for the file guest, SIGKILL for the other) ends with
// an error that says so, in bounded time.
func TestGuestLiveQEMU(t *testing.T) {
	bin := xascriptBinary(t)
	for _, ram := range []liveguest.RAM{liveguest.FileRAM, liveguest.AnonRAM} {
		t.Run(string(ram), func(t *testing.T) { testLiveGuest(t, bin, ram) })
	}
}

func testLiveGuest(t *testing.T, bin string, ram liveguest.RAM) {
	g := liveguest.StartRAM(t, "../testdata/live-guest.sh", ram)
	serial, err := g.Serial()
	if err != nil {
		t.Fatal(err)
	}
	want := consoleModules(t, serial)

	// lkm.lua through the binary, as a user runs it.
	got := lkmBinary(t, bin, g.Socket)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("xascript lkm.lua --qemu printed %v; the guest's console listed %v", got, want)
	}
	info := runBinary(t, bin, "info", "--qemu", g.Socket)
	wantKind := map[liveguest.RAM]string{liveguest.FileRAM: "live QEMU (shared RAM file)", liveguest.AnonRAM: "live QEMU (process memory)"}[ram]
	if !strings.Contains(info, wantKind) {
		t.Errorf("xascript info does not say %q:\n%s", wantKind, info)
	}

	t.Run("paused", func(t *testing.T) { testPaused(t, g, want) })

	t.Run("module loaded", func(t *testing.T) {
		if out, err := g.Run("insmod /lib/modules/"+liveguest.HeldModule+".ko", 60*time.Second); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		mods, err := g.Modules()
		if err != nil {
			t.Fatal(err)
		}
		if len(mods) != len(want)+1 || mods[0] != liveguest.HeldModule {
			t.Fatalf("after insmod the guest lists %v; want %s first, then %v", mods, liveguest.HeldModule, want)
		}
		got := lkmBinary(t, bin, g.Socket)
		if strings.Join(got, ",") != strings.Join(mods, ",") {
			t.Fatalf("after insmod lkm.lua printed %v; the guest's /proc/modules lists %v", got, mods)
		}
	})

	t.Run("QEMU quits mid-script", func(t *testing.T) { testQuitMidScript(t, bin, g) })
}

// testPaused: pause(), with_paused(fn) through the Go API.
func testPaused(t *testing.T, g *liveguest.Guest, want []string) {
	target, err := qemu.Open(g.Socket, qemu.Options{Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	// Hold the guest still while the kernel is located and the list walked.
	if err := target.Pause(); err != nil {
		t.Fatal(err)
	}
	k, err := linux.Open(target, linux.Options{Unpack: cacheOpts(t)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := RunScript(k, lkm)
	if err != nil {
		t.Fatal(err)
	}
	if err := target.Resume(); err != nil {
		t.Fatal(err)
	}
	if names := moduleNames(t, got); strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("lkm.lua on the paused guest printed %v; its console listed %v", names, want)
	}

	// with_paused pauses for fn and resumes even when fn fails.
	pausedScript := filepath.Join(t.TempDir(), "paused.lua")
	os.WriteFile(pausedScript, []byte(`
local n = with_paused(function() return assert(walk_list(symbol("modules"), "module", "list", function() end)) end)
print(n)
print(pcall(with_paused, function() error("boom") end))
`), 0o644)
	out2, err := RunScript(k, pausedScript)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out2), "\n"); len(lines) != 2 || lines[0] != fmt.Sprint(len(want)) || !strings.Contains(lines[1], "boom") {
		t.Fatalf("paused.lua printed %q", out2)
	}
	if target.Paused() {
		t.Fatal("with_paused left the guest paused")
	}
}

// loopScript reads jiffies and walks the module list until a read fails.
const loopScript = `
local jiffies = assert(symbol("jiffies"))
local modules = assert(symbol("modules"))
local first = assert(read_u64(jiffies))
io.stderr:write("XA-LOOPING\n")
local n, last = 0, first
while true do
  local v, err = read_u64(jiffies)
  if not v then error(string.format("after %d reads (jiffies went from %s to %s): %s", n, tostring(first), tostring(last), tostring(err)), 0) end
  last = v
  n = n + 1
  if n % 100 == 0 then
    assert(walk_list(modules, "module", "list", function() end))
  end
end
`

// testQuitMidScript runs loopScript through the binary, makes QEMU go away
// while it loops, and checks that it ends with an error naming that.
func testQuitMidScript(t *testing.T, bin string, g *liveguest.Guest) {
	script := filepath.Join(t.TempDir(), "loop.lua")
	if err := os.WriteFile(script, []byte(loopScript), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, script, "--qemu", g.Socket)
	cmd.Env = cacheEnv(t)
	looping := make(chan struct{})
	stderr := &markerWriter{marker: "XA-LOOPING", seen: looping}
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-looping:
	case err := <-done:
		t.Fatalf("the script ended before QEMU went away: %v\n%s", err, stderr)
	case <-time.After(4 * time.Minute):
		t.Fatalf("the script did not start looping within 4 minutes\n%s", stderr)
	}
	time.Sleep(time.Second) // let it loop a while
	var how string
	if g.RAM == liveguest.FileRAM {
		how = "QMP quit"
		if err := g.Control("quit", nil, 20*time.Second); err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Logf("quit: %v", err) // QEMU may close the socket before it answers
		}
	} else {
		how = "SIGKILL"
		if err := syscall.Kill(g.PID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Now()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("after %s the script still ran 30 s later\n%s", how, stderr)
	}
	t.Logf("after %s the script ended in %v: %s", how, time.Since(t0).Round(time.Millisecond), strings.TrimSpace(stderr.String()))
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("exit: %v, want status 1 (a script error)", err)
	}
	msg := stderr.String()
	if !strings.Contains(msg, "QEMU has gone away") {
		t.Errorf("the error does not say that QEMU went away:\n%s", msg)
	}
	for _, bad := range []string{"panic", "internal error", "goroutine "} {
		if strings.Contains(msg, bad) {
			t.Errorf("stderr mentions %q:\n%s", bad, msg)
		}
	}
}

// markerWriter collects output and closes seen when marker first appears.
type markerWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string
	seen   chan struct{}
	closed bool
}

func (w *markerWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.closed && strings.Contains(w.buf.String(), w.marker) {
		w.closed = true
		close(w.seen)
	}
	return len(p), nil
}

func (w *markerWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// xascriptBinary is $XASCRIPT_BIN (make e2e-qemu builds bin/xascript), or
// a fresh build.
func xascriptBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("XASCRIPT_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(t.TempDir(), "xascript")
	build := exec.Command("go", "build", "-o", bin, "../cmd/xascript")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// runBinary runs xascript with args and returns its standard output.
func runBinary(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = cacheEnv(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	t0 := time.Now()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("xascript %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	t.Logf("xascript %s: %v", strings.Join(args, " "), time.Since(t0).Round(time.Millisecond))
	return string(out)
}

// lkmBinary runs lkm.lua on the live guest and returns the module names.
// Every record must name the guest by its QMP socket and carry the time it
// was written (the guest is live), within the run.
func lkmBinary(t *testing.T, bin, sock string) []string {
	t.Helper()
	start := time.Now().Truncate(time.Millisecond)
	out := runBinary(t, bin, lkm, "--qemu", sock, "--json")
	end := time.Now()
	recs, err := Records(out)
	if err != nil {
		t.Fatalf("lkm.lua --qemu --json: %v", err)
	}
	for _, r := range recs {
		ts, _ := r["time"].(string)
		when, err := time.Parse(time.RFC3339Nano, ts)
		if r["guest"] != sock || err != nil || when.Before(start) || when.After(end) {
			t.Fatalf("lkm.lua --qemu record %v: want guest %q and a time within the run (%v to %v)", r, sock, start, end)
		}
	}
	return moduleNames(t, out)
}

// consoleModules parses the /proc/modules the guest printed between
// markers: the first word of each line, in order.
func consoleModules(t *testing.T, serial string) []string {
	t.Helper()
	_, rest, ok := strings.Cut(serial, "@@XA-BEGIN-MODULES@@")
	body, _, ok2 := strings.Cut(rest, "@@XA-END-MODULES@@")
	if !ok || !ok2 {
		t.Fatalf("no module list on the console:\n%s", serial)
	}
	mods := liveguest.ModuleNames(body)
	if len(mods) < 5 {
		t.Fatalf("only %d modules on the console", len(mods))
	}
	return mods
}
