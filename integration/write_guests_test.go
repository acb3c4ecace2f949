//go:build guests

package integration

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xascript/xascript/internal/liveguest"
	"github.com/xascript/xascript/vmi/qemu"
)

// TestGuestLiveQEMUWrite tampers with a running guest through the binary,
// on a guest of each RAM kind (a shared RAM file written through a
// writable mapping; QEMU's process memory through process_vm_writev), and
// checks what the guest itself then shows: rename-module.lua renames a
// loaded module and the guest's /proc/modules lists the new name; a
// write_u32 to sysctl_overcommit_ratio is what the guest's
// /proc/sys/vm/overcommit_ratio reads. Without --allow-write both fail
// with the read-only message and the guest shows nothing changed; with the
// file RAM, the RAM file is mapped read-only unless writes are allowed.
func TestGuestLiveQEMUWrite(t *testing.T) {
	bin := xascriptBinary(t)
	for _, ram := range []liveguest.RAM{liveguest.FileRAM, liveguest.AnonRAM} {
		t.Run(string(ram), func(t *testing.T) { testLiveWrite(t, bin, ram) })
	}
}

const rename = "../scripts/examples/rename-module.lua"

func testLiveWrite(t *testing.T, bin string, ram liveguest.RAM) {
	g := liveguest.StartRAM(t, "../testdata/live-guest.sh", ram)
	mods, err := g.Modules()
	if err != nil {
		t.Fatal(err)
	}
	if len(mods) < 5 {
		t.Fatalf("the guest lists only %v", mods)
	}
	victim := mods[len(mods)/2]
	ratio := func() string {
		t.Helper()
		out, err := g.Run("cat /proc/sys/vm/overcommit_ratio", 60*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	ratio0 := ratio()
	sysctl := filepath.Join(t.TempDir(), "ratio.lua")
	os.WriteFile(sysctl, []byte(`
local a = assert(symbol("sysctl_overcommit_ratio"))
print(assert(write_u32(a, tonumber(arg[1]))), read_u32(a))
`), 0o644)

	t.Run("read-only by default", func(t *testing.T) {
		_, errOut, code := runStatus(t, bin, rename, "--qemu", g.Socket, "-q", "--", victim, "xa_renamed")
		if code != 1 || !strings.Contains(errOut, "write_bytes: guest memory is read-only; run with --allow-write") {
			t.Fatalf("rename without --allow-write: status %d, stderr %q", code, errOut)
		}
		_, errOut, code = runStatus(t, bin, sysctl, "--qemu", g.Socket, "-q", "--", "77")
		if code != 1 || !strings.Contains(errOut, "write_u32: guest memory is read-only; run with --allow-write") {
			t.Fatalf("write_u32 without --allow-write: status %d, stderr %q", code, errOut)
		}
		if now, err := g.Modules(); err != nil || !slices.Equal(now, mods) {
			t.Fatalf("after refused writes the guest lists %v (%v), before %v", now, err, mods)
		}
		if r := ratio(); r != ratio0 {
			t.Fatalf("overcommit_ratio %s after a refused write, was %s", r, ratio0)
		}
		if ram == liveguest.FileRAM {
			for writable, want := range map[bool]string{false: "r--s", true: "rw-s"} {
				tg, err := qemu.Open(g.Socket, qemu.Options{Timeout: 20 * time.Second, Writable: writable})
				if err != nil {
					t.Fatal(err)
				}
				perms := mappingPerms(t, g.MemPath)
				tg.Close()
				if len(perms) != 1 || perms[0] != want {
					t.Errorf("RAM file mapped %v with Writable %v, want %s", perms, writable, want)
				}
			}
		}
	})

	t.Run("rename a module", func(t *testing.T) {
		out, errOut, code := runStatus(t, bin, rename, "--qemu", g.Socket, "-q", "--allow-write", "--", victim, "xa_renamed")
		if code != 0 || !strings.Contains(out, "old="+victim+" new=xa_renamed") {
			t.Fatalf("rename: status %d, stdout %q, stderr %q", code, out, errOut)
		}
		want := slices.Clone(mods)
		want[len(mods)/2] = "xa_renamed"
		now, err := g.Modules()
		if err != nil || !slices.Equal(now, want) {
			t.Fatalf("after the rename the guest's /proc/modules lists %v (%v); want %v", now, err, want)
		}
		// And back: the guest shows its own name again.
		if _, errOut, code := runStatus(t, bin, rename, "--qemu", g.Socket, "-q", "--allow-write", "--", "xa_renamed", victim); code != 0 {
			t.Fatalf("rename back: status %d: %s", code, errOut)
		}
		if now, err := g.Modules(); err != nil || !slices.Equal(now, mods) {
			t.Fatalf("after renaming back the guest lists %v (%v); want %v", now, err, mods)
		}
	})

	t.Run("sysctl", func(t *testing.T) {
		out, errOut, code := runStatus(t, bin, sysctl, "--qemu", g.Socket, "-q", "--allow-write", "--", "77")
		if code != 0 || strings.TrimSpace(out) != "true\t77" {
			t.Fatalf("write_u32: status %d, stdout %q, stderr %q", code, out, errOut)
		}
		if r := ratio(); r != "77" {
			t.Fatalf("the guest's /proc/sys/vm/overcommit_ratio reads %s after writing 77", r)
		}
		runStatus(t, bin, sysctl, "--qemu", g.Socket, "-q", "--allow-write", "--", ratio0)
		if r := ratio(); r != ratio0 {
			t.Errorf("overcommit_ratio %s after restoring %s", r, ratio0)
		}
	})
}

// runStatus runs xascript with the test's cache folder and returns its
// output and exit status.
func runStatus(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	return runStatusEnv(t, cacheEnv(t), bin, args...)
}

// mappingPerms returns the permissions ("r--s", "rw-s") of this process's
// mappings of path (proc(5), parsed by qemu.ParseMaps).
func mappingPerms(t *testing.T, path string) []string {
	t.Helper()
	text, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	maps, err := qemu.ParseMaps(string(text))
	if err != nil {
		t.Fatal(err)
	}
	var perms []string
	for _, m := range maps {
		if m.Path == path {
			perms = append(perms, m.Perms)
		}
	}
	return perms
}
