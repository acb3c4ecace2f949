package xene2e

import (
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// The disk test (testdata/xen/dom0-disk.sh): a PV domU whose xvda is dom0's
// /dev/nbd0, served by xascript, runs the paper's sequence; one xascript
// serves the disk and watches /root, a second one follows the tapfifo
// records the first wrote. Its commands are reported for DiskDomU.
const DiskDomU = "xa-disk"

// DiskFails are the @@XA-DISK-FAIL@@ (fatal) or @@XA-BENCH-FAIL@@ reasons
// of a serial log (dom0-disk.sh).
func DiskFails(serial, kind string) []string {
	var out []string
	mark := "@@XA-" + kind + "-FAIL "
	for _, line := range strings.Split(serial, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.HasPrefix(line, mark) && strings.HasSuffix(line, "@@") {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(line, mark), "@@"))
		}
	}
	return out
}

// DiskOps is what the disk domU says it did, in the monitor's words (its
// @@XA-BEGIN-DISKOPS@@ section, inside dom0's DISKCONSOLE section), and
// whether the section was complete.
func DiskOps(l *Log) ([]string, bool) {
	con, ok := l.Sections["DISKCONSOLE"]
	if !ok {
		return nil, false
	}
	d := &DomU{Console: con}
	ops, ok := d.Section("DISKOPS")
	var out []string
	for _, l := range ops {
		if l != "" {
			out = append(out, l)
		}
	}
	return out, ok
}

// CheckEvents compares a monitor's output with the domU's own list. With
// errorsOK, ERROR lines (diskwatch.lua's form of an ERROR event) are set
// aside and returned instead of failing the check: a monitor that follows
// tapfifo records reads the image while the serving process is writing it,
// and a block read while it is being rewritten (the journal superblock at
// the guest's umount, seen) fails its checksum, which the tracker reports
// as an ERROR event and then reads again at the next change. Every other
// line must be exactly the domU's list.
func CheckEvents(c *Command, want []string, wantRC int, errorsOK bool) ([]string, error) {
	what := fmt.Sprintf("%q (domU %s)", c.Argv, c.DomU)
	if !c.Done {
		return nil, fmt.Errorf("%s: output cut off (no @@XA-END-CMD@@)", what)
	}
	var got, errs []string
	for _, l := range trimEmpty(c.Stdout) {
		if l == "" {
			continue // the console doubles some line ends
		}
		if errorsOK && strings.HasPrefix(l, "ERROR: ") {
			errs = append(errs, l)
			continue
		}
		got = append(got, l)
	}
	if c.RC != wantRC || strings.Join(got, "\n") != strings.Join(want, "\n") {
		return errs, fmt.Errorf("%s exited %d (want %d) and printed:\n  %s\nthe domU did:\n  %s\nstderr:\n%s",
			what, c.RC, wantRC, strings.Join(got, "\n  "), strings.Join(want, "\n  "), strings.Join(c.Stderr, "\n"))
	}
	return errs, nil
}

// DiskImage decodes the image dom0 dumped after the test (DISKIMG: gzip,
// base64) and checks it against the md5sum dom0 printed (DISKIMG-MD5): the
// console may drop characters, and a damaged copy must not pass for the
// image.
func DiskImage(l *Log) ([]byte, error) {
	lines, ok := l.Sections["DISKIMG"]
	if !ok {
		return nil, fmt.Errorf("no complete @@XA-BEGIN/END-DISKIMG@@ section")
	}
	sum, ok := l.Sections["DISKIMG-MD5"]
	if !ok || len(sum) == 0 || len(strings.Fields(sum[0])) == 0 {
		return nil, fmt.Errorf("no @@XA-BEGIN-DISKIMG-MD5@@ section")
	}
	gz, err := base64.StdEncoding.DecodeString(strings.Join(lines, ""))
	if err != nil {
		return nil, fmt.Errorf("the image's base64 (%d lines) is damaged: %w", len(lines), err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("the image's gzip stream: %w", err)
	}
	// Bounded: the image is 32 MiB.
	img, err := io.ReadAll(io.LimitReader(zr, 1<<30))
	if err != nil {
		return nil, fmt.Errorf("the image's gzip stream: %w", err)
	}
	h := md5.Sum(img)
	if got, want := hex.EncodeToString(h[:]), strings.Fields(sum[0])[0]; got != want {
		return nil, fmt.Errorf("the image that came through the console has md5 %s, dom0's has %s", got, want)
	}
	return img, nil
}

func trimEmpty(lines []string) []string {
	out := lines
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

// memoryPrefix starts the lines the serving monitor printed from the
// domain's memory (dom0-disk.sh's diskmem.lua), among its disk events.
const memoryPrefix = "MEMORY: "

// SplitMemory returns the serving monitor's memory lines and a copy of
// the command with only its disk events on stdout.
func SplitMemory(c *Command) ([]string, *Command) {
	disk := *c
	disk.Stdout = nil
	var mem []string
	for _, l := range c.Stdout {
		if strings.HasPrefix(l, memoryPrefix) {
			mem = append(mem, l)
		} else {
			disk.Stdout = append(disk.Stdout, l)
		}
	}
	return mem, &disk
}

// CheckMemory checks the memory side of the monitor that served the disk
// domU's disk (--dom xa-disk with --nbd-device, started before `xl
// create`, issue 11): on stderr, that it waited for a domain that did not
// exist yet and then found its kernel; on stdout (mem, from SplitMemory),
// the kernel's banner read from memory as the domU printed its
// /proc/version, and at the first disk event (firstOp, as the domU's list
// says it) the modules of its /proc/modules, in order.
func CheckMemory(c *Command, mem []string, console []string, firstOp string) error {
	waited, found := -1, -1
	for i, l := range c.Stderr {
		switch {
		case waited < 0 && strings.HasPrefix(l, "xascript: waiting up to ") && strings.Contains(l, " for domain "+DiskDomU+" to run ") &&
			strings.Contains(l, "no such domain"):
			waited = i
		case found < 0 && strings.HasPrefix(l, "xascript: domain "+DiskDomU+" runs: kernel found after "):
			found = i
		}
	}
	if waited < 0 || found < waited {
		return fmt.Errorf("%q: stderr does not say it waited for %s to be created, then found its kernel:\n%s",
			c.Argv, DiskDomU, strings.Join(c.Stderr, "\n"))
	}
	d := &DomU{Console: console}
	version, ok := d.Section("VERSION")
	if !ok || len(version) == 0 {
		return fmt.Errorf("the disk domU printed no VERSION section")
	}
	mods, ok := d.Modules()
	if !ok || len(mods) == 0 {
		return fmt.Errorf("the disk domU printed no MODULES section (or an empty one)")
	}
	want := []string{
		memoryPrefix + "banner " + strings.TrimSpace(strings.Join(version, "\n")),
		memoryPrefix + "modules at " + strings.Replace(firstOp, ": ", " ", 1) + ": " + strings.Join(mods, " "),
	}
	if strings.Join(mem, "\n") != strings.Join(want, "\n") {
		return fmt.Errorf("%q read from the domain's memory:\n  %s\nthe domU printed of itself:\n  %s",
			c.Argv, strings.Join(mem, "\n  "), strings.Join(want, "\n  "))
	}
	return nil
}
