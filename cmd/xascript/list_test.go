package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xascript/xascript/internal/socktest"
	"github.com/xascript/xascript/vmi/xen"
)

// list shows Xen's domains and the QEMU guests behind the QMP sockets of
// each --qemu-dir: a live one with its name, status and pid, and a socket
// that QEMU left behind with the reason it cannot be probed.
func TestListCommand(t *testing.T) {
	savedList, savedHost := listXen, xenHost
	defer func() { listXen, xenHost = savedList, savedHost }()
	xenHost = func() bool { return true }
	listXen = func() ([]xen.Domain, error) {
		return []xen.Domain{
			{ID: 0, Name: "Domain-0", Type: "PV", MemoryMiB: 512, VCPUs: 1, State: "r-----"},
			{ID: 3, Name: "xa-pvh", Type: "PVH", MemoryMiB: 127, VCPUs: 1, State: "-b----"},
		}, nil
	}
	live := &socktest.QMP{Handle: func(cmd string, args map[string]any) (string, bool) {
		if cmd == "query-name" {
			return `{"name": "web1"}`, true
		}
		return "", false
	}}
	liveSock := live.Serve(t)
	staleDir := t.TempDir()
	stale := filepath.Join(staleDir, "sub", "old.qmp")
	os.Mkdir(filepath.Dir(stale), 0o755)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	os.WriteFile(filepath.Join(staleDir, "notes.txt"), []byte("not a socket"), 0o644)

	var stdout, stderr strings.Builder
	code := run([]string{"list", "--json", "--qemu-dir", filepath.Dir(liveSock), "--qemu-dir", staleDir}, &stdout, &stderr)
	if code != exitOK || stderr.Len() > 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	var got []map[string]any
	for _, line := range strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("line %q is not one JSON object: %v", line, err)
		}
		got = append(got, e)
	}
	if len(got) != 4 {
		t.Fatalf("%d entries, want 2 domains and 2 sockets:\n%s", len(got), stdout.String())
	}
	if got[0]["id"] != 0.0 || got[0]["name"] != "Domain-0" {
		t.Errorf("dom0 entry %v", got[0])
	}
	if got[1]["kind"] != "xen" || got[1]["name"] != "xa-pvh" || got[1]["type"] != "PVH" || got[1]["id"] != 3.0 || got[1]["memory_mib"] != 127.0 || got[1]["vcpus"] != 1.0 || got[1]["state"] != "-b----" {
		t.Errorf("domain entry %v", got[1])
	}
	if q := got[2]; q["kind"] != "qemu" || q["socket"] != liveSock || q["name"] != "web1" || q["state"] != "running" || q["pid"] != float64(os.Getpid()) || q["error"] != nil || q["id"] != nil {
		t.Errorf("live QEMU entry %v", q)
	}
	if q := got[3]; q["socket"] != stale || !strings.Contains(q["error"].(string), "connection refused") || q["state"] != nil {
		t.Errorf("stale socket entry %v", q)
	}

	// The table: one row per guest with the flag that targets it.
	stdout.Reset()
	if code := run([]string{"list", "--qemu-dir", staleDir}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	rows := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	if len(rows) != 4 || !strings.HasPrefix(rows[0], "KIND") || strings.Join(strings.Fields(rows[2]), " ") != "xen 3 xa-pvh PVH 127 1 -b---- --dom xa-pvh" ||
		!strings.HasPrefix(strings.Join(strings.Fields(rows[3]), " "), "qemu - - - - - ? qmp ") || !strings.HasSuffix(rows[3], "--qemu "+stale) {
		t.Errorf("table:\n%s", stdout.String())
	}

	// No Xen, no sockets: an empty list, not an error; a missing folder is
	// a usage error.
	xenHost = func() bool { return false }
	stdout.Reset()
	if code := run([]string{"list", "--json", "--qemu-dir", t.TempDir()}, &stdout, &stderr); code != exitOK || stdout.String() != "" {
		t.Errorf("empty: %d %q", code, stdout.String())
	}
	if code := run([]string{"list", "--qemu-dir", filepath.Join(staleDir, "nope")}, &stdout, &stderr); code != exitUsage {
		t.Errorf("missing --qemu-dir: exit %d", code)
	}
}
