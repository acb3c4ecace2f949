// Package liveguest starts the live test guest of testdata/live-guest.sh
// for tests: a Debian kernel under QEMU with RAM in a shared file and QMP on
// a socket. QEMU is stopped by its PID (never by name) and the RAM file
// removed when the test ends, also when it fails; a guest that does not come
// up fails the test within the timeout instead of hanging it.
package liveguest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Guest is a running live test guest.
type Guest struct {
	Dir     string // holds serial.log, qemu.pid, ...
	Socket  string // QMP socket
	MemPath string // the shared RAM file
	PID     int    // QEMU's
}

// Serial returns what the guest printed on its console so far.
func (g Guest) Serial() (string, error) {
	b, err := os.ReadFile(filepath.Join(g.Dir, "serial.log"))
	return string(b), err
}

// Start boots the guest with script (the path of testdata/live-guest.sh
// relative to the calling test's package).
func Start(t testing.TB, script string) Guest {
	t.Helper()
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Fatal("qemu-system-x86_64 not installed: make testdata-deps installs it")
	}
	dir := t.TempDir()
	name := fmt.Sprintf("test-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	t.Cleanup(func() {
		if out, err := exec.Command(script, "stop", dir).CombinedOutput(); err != nil {
			t.Logf("live-guest.sh stop: %v\n%s", err, out)
		}
		os.Remove("/dev/shm/xa-" + name)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, "start", dir, name)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("live-guest.sh start: %v\n%s", err, stderr.String())
	}
	f := strings.Fields(string(out))
	if len(f) != 4 || f[0] != "READY" {
		t.Fatalf("live-guest.sh start printed %q", out)
	}
	pid, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatalf("live-guest.sh start printed pid %q", f[1])
	}
	return Guest{Dir: dir, Socket: f[2], MemPath: f[3], PID: pid}
}
