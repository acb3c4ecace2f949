package main

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

// screen collects what the REPL writes to its terminal, for the test to
// read as a user would: escape sequences (line redraws) are dropped.
type screen struct {
	mu   sync.Mutex
	raw  []byte
	mark int // start of what expect still looks at
}

var csi = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

func (s *screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.raw = append(s.raw, p...)
	return len(p), nil
}

func (s *screen) text(from int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return csi.ReplaceAllString(string(s.raw[from:]), "")
}

// expect waits until the screen, since the last match, shows want (a
// regular expression), and moves past it. The REPL must answer within 30 s
// (the first struct lookup loads the kernel's BTF).
func (s *screen) expect(t *testing.T, want string) []string {
	t.Helper()
	re := regexp.MustCompile(want)
	deadline := time.Now().Add(30 * time.Second)
	for {
		s.mu.Lock()
		from := s.mark
		s.mu.Unlock()
		text := s.text(from)
		if loc := re.FindStringSubmatchIndex(text); loc != nil {
			// Advance by the raw bytes that hold the match's end.
			s.mu.Lock()
			s.mark = from + rawOffset(string(s.raw[from:]), loc[1])
			s.mu.Unlock()
			var groups []string
			for i := 0; i < len(loc); i += 2 {
				if loc[i] >= 0 {
					groups = append(groups, text[loc[i]:loc[i+1]])
				} else {
					groups = append(groups, "")
				}
			}
			return groups
		}
		if time.Now().After(deadline) {
			t.Fatalf("the terminal did not show %q within 30 s; it shows:\n%s", want, text)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rawOffset maps an offset in raw's text with escapes removed back to raw.
func rawOffset(raw string, textOff int) int {
	n := 0
	for i := 0; i < len(raw); {
		if loc := csi.FindStringIndex(raw[i:]); loc != nil && loc[0] == 0 {
			i += loc[1]
			continue
		}
		if n == textOff {
			return i
		}
		n++
		i++
	}
	return len(raw)
}

// TestREPLThroughPty runs `xascript repl --file IMAGE` (testscript.Main's
// copy of the test binary) on a pseudo-terminal and types at it as a user
// does: Tab completes a global, a struct name and a member name; values
// print; a statement spans lines; Ctrl-C stops a busy statement and clears a
// line; Ctrl-D leaves; the history file is the user's alone. The values are
// checked against what the guest printed about itself (truth.json).
func TestREPLThroughPty(t *testing.T) {
	bin, err := exec.LookPath("xascript")
	if err != nil {
		t.Fatalf("the xascript command of testscript.Main: %v", err)
	}
	img := filepath.Join("..", "..", "testdata", "images", variant)
	raw, err := os.ReadFile(filepath.Join(img, "truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	var truth struct {
		KernelRelease string   `json:"kernel_release"`
		Modules       []string `json:"modules"`
	}
	if err := json.Unmarshal(raw, &truth); err != nil {
		t.Fatal(err)
	}
	if truth.KernelRelease == "" || len(truth.Modules) == 0 {
		t.Fatalf("truth.json of %s has no kernel_release or modules", variant)
	}
	state := t.TempDir()
	cmd := exec.Command(bin, "repl", "--file", filepath.Join(img, "mem.elf.zst"), "-q")
	cmd.Env = append(os.Environ(), "XASCRIPT_CACHE_DIR="+t.TempDir(), "XDG_STATE_HOME="+state, "TERM=xterm")
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 50, Cols: 200})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Never hang: whatever happens, the REPL is gone after 3 minutes.
	killer := time.AfterFunc(3*time.Minute, func() { cmd.Process.Kill() })
	defer killer.Stop()
	defer cmd.Process.Kill() // a failed check leaves no REPL behind
	scr := &screen{}
	go io.Copy(scr, tty) // ends when the terminal closes
	typ := func(s string) {
		t.Helper()
		if _, err := tty.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}

	scr.expect(t, `on .*mem\.elf\.zst\. :help for help`)
	scr.expect(t, `> $`)

	// A global completed by Tab: "guest_in()" would be a call of nil.
	typ("guest_in\t")
	scr.expect(t, `guest_info`)
	typ(`().banner:match("Linux version (%S+)")` + "\r")
	if got := scr.expect(t, `\n([^\r\n]*)\r?\n> `)[1]; got != truth.KernelRelease {
		t.Errorf("guest_info().banner's release = %q, want the guest's %q", got, truth.KernelRelease)
	}

	// A struct name, then a member name, each completed with its closing
	// quote: only the completed line is valid Lua.
	typ(`has_member("task_st` + "\t")
	scr.expect(t, `has_member\("task_struct"`)
	typ(`, "com` + "m\t")
	scr.expect(t, `"comm"`)
	typ(")\r")
	if got := scr.expect(t, `\n([^\r\n]*)\r?\n> `)[1]; got != "true" {
		t.Errorf(`has_member("task_struct", "comm") printed %q, want true`, got)
	}

	// A statement over several lines, on the continuation prompt.
	typ("n = 0\r")
	scr.expect(t, `> $`)
	typ(`walk_list(symbol("modules"), "module", "list", function(m)` + "\r")
	scr.expect(t, `>> $`)
	typ("n = n + 1\r")
	scr.expect(t, `>> $`)
	typ("end)\r")
	scr.expect(t, `\n> $`)
	typ("n\r")
	got := scr.expect(t, `\n([^\r\n]*)\r?\n> `)[1]
	if n, err := strconv.Atoi(got); err != nil || n != len(truth.Modules) {
		t.Errorf("modules walked: %q, want the guest's %d", got, len(truth.Modules))
	}

	// Ctrl-C stops a busy statement, and the session goes on.
	typ("while true do end\r")
	time.Sleep(300 * time.Millisecond)
	typ("\x03")
	scr.expect(t, `interrupted\r?\n> `)
	// Ctrl-C at the prompt drops the line typed so far.
	typ("garbage")
	scr.expect(t, `garbage`)
	typ("\x03")
	typ("6*7\r")
	if got := scr.expect(t, `\n([^\r\n]*)\r?\n> `)[1]; got != "42" {
		t.Errorf("6*7 after a cleared line printed %q, want 42", got)
	}

	// Ctrl-D leaves, with status 0.
	typ("\x04")
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after Ctrl-D: %v\n%s", err, scr.text(0))
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30 s after Ctrl-D:\n%s", scr.text(0))
	}

	hist := filepath.Join(state, "xascript", "history")
	fi, err := os.Stat(hist)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("history %s has mode %v, want 0600", hist, fi.Mode().Perm())
	}
	h, err := os.ReadFile(hist)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{`has_member("task_struct", "comm")`, "6*7"} {
		if !strings.Contains(string(h), line+"\n") {
			t.Errorf("history lacks %q:\n%s", line, h)
		}
	}
	if strings.Contains(string(h), "garbage") {
		t.Errorf("history holds the line Ctrl-C dropped:\n%s", h)
	}
}

// Without a terminal the REPL reads statements line by line, with no
// prompt or banner, so that it can be scripted.
func TestREPLFromPipe(t *testing.T) {
	bin, err := exec.LookPath("xascript")
	if err != nil {
		t.Fatalf("the xascript command of testscript.Main: %v", err)
	}
	img := filepath.Join("..", "..", "testdata", "images", variant)
	raw, err := os.ReadFile(filepath.Join(img, "truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	var truth struct {
		Modules []string `json:"modules"`
	}
	if err := json.Unmarshal(raw, &truth); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "repl", "--file", filepath.Join(img, "mem.elf.zst"), "-q")
	cmd.Env = append(os.Environ(), "XASCRIPT_CACHE_DIR="+t.TempDir(), "XDG_STATE_HOME="+t.TempDir())
	cmd.Stdin = strings.NewReader(`walk_list(symbol("modules"), "module", "list", function(m)
  print(read_cstring(m + offsetof("module", "name"), 56))
end)
`)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	// Never hang: a REPL that does not end at the input's end is killed.
	timer := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() })
	defer timer.Stop()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v; stderr %q", err, stderr.String())
	}
	// walk_list returns the count, printed as the statement's value.
	want := strings.Join(truth.Modules, "\n") + "\n" + strconv.Itoa(len(truth.Modules)) + "\n"
	if string(out) != want {
		t.Errorf("stdout\n got %q\nwant %q", out, want)
	}
}

// SIGTERM ends a session waiting for input (143); so does SIGINT when the
// input is not a terminal (130), there being no line to clear.
func TestREPLSignals(t *testing.T) {
	bin, err := exec.LookPath("xascript")
	if err != nil {
		t.Fatalf("the xascript command of testscript.Main: %v", err)
	}
	for _, tc := range []struct {
		sig    syscall.Signal
		status int
	}{{syscall.SIGTERM, exitTerminated}, {syscall.SIGINT, exitInterrupted}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			cmd := exec.Command(bin, "repl")
			cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+t.TempDir())
			in, err := cmd.StdinPipe() // held open: the REPL waits for a line
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			timer := time.AfterFunc(time.Minute, func() { cmd.Process.Kill() })
			defer timer.Stop()
			// Once it has answered a line, its signal handling is in place.
			io.WriteString(in, "40 + 2\n")
			line := make([]byte, 3)
			if _, err := io.ReadFull(out, line); err != nil || string(line) != "42\n" {
				t.Fatalf("first answer %q, %v", line, err)
			}
			cmd.Process.Signal(tc.sig)
			err = cmd.Wait()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != tc.status {
				t.Errorf("after %v: %v, want exit status %d", tc.sig, err, tc.status)
			}
		})
	}
}
