//go:build xen

package xene2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// checkDisk checks the disk test of a run (testdata/xen/dom0-disk.sh): the
// monitor serving the domU's disk through /dev/nbd0 and the one following
// its tapfifo records printed exactly what the domU did (the paper's three
// lines), the device was free afterwards, and the image that came out is a
// clean ext4 holding the change. It logs the Figure 7 table.
func checkDisk(t *testing.T, l *Log, serial, out string) {
	if os.Getenv("XA_XEN_DISK") == "0" {
		t.Skip("XA_XEN_DISK=0: the harness left the disk test out")
	}
	for _, f := range DiskFails(serial, "DISK") {
		t.Errorf("dom0-disk.sh: %s", f)
	}
	ops, ok := DiskOps(l)
	if !ok {
		t.Fatalf("the disk domU printed no complete DISKOPS section; its console:\n%s", tail(l.Sections["DISKCONSOLE"], 30))
	}
	paper := []string{"MKDIR: /root/foo", "MKFILE: /root/dummy", "RMFILE: /root/bar"}
	if strings.Join(ops, "\n") != strings.Join(paper, "\n") {
		t.Errorf("the domU did %q, not the paper's sequence %q", ops, paper)
	}
	cmds := map[string]*Command{}
	for _, c := range l.CommandsFor(DiskDomU) {
		cmds[c.Label] = c
	}
	for _, want := range []struct {
		label    string
		rc       int  // 143: ended by dom0's SIGTERM, cleanly
		errorsOK bool // torn reads of a block being rewritten (CheckEvents)
	}{{"nbdwatch", 143, false}, {"tapwatch", 0, true}} {
		c := cmds[want.label]
		if c == nil {
			t.Errorf("dom0 reported no %s command", want.label)
			continue
		}
		if want.label == "nbdwatch" {
			// It reads the domain's memory too (--dom xa-disk, started
			// before the domain existed): those lines are checked apart.
			var mem []string
			mem, c = SplitMemory(c)
			if err := CheckMemory(c, mem, l.Sections["DISKCONSOLE"], ops[0]); err != nil {
				t.Error(err)
			} else {
				t.Logf("nbdwatch waited for %s, then read from its memory:\n%s", DiskDomU, strings.Join(mem, "\n"))
			}
		}
		errs, err := CheckEvents(c, ops, want.rc, want.errorsOK)
		if err != nil {
			t.Error(err)
		}
		for _, e := range errs {
			t.Logf("%s reported (a block read while the server rewrote it): %s", want.label, e)
		}
	}
	if c := cmds["nbd-free"]; c == nil || !c.Done || c.RC != 0 {
		t.Errorf("/dev/nbd0 still connected after xascript ended: %+v", c)
	}

	img, err := DiskImage(l)
	if err != nil {
		t.Fatalf("the image after the test: %v", err)
	}
	path := filepath.Join(out, "disk-after.img")
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("e2fsck", "-fn", path).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn %s: %v\n%s", path, err, b)
	}
	ls, err := exec.Command("debugfs", "-R", "ls /root", path).Output()
	if err != nil {
		t.Fatalf("debugfs ls /root: %v", err)
	}
	names := strings.Fields(string(ls))
	has := func(n string) bool {
		for _, f := range names {
			if f == n {
				return true
			}
		}
		return false
	}
	if !has("foo") || !has("dummy") || has("bar") {
		t.Errorf("/root of the image after the test: %q; want foo and dummy, no bar", names)
	}

	for _, f := range DiskFails(serial, "BENCH") {
		t.Logf("Figure 7 benchmark: %s", f)
	}
	if b, err := exec.Command("python3", "../../testdata/xen/fig7.py", filepath.Join(out, "serial.log")).CombinedOutput(); err != nil {
		t.Logf("Figure 7 (testdata/xen/fig7.py): %v\n%s", err, b)
	} else {
		t.Logf("Figure 7 in the domU, dom0's NBD device served by xascript vs a loop device:\n%s", b)
	}
}
