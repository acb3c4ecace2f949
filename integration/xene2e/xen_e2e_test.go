//go:build xen

package xene2e

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestXenE2E boots Xen with dom0 and the domUs (testdata/xen/xen-e2e.sh run),
// then checks every command dom0 ran (testdata/xen/dom0-tests.sh): exit
// status 0, and the lkm* ones print exactly the domU's /proc/modules names.
//
// XA_XEN_OUT names the directory for serial.log and the images of this run
// (default: a new directory under $TMPDIR, kept); XA_XASCRIPT a static
// binary to use instead of building one; XA_DOMUS, XA_XEN_TIMEOUT and the
// other knobs of xen-e2e.sh pass through.
func TestXenE2E(t *testing.T) {
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Fatal("qemu-system-x86_64 not installed: make testdata-deps installs it")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	out := os.Getenv("XA_XEN_OUT")
	if out == "" {
		if out, err = os.MkdirTemp("", "xa-xen-e2e-"); err != nil {
			t.Fatal(err)
		}
	} else if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	serialPath := filepath.Join(out, "serial.log")
	t.Logf("serial log: %s", serialPath)

	bin := os.Getenv("XA_XASCRIPT")
	if bin == "" {
		bin = filepath.Join(out, "xascript")
		build := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/xascript")
		build.Dir = root
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build ./cmd/xascript: %v\n%s", err, b)
		}
	}

	// The harness bounds QEMU itself (XA_XEN_TIMEOUT, default 600 s); this
	// bound adds fetching packages on a fresh machine on top of that.
	limit := 600 * time.Second
	if s, err := strconv.Atoi(os.Getenv("XA_XEN_TIMEOUT")); err == nil && s > 0 {
		limit = time.Duration(s) * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit+10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "testdata/xen/xen-e2e.sh"), "run", out)
	cmd.Env = append(os.Environ(), "XA_XASCRIPT="+bin)
	// SIGTERM, not SIGKILL: the harness then kills QEMU by its PID.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	var stderr bytes.Buffer
	cmd.Stdout = os.Stdout
	cmd.Stderr = io.MultiWriter(os.Stderr, &stderr)
	start := time.Now()
	harnessErr := cmd.Run()
	t.Logf("xen-e2e.sh ran %.0fs", time.Since(start).Seconds())
	if b, err := os.ReadFile(filepath.Join(out, "timings.txt")); err == nil {
		t.Logf("seconds after QEMU start:\n%s", b)
	}

	data, err := os.ReadFile(serialPath)
	if err != nil {
		t.Fatalf("xen-e2e.sh: %v; no serial log: %v", harnessErr, err)
	}
	l := Parse(string(data))
	switch {
	case !l.XenSeen:
		t.Fatalf("Xen did not boot (no banner in %s); harness: %v", serialPath, harnessErr)
	case len(l.Dom0Fail) > 0:
		t.Fatalf("dom0 could not start the Xen toolstack: %s (see %s)", strings.Join(l.Dom0Fail, "; "), serialPath)
	case len(l.Times) == 0:
		t.Fatalf("dom0 never reached its /init (see %s); harness: %v", serialPath, harnessErr)
	case !l.Dom0Done:
		// Go on: whatever did run is still worth checking.
		t.Errorf("dom0 did not finish its tests (no @@XA-DOM0-DONE@@ in %s); harness: %v", serialPath, harnessErr)
	case harnessErr != nil:
		t.Errorf("xen-e2e.sh: %v", harnessErr)
	}
	for _, name := range domUNames() {
		t.Run(name, func(t *testing.T) {
			want, err := CheckDomU(l, name)
			if err != nil {
				t.Fatal(err)
			}
			id := l.DomUs[name].ID
			t.Logf("domain id %s, modules %v", id, want)
			if r := l.DomUs[name].Retried; len(r) > 0 {
				t.Logf("its first boot failed (%s) and was retried", strings.Join(r, "; "))
			}
			cmds := l.CommandsFor(name)
			lkm := 0
			for _, c := range cmds {
				if strings.HasPrefix(c.Label, LKMPrefix) {
					lkm++
				}
				t.Run(c.Label, func(t *testing.T) {
					if err := CheckCommand(c, id, want); err != nil {
						t.Error(err)
					}
					// Figures (bench, info) and timings go to the test log:
					// measured inside dom0, reported, never asserted.
					if c.Label == "bench" || c.Label == "info" {
						t.Logf("%s (%ss in dom0):\n%s", c.Argv, c.Secs, strings.Join(c.Stdout, "\n"))
					} else if strings.HasPrefix(c.Label, LKMPrefix) {
						t.Logf("%ss in dom0", c.Secs)
					}
				})
			}
			if lkm == 0 {
				t.Errorf("dom0 ran no %s* command against %s (%d commands in all)", LKMPrefix, name, len(cmds))
			}
		})
	} // Several guests at once, by one xascript (multi.go).
	t.Run("multi", func(t *testing.T) {
		ran, errs := CheckMulti(l)
		t.Logf("ran %v", ran)
		for _, err := range errs {
			t.Error(err)
		}
	})
	t.Run(DiskDomU, func(t *testing.T) { checkDisk(t, l, string(data), out) })
}

// domUNames: the domUs the harness boots (XA_DOMUS is "name:type ...").
func domUNames() []string {
	spec := os.Getenv("XA_DOMUS")
	if spec == "" {
		spec = "xa-pv:pv xa-pvh:pvh"
	}
	var names []string
	for _, f := range strings.Fields(spec) {
		name, _, _ := strings.Cut(f, ":")
		names = append(names, name)
	}
	return names
}
