//go:build guests

package bitmape2e

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLiveQEMUDiskBitmap: see doc.go.
func TestLiveQEMUDiskBitmap(t *testing.T) {
	e := setup(t)
	for _, fs := range []string{"ext4", "ext2"} {
		t.Run(fs, func(t *testing.T) { runBitmap(t, e, fs) })
	}
}

// sequence runs one mkdir/touch/rm/sync in the guest's /root and returns
// when its sync returned (the command's end reached the host).
func sequence(t *testing.T, g *diskGuest, dir, file, gone string) time.Time {
	t.Helper()
	line := "cd /mnt/root && mkdir " + dir + " && touch " + file + " && rm " + gone + " && sync"
	if out, err := g.Run(line, 120*time.Second); err != nil {
		t.Fatalf("guest: %v: %s", err, out)
	}
	return time.Now()
}

func runBitmap(t *testing.T, e env, fs string) {
	const interval = time.Second
	g := bootDisk(t, e, fs)
	before := g.state(t)
	if leftoverName.MatchString(before) {
		t.Fatalf("QEMU holds xascript objects before any xascript ran:\n%s", before)
	}

	// 1: the paper's sequence, xascript attached to a guest that runs.
	w1 := attach(t, e, g, interval.String(), "xa1")
	synced := sequence(t, g, "foo", "dummy", "bar")
	got, at := w1.waitLines(t, 3, interval+30*time.Second)
	want := []string{"MKDIR: /root/foo", "MKFILE: /root/dummy", "RMFILE: /root/bar"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events %q, want the paper's %q", got, want)
	}
	t.Logf("%s: first event %v after the guest's sync returned (interval %v)", fs, at[0].Sub(synced).Round(time.Millisecond), interval)

	// 2: SIGKILL leaves its bitmaps and exports in QEMU.
	w1.cmd.Process.Kill()
	<-w1.done
	killed := g.state(t)
	if !leftoverName.MatchString(killed) {
		t.Fatalf("after SIGKILL QEMU holds no xascript bitmap or export, so the cleanup is not tested:\n%s", killed)
	}

	// 3: a new run removes them and works.
	w2 := attach(t, e, g, interval.String(), "xa2")
	errText, _ := os.ReadFile(w2.stderr)
	if !strings.Contains(string(errText), "left by a dead xascript") {
		t.Errorf("second run did not report removing the leftovers; stderr:\n%s", errText)
	}
	synced = sequence(t, g, "foo3", "dummy3", "keep")
	got, at = w2.waitLines(t, 3, interval+30*time.Second)
	want = []string{"MKDIR: /root/foo3", "MKFILE: /root/dummy3", "RMFILE: /root/keep"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("after the restart: events %q, want %q", got, want)
	}
	t.Logf("%s: after restart, first event %v after the guest's sync returned", fs, at[0].Sub(synced).Round(time.Millisecond))

	// 4: SIGTERM: a clean exit that leaves QEMU as it was.
	w2.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w2.done:
	case <-time.After(30 * time.Second):
		t.Fatal("xascript still running 30s after SIGTERM")
	}
	var ee *exec.ExitError
	if !errors.As(w2.err, &ee) || ee.ExitCode() != 143 {
		errText, _ := os.ReadFile(w2.stderr)
		t.Errorf("xascript after SIGTERM: %v, want exit status 143; stderr:\n%s", w2.err, errText)
	}
	if after := g.state(t); after != before {
		t.Errorf("QEMU's block state changed:\nbefore: %s\nafter:  %s", before, after)
	}
	if out, _ := os.ReadFile(w2.stdout); len(completeLines(string(out))) != 3 {
		t.Errorf("extra output after the events: %q", out)
	}
}
