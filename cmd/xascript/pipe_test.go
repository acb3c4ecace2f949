package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pollScript prints a burst of lines (well under the output buffer, so
// without a flush none would leave the process), a line carrying the time
// it was printed, then waits as a polling monitor does.
const pollScript = `
for i = 1, 2000 do print("line", i) end
print("ready", string.format("%.6f", now()))
sleep(5)
print("after the sleep")
`

// TestOutputThroughPipe runs xascript as a real process (testscript.Main's
// copy of the test binary in $PATH) with stdout a pipe, as `xascript
// mon.lua | tee log` does. What the script printed before it waits reaches
// the reader while it waits, long before its next print; a SIGTERM or SIGINT
// during the wait loses nothing and exits 143 or 130, and even SIGKILL loses
// nothing printed before the wait.
func TestOutputThroughPipe(t *testing.T) {
	bin, err := exec.LookPath("xascript")
	if err != nil {
		t.Fatalf("the xascript command of testscript.Main: %v", err)
	}
	script := filepath.Join(t.TempDir(), "poll.lua")
	if err := os.WriteFile(script, []byte(pollScript), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		sig    syscall.Signal
		status int
	}{{"SIGTERM", syscall.SIGTERM, 143}, {"SIGINT", syscall.SIGINT, 130}, {"SIGKILL", syscall.SIGKILL, -1}} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, script)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Never hang: the script ends by itself after its sleep; this
			// only guards against a process that does not.
			killer := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
			defer killer.Stop()

			sc := bufio.NewScanner(out)
			var lines []string
			var latency time.Duration
			for sc.Scan() {
				line := sc.Text()
				lines = append(lines, line)
				if ts, ok := strings.CutPrefix(line, "ready\t"); ok {
					arrived := time.Now()
					printed, err := strconv.ParseFloat(ts, 64)
					if err != nil {
						t.Fatalf("ready line %q: %v", line, err)
					}
					latency = arrived.Sub(time.UnixMicro(int64(printed * 1e6)))
					// The script is in its 5 s sleep now: interrupt it.
					if err := cmd.Process.Signal(tc.sig); err != nil {
						t.Fatal(err)
					}
				}
			}
			err = cmd.Wait()
			if latency == 0 {
				t.Fatalf("no ready line in %d lines of output", len(lines))
			}
			// The line must arrive before the script's next print (after its
			// 5 s sleep): not held until the script ends.
			if latency >= 5*time.Second {
				t.Errorf("the ready line arrived %v after it was printed, after the script's sleep ended", latency)
			}
			t.Logf("first line after a wait reached the pipe's reader %v after print", latency.Round(time.Microsecond))
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != tc.status {
				t.Fatalf("exit: %v, want status %d (stderr %q)", err, tc.status, stderr.String())
			}
			// SIGKILL gives no chance to say anything, but what was
			// printed before the wait is out already.
			if wantErr := "xascript: interrupted\n"; tc.sig == syscall.SIGKILL && stderr.String() != "" ||
				tc.sig != syscall.SIGKILL && stderr.String() != wantErr {
				t.Errorf("stderr %q", stderr.String())
			}
			// Nothing printed before the signal is lost, nothing after it runs.
			if len(lines) != 2001 {
				t.Fatalf("%d lines, want 2001: last %q", len(lines), lines[len(lines)-1])
			}
			for i, l := range lines[:2000] {
				if l != "line\t"+strconv.Itoa(i+1) {
					t.Fatalf("line %d is %q", i+1, l)
				}
			}
		})
	}
}

// TestModwatchThroughPipe is the issue's case: `xascript modwatch.lua --file
// IMAGE | cat` must show the first round's modules while the monitor waits
// for its next round, not when it ends (here: never, until SIGTERM).
func TestModwatchThroughPipe(t *testing.T) {
	bin, err := exec.LookPath("xascript")
	if err != nil {
		t.Fatalf("the xascript command of testscript.Main: %v", err)
	}
	img := filepath.Join("..", "..", "testdata", "images", variant)
	raw, err := os.ReadFile(filepath.Join(img, "truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, filepath.Join("..", "..", "scripts", "examples", "modwatch.lua"),
		"--file", filepath.Join(img, "mem.elf.zst"), "-q", "--", "5")
	cmd.Env = append(os.Environ(), "XASCRIPT_CACHE_DIR="+t.TempDir())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killer := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	defer killer.Stop()
	sc := bufio.NewScanner(out)
	var lines []string
	var first time.Duration
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) == 1 {
			first = time.Since(start)
			// The monitor is in its first 5 s sleep (or about to be: the
			// whole round is flushed together before it): stop it.
			cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitTerminated {
		t.Fatalf("exit: %v, want status %d (stderr %q)", err, exitTerminated, stderr.String())
	}
	t.Logf("first line after %v (open the image, one round)", first.Round(time.Millisecond))
	var truth struct {
		Modules []string `json:"modules"`
	}
	if err := json.Unmarshal(raw, &truth); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, m := range truth.Modules {
		want = append(want, "guest=mem.elf.zst event=loaded module="+m)
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("got %q\nwant the guest's modules %q", lines, want)
	}
}
