package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runScript runs xascript (in process) on a script written from src.
func runScript(t *testing.T, src string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	script := filepath.Join(t.TempDir(), "s.lua")
	if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb strings.Builder
	code = run(append([]string{script}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// A script that calls functions needing a target, run without one, is a
// usage error found before it runs: it prints nothing.
func TestNoTargetIsUsageError(t *testing.T) {
	code, out, errs := runScript(t, "print(\"started\")\nlocal m = symbol(\"modules\")\nwalk_list(m, \"module\", \"list\", print)\n")
	if code != exitUsage || out != "" {
		t.Errorf("exit %d, stdout %q; want %d and nothing run", code, out, exitUsage)
	}
	if !strings.Contains(errs, "calls symbol (line 2), walk_list (line 3), which need a target: "+giveTarget) {
		t.Errorf("stderr %q", errs)
	}
	// Scripts that need no target run: pure Lua, help, addresses, sleep,
	// and a script that defines a function of the same name itself.
	for _, src := range []string{
		`print(1 + 1)`,
		`help("read_u32")`,
		`print(addr(1) + 1) sleep(0)`,
		`function symbol(n) return n end print(symbol("mine"))`,
	} {
		code, out, errs := runScript(t, src)
		if code != exitOK || out == "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", src, code, out, errs)
		}
	}
}

// A failed require at the top level says where it looked, on the one line
// the CLI shows.
func TestRequireFailureSaysWhere(t *testing.T) {
	code, _, errs := runScript(t, `require("no.such.lib")`)
	if code != exitScript || strings.Count(errs, "\n") != 1 {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	for _, want := range []string{"module no.such.lib not found: looked for no/such/lib.lua and no/such/lib/init.lua in ", "the built-in scripts/lib"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr %q lacks %q", errs, want)
		}
	}
}

// has_member and offsetof agree on a bitfield of the real guest's kernel
// (its own BTF): the member exists, and it has no byte offset.
func TestBitfieldMember(t *testing.T) {
	code, out, errs := runScript(t, `
print(has_member("task_struct", "in_execve"), has_member("task_struct", "comm"), has_member("task_struct", "no_such"))
print(pcall(offsetof, "task_struct", "in_execve"))
`, "--file", imagePath(t, "mem.elf.zst"), "--cache-dir", t.TempDir(), "--quiet")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(out, "\n")
	if lines[0] != "true\ttrue\tfalse" {
		t.Errorf("has_member: %q", lines[0])
	}
	if !strings.HasPrefix(lines[1], "false\t") || !strings.Contains(lines[1], "task_struct.in_execve is a 1-bit bitfield at bit ") {
		t.Errorf("offsetof of a bitfield: %q", lines[1])
	}
}
