package repl

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xascript/xascript/runtime"
)

// runSession runs a non-interactive session on input and returns what it
// wrote to stdout and stderr.
func runSession(t *testing.T, input string) (stdout, stderr string) {
	t.Helper()
	var out, errw strings.Builder
	rt := runtime.New(runtime.Config{Stdout: &out, LineBuffered: true})
	defer rt.Close()
	err := Run(t.Context(), Config{Runtime: rt, In: strings.NewReader(input), Out: &out, Err: &errw})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return out.String(), errw.String()
}

func TestSession(t *testing.T) {
	out, errs := runSession(t, strings.Join([]string{
		`1 + 1`,
		`x = 5`, // a statement prints nothing
		`x * 2`,
		`=x`,
		`print("printed", x)`, // print's line, then no value
		`1, "two", nil`,
		// Statements cut short go on with the next lines.
		`function add(a,`,
		`  b)`,
		`  return a + b`,
		`end`,
		`add(2, 3)`,
		`t = {`,
		`  k = "v",`,
		`}`,
		`t`,
		`1 +`,
		`2`,
		// An error is reported and the session goes on, state intact.
		`error("boom")`,
		`x = = 1`,
		`x`,
		``,
		`:nosuch`,
		`:quit`,
		`"not reached"`,
	}, "\n"))
	want := "2\n10\n5\nprinted\t5\n1\ttwo\tnil\n5\n{k = \"v\"}\n3\n5\n"
	if out != want {
		t.Errorf("stdout\n got %q\nwant %q", out, want)
	}
	for _, e := range []string{"stdin:1: boom", "syntax error", "unknown command :nosuch"} {
		if !strings.Contains(errs, e) {
			t.Errorf("stderr %q lacks %q", errs, e)
		}
	}
	if n := strings.Count(errs, "\n"); n != 3 {
		t.Errorf("stderr has %d lines, want 3 (one per error):\n%s", n, errs)
	}
}

// :load runs a file in the session; loading it again after an edit replaces
// its functions, and the modules it requires are read afresh.
func TestLoadReloads(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("mon.lua", `local lib = require("lib") function answer() return lib.n * 2 end`)
	write("lib.lua", `return {n = 1}`)
	mon := filepath.Join(dir, "mon.lua")

	var out, errw syncBuffer
	rt := runtime.New(runtime.Config{Stdout: &out, LineBuffered: true})
	defer rt.Close()
	in, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	done := make(chan error, 1)
	go func() { done <- Run(t.Context(), Config{Runtime: rt, In: in, Out: &out, Err: &errw}) }()
	// The session reads line by line: the edit happens between two :loads.
	send := func(s string) {
		t.Helper()
		if _, err := w.WriteString(s + "\n"); err != nil {
			t.Fatal(err)
		}
	}
	send(":load " + mon)
	send("answer()")
	send(`print("edit")`)
	waitFor(t, &out, "edit\n")
	write("lib.lua", `return {n = 21}`)
	send(":load " + mon)
	send("answer()")
	send(":load " + filepath.Join(dir, "missing.lua"))
	w.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "2\nedit\n42\n"; got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
	if !strings.Contains(errw.String(), "missing.lua") {
		t.Errorf("stderr %q does not name the missing file", errw.String())
	}
}

// syncBuffer is a strings.Builder that a session's goroutine writes while
// the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until b holds want, failing after 10 s.
func waitFor(t *testing.T, b *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10 s for %q; have %q", want, b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The history file is the user's alone: made 0600 in a 0700 folder, and a
// file left with a wider mode is narrowed when it is written.
func TestHistoryMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "xascript")
	path := filepath.Join(dir, "history")
	f, err := openHistory(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		if got := perm(t, p); got != want {
			t.Errorf("%s: mode %v, want %v", p, got, want)
		}
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err = openHistory(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if got := perm(t, path); got != 0o600 {
		t.Errorf("a 0644 history was left %v; want 0600", got)
	}
	t.Setenv("XDG_STATE_HOME", "/st")
	if got := HistoryPath(); got != "/st/xascript/history" {
		t.Errorf("HistoryPath with XDG_STATE_HOME=/st: %q", got)
	}
	t.Setenv("XDG_STATE_HOME", "relative") // the spec says to ignore it
	t.Setenv("HOME", "/home/u")
	if got := HistoryPath(); got != "/home/u/.local/state/xascript/history" {
		t.Errorf("HistoryPath with a relative XDG_STATE_HOME: %q", got)
	}
}

func perm(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}
