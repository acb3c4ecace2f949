package xene2e

import (
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
)

// diskSerial is a serial log as dom0-disk.sh prints it, with Xen's lines and
// \r\n line ends in the middle, carrying img.
func diskSerial(img []byte, sum string) string {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(img)
	zw.Close()
	b64 := base64.StdEncoding.EncodeToString(gz.Bytes())
	var lines []string
	for len(b64) > 76 {
		lines = append(lines, b64[:76])
		b64 = b64[76:]
	}
	lines = append(lines, b64)
	s := []string{
		"@@XA-BEGIN-DISKCONSOLE@@", "booting", "@@XA-BEGIN-VERSION@@", "Linux version 6.1.0-9-cloud-amd64 (debian-kernel)",
		"@@XA-END-VERSION@@", "@@XA-BEGIN-MODULES@@", "xen_blkfront 57344 0 - Live 0xffffffffc0000000", "@@XA-END-MODULES@@",
		"@@XA-BEGIN-DISKOPS@@", "MKDIR: /root/foo", "MKFILE: /root/dummy",
		"RMFILE: /root/bar", "@@XA-END-DISKOPS@@", "@@XA-DISK-DONE ok@@", "@@XA-END-DISKCONSOLE@@",
		"@@XA-BEGIN-CMD xa-disk nbdwatch@@", "@@XA-ARGV xascript diskwatch.lua --nbd-device /dev/nbd0@@",
		"MEMORY: banner Linux version 6.1.0-9-cloud-amd64 (debian-kernel)",
		"MKDIR: /root/foo", "(XEN) d3v0 a hypervisor line", "MEMORY: modules at MKDIR /root/foo: xen_blkfront",
		"MKFILE: /root/dummy", "RMFILE: /root/bar",
		"@@XA-STDERR@@", "xascript: serving",
		"xascript: waiting up to 3m0s for domain xa-disk to run (serving /tmp/disk.img meanwhile): domain \"xa-disk\": no such domain (domains: Domain-0)",
		"xascript: domain xa-disk runs: kernel found after 14.2s", "@@XA-END-CMD xa-disk nbdwatch rc=143@@",
		"@@XA-BENCH-FAIL no loop device in dom0@@",
		"@@XA-BEGIN-DISKIMG-MD5@@", sum + "  -", "@@XA-END-DISKIMG-MD5@@", "@@XA-BEGIN-DISKIMG@@",
	}
	s = append(s, lines[:1]...)
	s = append(s, "(XEN) another")
	s = append(s, lines[1:]...)
	s = append(s, "@@XA-END-DISKIMG@@")
	return strings.Join(s, "\r\n") + "\r\n"
}

func TestDiskSections(t *testing.T) {
	img := bytes.Repeat([]byte("ext4 image "), 10000)
	h := md5.Sum(img)
	serial := diskSerial(img, hex.EncodeToString(h[:]))
	l := Parse(serial)
	ops, ok := DiskOps(l)
	if !ok || strings.Join(ops, "|") != "MKDIR: /root/foo|MKFILE: /root/dummy|RMFILE: /root/bar" {
		t.Fatalf("DiskOps %q %v", ops, ok)
	}
	c := l.CommandsFor(DiskDomU)
	if len(c) != 1 || c[0].Label != "nbdwatch" {
		t.Fatalf("commands %+v", c)
	}
	if _, err := CheckEvents(c[0], ops, 143, false); err == nil {
		t.Error("memory lines passed for disk events")
	}
	mem, disk := SplitMemory(c[0])
	if len(mem) != 2 || len(disk.Stdout) != 3 {
		t.Fatalf("SplitMemory: %q and %q", mem, disk.Stdout)
	}
	console := l.Sections["DISKCONSOLE"]
	if err := CheckMemory(disk, mem, console, ops[0]); err != nil {
		t.Error(err)
	}
	// What must fail: another banner, a module list that is not the
	// domU's, no wait for a domain that did not exist yet.
	otherBanner := append([]string{"MEMORY: banner Linux version 6.1.0-10-cloud-amd64 (debian-kernel)"}, mem[1:]...)
	if err := CheckMemory(disk, otherBanner, console, ops[0]); err == nil {
		t.Error("a banner the domU did not print passed")
	}
	if err := CheckMemory(disk, []string{mem[0], "MEMORY: modules at MKDIR /root/foo: xen_blkfront loop"}, console, ops[0]); err == nil {
		t.Error("a module the domU did not load passed")
	}
	noWait := *disk
	noWait.Stderr = []string{"xascript: serving", "xascript: domain xa-disk runs: kernel found after 14.2s"}
	if err := CheckMemory(&noWait, mem, console, ops[0]); err == nil {
		t.Error("a monitor that never waited for the domain passed")
	}
	if _, err := CheckEvents(disk, ops, 143, false); err != nil {
		t.Error(err)
	}
	if _, err := CheckEvents(disk, ops, 0, false); err == nil {
		t.Error("a wrong exit status passed")
	}
	if _, err := CheckEvents(disk, ops[:2], 143, false); err == nil {
		t.Error("an extra event passed")
	}
	// ERROR lines: set aside only where allowed.
	withErr := *disk
	withErr.Stdout = append([]string{"ERROR: /root: refresh: torn"}, disk.Stdout...)
	if _, err := CheckEvents(&withErr, ops, 143, false); err == nil {
		t.Error("an ERROR line passed where none is allowed")
	}
	if errs, err := CheckEvents(&withErr, ops, 143, true); err != nil || len(errs) != 1 {
		t.Errorf("ERROR line allowed: %q, %v", errs, err)
	}
	got, err := DiskImage(l)
	if err != nil || !bytes.Equal(got, img) {
		t.Fatalf("DiskImage: %d bytes, %v", len(got), err)
	}
	if f := DiskFails(serial, "BENCH"); len(f) != 1 || f[0] != "no loop device in dom0" {
		t.Errorf("bench fails %q", f)
	}
	if f := DiskFails(serial, "DISK"); len(f) != 0 {
		t.Errorf("disk fails %q", f)
	}
	// A copy that lost a character on the console is caught by the md5sum.
	bad := Parse(diskSerial(img, strings.Repeat("0", 32)))
	if _, err := DiskImage(bad); err == nil || !strings.Contains(err.Error(), "md5") {
		t.Errorf("a mismatching md5sum: %v", err)
	}
}
