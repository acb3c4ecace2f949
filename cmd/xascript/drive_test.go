package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xascript/xascript/internal/socktest"
)

// --drive is checked before anything is opened; a live QEMU is
// integration/bitmape2e's job (make e2e-qemu).
func TestDriveUsage(t *testing.T) {
	script := filepath.Join(t.TempDir(), "s.lua")
	if err := os.WriteFile(script, []byte("print('ran')\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{script, "--drive", "data"},
		{script, "--drive", "data", "--qemu", "q.sock", "--disk", "d.img"},
		{script, "--drive", "data", "--qemu", "q.sock", "--nbd", "n.sock"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(args, &stdout, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), "--drive NODE needs --qemu") || stdout.Len() != 0 {
			t.Errorf("%q: status %d, stdout %q, stderr %q", args, code, stdout.String(), stderr.String())
		}
	}
}

// A drive QEMU does not have fails with one line naming what it has, and
// the script does not run.
func TestDriveUnknown(t *testing.T) {
	script := filepath.Join(t.TempDir(), "s.lua")
	if err := os.WriteFile(script, []byte("print('ran')\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	q := &socktest.QMP{Handle: func(cmd string, args map[string]any) (string, bool) {
		switch cmd {
		case "query-block":
			return `[{"device": "data", "qdev": "", "inserted": {"node-name": "#block1", "image": {"virtual-size": 1048576}}}]`, true
		case "query-named-block-nodes":
			return `[{"node-name": "#block1", "image": {"virtual-size": 1048576}}]`, true
		}
		return "", false
	}}
	sock := q.Serve(t)
	var stdout, stderr bytes.Buffer
	code := run([]string{script, "--qemu", sock, "--drive", "disk9"}, &stdout, &stderr)
	if code != exitTarget || stdout.Len() != 0 || !strings.Contains(stderr.String(), `no drive or node named "disk9"`) ||
		!strings.Contains(stderr.String(), "data") || strings.Count(stderr.String(), "\n") != 1 {
		t.Errorf("status %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}
