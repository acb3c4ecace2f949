package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/xascript/xascript/vmi/dump"
)

// TestPanicFirewall: a panic in any stage of run, injected through
// testStageHook (no bug is kept for it), ends as one line on stderr that
// names the stage and the layer whose code panicked, with exit status 70.
// The dump panic is a real one inside vmi/dump: a method called on a nil
// *dump.Dump, so the layer is found from the panicking frame, not from
// where the hook sits.
func TestPanicFirewall(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "s.lua")
	if err := os.WriteFile(script, []byte("print('hi')\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	core := filepath.Join(dir, "core")
	if err := os.WriteFile(core, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	inDump := func() { var d *dump.Dump; _ = d.Kind() }
	inMain := func() { panic("injected\nsecond line") }
	tests := []struct {
		name  string
		args  []string
		stage string
		boom  func()
		want  string // regexp of the whole stderr
	}{
		{"open", []string{script, "--file", core}, "opening the target", inDump,
			`^xascript: internal error in opening the target \(vmi/dump, open\.go:\d+\): runtime error: invalid memory address or nil pointer dereference; please report\n$`},
		{"script", []string{script}, "running the script", inMain,
			`^xascript: internal error in running the script \(cmd/xascript, firewall_test\.go:\d+\): injected second line; please report\n$`},
		{"info", []string{"info", "--file", core}, "the info command", inDump,
			`^xascript: internal error in the info command \(vmi/dump, open\.go:\d+\): runtime error: invalid memory address`},
		{"profile", []string{"profile", "--file", core}, "the profile command", inMain,
			`^xascript: internal error in the profile command \(cmd/xascript, firewall_test\.go:\d+\): injected`},
		{"bench", []string{"bench", "--file", core}, "the bench command", inMain,
			`^xascript: internal error in the bench command \(cmd/xascript, firewall_test\.go:\d+\): injected`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen []string
			testStageHook = func(stage string) {
				seen = append(seen, stage)
				if stage == tt.stage {
					tt.boom()
				}
			}
			defer func() { testStageHook = nil }()
			var stdout, stderr strings.Builder
			code := run(tt.args, &stdout, &stderr)
			if code != 70 {
				t.Errorf("exit status %d, want 70", code)
			}
			if !regexp.MustCompile(tt.want).MatchString(stderr.String()) {
				t.Errorf("stderr %q does not match %s", stderr.String(), tt.want)
			}
			if n := strings.Count(stderr.String(), "\n"); n != 1 {
				t.Errorf("stderr has %d lines, want 1: %q", n, stderr.String())
			}
			if len(seen) == 0 || seen[len(seen)-1] != tt.stage {
				t.Errorf("stages entered %v: %q never reached", seen, tt.stage)
			}
		})
	}
}

// TestPanicFirewallQuiet: without a panic the firewall changes nothing,
// and the hook saw every stage of a script run with a target.
func TestPanicFirewallQuiet(t *testing.T) {
	script := filepath.Join(t.TempDir(), "s.lua")
	if err := os.WriteFile(script, []byte("print('hi')\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var seen []string
	testStageHook = func(stage string) { seen = append(seen, stage) }
	defer func() { testStageHook = nil }()
	var stdout, stderr strings.Builder
	if code := run([]string{script}, &stdout, &stderr); code != exitOK || stdout.String() != "hi\n" || stderr.String() != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	if strings.Join(seen, ",") != "running the script" {
		t.Fatalf("stages %v", seen)
	}
}
