//go:build guests

package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

	out := runBinary(t, bin, lkm, "--qemu", a.Socket, "--qemu", b.Socket)
	got := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		tag, mod, ok := strings.Cut(l, " ")
		if !ok || !strings.HasPrefix(tag, "[") || !strings.HasSuffix(tag, "]") || strings.ContainsAny(mod, " \t") {
			t.Fatalf("line %q is not one tagged module name:\n%s", l, out)
		}
		name := strings.Trim(tag, "[]")
		got[name] = append(got[name], mod)
	}
	if len(got) != 2 {
		t.Errorf("output tagged with %d names, want the 2 guests' %v:\n%s", len(got), names, out)
	}
	for name, mods := range truth {
		if strings.Join(got[name], ",") != strings.Join(mods, ",") {
			t.Errorf("guest %s: xascript printed %v; its /proc/modules lists %v", name, got[name], mods)
		}
	}

	var list []struct {
		Kind   string `json:"kind"`
		Socket string `json:"socket"`
		QEMU   struct {
			Name   string `json:"name"`
			Status string `json:"status"`
			PID    int    `json:"pid"`
			Error  string `json:"error"`
		} `json:"qemu"`
	}
	raw := runBinary(t, bin, "list", "--json", "--qemu-dir", filepath.Dir(a.Dir), "--qemu-dir", filepath.Dir(b.Dir))
	if err := json.Unmarshal([]byte(raw), &list); err != nil {
		t.Fatalf("list --json: %v\n%s", err, raw)
	}
	for _, g := range []*liveguest.Guest{a, b} {
		found := false
		for _, e := range list {
			if e.Socket != g.Socket {
				continue
			}
			found = true
			if e.Kind != "qemu" || e.QEMU.Name != names[g.Socket] || e.QEMU.Status != "running" || e.QEMU.PID != g.PID || e.QEMU.Error != "" {
				t.Errorf("list: %s: %+v; want qemu %s running, pid %d", g.Socket, e, names[g.Socket], g.PID)
			}
		}
		if !found {
			t.Errorf("list does not show %s:\n%s", g.Socket, raw)
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
