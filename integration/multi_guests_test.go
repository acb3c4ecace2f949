//go:build guests

package integration

import (
	"bytes"
	"context"
	"encoding/json"
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
)

// TestLiveQEMUMulti: two real guests, one with RAM in a shared file and one
// with plain -m RAM, the second with one module more (insmod of the held
// module), monitored at once by one xascript process: each guest's tagged
// lines are exactly its own /proc/modules, in order. Then xascript list
// finds both guests' QMP sockets with their names, run state and QEMU pids.
func TestLiveQEMUMulti(t *testing.T) {
	bin := xascriptBinary(t)
	a := liveguest.StartRAM(t, "../testdata/live-guest.sh", liveguest.FileRAM)
	b := liveguest.StartRAM(t, "../testdata/live-guest.sh", liveguest.AnonRAM)
	if out, err := b.Run("insmod /lib/modules/"+liveguest.HeldModule+".ko", 60*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	truth := map[string][]string{}
	names := map[string]string{}
	for _, g := range []*liveguest.Guest{a, b} {
		mods, err := g.Modules()
		if err != nil {
			t.Fatal(err)
		}
		name := qemuName(t, g.PID)
		truth[name], names[g.Socket] = mods, name
	}
	if strings.Join(truth[names[a.Socket]], ",") == strings.Join(truth[names[b.Socket]], ",") {
		t.Fatalf("the two guests list the same modules: %v", truth[names[a.Socket]])
	}

	// Text: every line tagged with its guest, the record in it naming the
	// same guest.
	out := runBinary(t, bin, lkm, "--qemu", a.Socket, "--qemu", b.Socket)
	got := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		tag, rec, ok := strings.Cut(l, " ")
		name := strings.Trim(tag, "[]")
		f := strings.Fields(rec)
		// guest=NAME time=T name=MODULE: a live guest's records carry the
		// time they were read.
		if !ok || tag != "["+name+"]" || len(f) != 3 || f[0] != "guest="+name || !strings.HasPrefix(f[1], "time=") || !strings.HasPrefix(f[2], "name=") {
			t.Fatalf("line %q is not one module record tagged with its guest:\n%s", l, out)
		}
		got[name] = append(got[name], strings.TrimPrefix(f[2], "name="))
	}
	checkGuests(t, "text", got, truth)

	// --json: JSON Lines, each record with its guest and the time it was
	// read.
	start := time.Now().Truncate(time.Millisecond)
	out = runBinary(t, bin, lkm, "--json", "--qemu", a.Socket, "--qemu", b.Socket)
	end := time.Now()
	recs, err := Records(out)
	if err != nil {
		t.Fatal(err)
	}
	got = map[string][]string{}
	for _, r := range recs {
		g, _ := r["guest"].(string)
		mod, _ := r["name"].(string)
		ts, _ := r["time"].(string)
		when, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil || when.Before(start) || when.After(end) {
			t.Fatalf("record %v: want a time within the run (%v to %v)", r, start, end)
		}
		got[g] = append(got[g], mod)
	}
	checkGuests(t, "--json", got, truth)

	type entry struct {
		Kind   string `json:"kind"`
		Socket string `json:"socket"`
		Name   string `json:"name"`
		State  string `json:"state"`
		PID    int    `json:"pid"`
		Error  string `json:"error"`
	}
	var list []entry
	raw := runBinary(t, bin, "list", "--json", "--qemu-dir", filepath.Dir(a.Dir), "--qemu-dir", filepath.Dir(b.Dir))
	for _, line := range strings.Split(strings.TrimSuffix(raw, "\n"), "\n") {
		var e entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("list --json: line %q: %v", line, err)
		}
		list = append(list, e)
	}
	for _, g := range []*liveguest.Guest{a, b} {
		found := false
		for _, e := range list {
			if e.Socket != g.Socket {
				continue
			}
			found = true
			if e.Kind != "qemu" || e.Name != names[g.Socket] || e.State != "running" || e.PID != g.PID || e.Error != "" {
				t.Errorf("list: %s: %+v; want qemu %s running, pid %d", g.Socket, e, names[g.Socket], g.PID)
			}
		}
		if !found {
			t.Errorf("list does not show %s:\n%s", g.Socket, raw)
		}
	}

	t.Run("one QEMU quits", func(t *testing.T) { testMultiOneQuits(t, bin, a, b, names) })
}

// roundsScript polls the guest's module list and prints one line a round.
const roundsScript = `
local linux = require("linux")
local n = 0
while true do
  n = n + 1
  print("round " .. n .. " " .. #linux.modules())
  sleep(0.1)
end`

// testMultiOneQuits: one process polls both guests; guest a's QEMU quits:
// a's state ends with an error line naming a and saying QEMU went away, b's
// goes on printing rounds until SIGTERM, and the exit status is 143 (the
// worst of 1 and 143).
func testMultiOneQuits(t *testing.T, bin string, a, b *liveguest.Guest, names map[string]string) {
	script := filepath.Join(t.TempDir(), "rounds.lua")
	if err := os.WriteFile(script, []byte(roundsScript), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// --quiet: the one stderr line wanted is a's error; the progress line of
	// deriving each profile shows only when that takes 300 ms or more, so
	// it comes and goes with the host's load.
	cmd := exec.CommandContext(ctx, bin, script, "--quiet", "--qemu", a.Socket, "--qemu", b.Socket)
	cmd.Env = cacheEnv(t)
	na, nb := names[a.Socket], names[b.Socket]
	bothRunning := make(chan struct{})
	stdout := &roundsWriter{want: []string{"[" + na + "] round 2 ", "[" + nb + "] round 2 "}, seen: bothRunning}
	aFailed := make(chan struct{})
	stderr := &markerWriter{marker: "xascript: [" + na + "] ", seen: aFailed}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-bothRunning:
	case err := <-done:
		t.Fatalf("ended before both guests ran: %v\n%s\n%s", err, stdout, stderr)
	case <-time.After(4 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("both guests not polled within 4 minutes\n%s\n%s", stdout, stderr)
	}
	if err := a.Control("quit", nil, 20*time.Second); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Logf("quit: %v", err) // QEMU may close the socket before it answers
	}
	select {
	case <-aFailed:
	case err := <-done:
		t.Fatalf("xascript ended after guest %s quit: %v\n%s\n%s", na, err, stdout, stderr)
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatalf("no error line for %s within a minute of its quit\n%s\n%s", na, stdout, stderr)
	}
	// b goes on: ten more rounds after a's error line.
	atFail := stdout.count(nb)
	deadline := time.Now().Add(2 * time.Minute)
	for stdout.count(nb) < atFail+10 {
		select {
		case err := <-done:
			t.Fatalf("xascript ended after guest %s quit: %v\n%s\n%s", na, err, stdout, stderr)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("after %s quit, %s made %d rounds in 2 minutes\n%s\n%s", na, nb, stdout.count(nb)-atFail, stdout, stderr)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("SIGTERM did not end xascript within 30 s")
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 143 {
		t.Errorf("exit: %v, want 143", err)
	}
	msg := stderr.String()
	if lines := strings.Split(strings.TrimSpace(msg), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "xascript: ["+na+"] ") || !strings.Contains(msg, "QEMU has gone away") {
		t.Errorf("stderr: want one line naming %s and saying QEMU went away:\n%s", na, msg)
	}
	t.Logf("%s: %d rounds, %s: %d rounds; %s", na, stdout.count(na), nb, stdout.count(nb), strings.TrimSpace(msg))
}

// roundsWriter collects output, counts each guest's rounds and closes seen
// once every want string appeared.
type roundsWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	want   []string
	seen   chan struct{}
	closed bool
}

func (w *roundsWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.closed {
		all := true
		for _, s := range w.want {
			all = all && strings.Contains(w.buf.String(), s)
		}
		if all {
			w.closed = true
			close(w.seen)
		}
	}
	return len(p), nil
}

func (w *roundsWriter) count(name string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Count(w.buf.String(), "["+name+"] round ")
}

func (w *roundsWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// checkGuests compares each guest's module names with its /proc/modules.
func checkGuests(t *testing.T, how string, got, truth map[string][]string) {
	t.Helper()
	if len(got) != len(truth) {
		t.Errorf("%s: output from %d guests, want %d", how, len(got), len(truth))
	}
	for name, mods := range truth {
		if strings.Join(got[name], ",") != strings.Join(mods, ",") {
			t.Errorf("%s: guest %s: xascript printed %v; its /proc/modules lists %v", how, name, got[name], mods)
		}
	}
}

// qemuName is the -name that live-guest.sh gave QEMU, from its command line.
func qemuName(t *testing.T, pid int) string {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Fatal(err)
	}
	args := bytes.Split(raw, []byte{0})
	for i := 0; i+1 < len(args); i++ {
		if string(args[i]) == "-name" {
			return string(args[i+1])
		}
	}
	t.Fatalf("QEMU %d has no -name: %q", pid, raw)
	return ""
}
