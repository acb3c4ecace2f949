//go:build guests

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xascript/xascript/internal/liveguest"
	"github.com/xascript/xascript/vmi/linux"
	"github.com/xascript/xascript/vmi/qemu"
)

// TestGuestLiveQEMU: lkm.lua on a running QEMU guest (RAM in a shared
// memory-backend-file, read through QMP and the mapped file), with no
// profile flags, prints the modules the guest listed on its console.
func TestGuestLiveQEMU(t *testing.T) {
	g := liveguest.Start(t, "../testdata/live-guest.sh")
	serial, err := g.Serial()
	if err != nil {
		t.Fatal(err)
	}
	want := consoleModules(t, string(serial))

	target, err := qemu.Open(g.Socket, qemu.Options{Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	// Hold the guest still while the kernel is located and the list walked.
	if err := target.Pause(); err != nil {
		t.Fatal(err)
	}
	k, err := linux.Open(target, linux.Options{})
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
	if strings.Join(strings.Fields(got), ",") != strings.Join(want, ",") {
		t.Fatalf("lkm.lua on the live guest printed %v; its console listed %v", strings.Fields(got), want)
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

// consoleModules parses the /proc/modules the guest printed between
// markers: the first word of each line, in order.
func consoleModules(t *testing.T, serial string) []string {
	t.Helper()
	_, rest, ok := strings.Cut(serial, "@@XA-BEGIN-MODULES@@")
	body, _, ok2 := strings.Cut(rest, "@@XA-END-MODULES@@")
	if !ok || !ok2 {
		t.Fatalf("no module list on the console:\n%s", serial)
	}
	var mods []string
	for _, line := range strings.Split(body, "\n") {
		if f := strings.Fields(strings.TrimSpace(line)); len(f) > 0 {
			mods = append(mods, f[0])
		}
	}
	if len(mods) < 5 {
		t.Fatalf("only %d modules on the console", len(mods))
	}
	return mods
}
