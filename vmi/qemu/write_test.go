package qemu

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/xascript/xascript/vmi"
)

// fileMappings returns the permissions ("r--s", "rw-s") of this process's
// mappings of path (proc(5), parsed by qemu.ParseMaps).
func fileMappings(t *testing.T, path string) []string {
	t.Helper()
	text, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	maps, err := ParseMaps(string(text))
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

func writeFake(t *testing.T) (*fakeQEMU, []byte, string) {
	anon, file := fakeGuest(t)
	f := &fakeQEMU{
		memdevs: `[{"id": "mem", "share": true, "size": 8192}, {"id": "pc.ram", "share": false, "size": 12288}]`,
		file:    file,
		mtree:   fakeMtree,
		hva:     map[string]uintptr{"pc.ram": addrOf(anon)},
	}
	f.start(t)
	return f, anon, file
}

// A write lands where reads come from: across process memory (pc.ram,
// through process_vm_writev) and the shared file (mem, through the
// writable mapping) in one call; the file on disk, QEMU's memory, reads
// and a page handed out before the write all see it.
func TestWritePhys(t *testing.T) {
	f, anon, file := writeFake(t)
	tg, err := Open(f.sock, Options{Timeout: 5 * time.Second, Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	if got := fileMappings(t, file); len(got) != 1 || got[0] != "rw-s" {
		t.Errorf("RAM file mapped %v, want rw-s", got)
	}
	page := tg.PhysPage(0x2000) // paused from the start
	if page == nil {
		t.Fatal("no host page while paused")
	}
	gen := tg.Generation().Load()
	data := []byte("process|file")
	if err := tg.WritePhys(data, 0x2000-8); err != nil {
		t.Fatal(err)
	}
	if tg.Generation().Load() == gen {
		t.Error("a write did not move the generation")
	}
	if got := anon[0x2000-8 : 0x2000]; string(got) != "process|" {
		t.Errorf("QEMU's memory holds %q", got)
	}
	if disk, _ := os.ReadFile(file); string(disk[:4]) != "file" || disk[4] != 0xf0 {
		t.Errorf("the RAM file holds % x", disk[:8])
	}
	if string(page[:4]) != "file" {
		t.Errorf("a page handed out before the write holds %q", page[:4])
	}
	got := make([]byte, len(data))
	if err := tg.ReadPhys(got, 0x2000-8); err != nil || !bytes.Equal(got, data) {
		t.Errorf("read after write: %q, %v", got, err)
	}
	// Above 4 GiB, process memory again.
	if err := tg.WritePhys([]byte{0x42}, 0x100000000); err != nil || anon[0x2000] != 0x42 {
		t.Errorf("write above 4 GiB: %v, memory holds %#x", err, anon[0x2000])
	}
	// Into the hole after mem: nothing is stored, not even the part
	// before the hole.
	if err := tg.WritePhys([]byte("12345678"), 0x4000-4); !errors.Is(err, vmi.ErrNotPresent) {
		t.Errorf("write into the hole: %v", err)
	}
	if disk, _ := os.ReadFile(file); disk[0x2000-1] != 0xf1 {
		t.Error("a write that reached a hole stored bytes")
	}
}

// Without Writable the RAM file is opened and mapped read-only, and every
// write fails with ErrReadOnly, storing nothing.
func TestWritePhysReadOnlyByDefault(t *testing.T) {
	f, anon, file := writeFake(t)
	tg, err := Open(f.sock, Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	if got := fileMappings(t, file); len(got) != 1 || got[0] != "r--s" {
		t.Errorf("RAM file mapped %v, want r--s", got)
	}
	for _, pa := range []uint64{0, 0x2000} {
		if err := tg.WritePhys([]byte{1}, pa); !errors.Is(err, vmi.ErrReadOnly) || !strings.Contains(err.Error(), "opened read-only") {
			t.Errorf("WritePhys(%#x): %v, want read-only", pa, err)
		}
	}
	if disk, _ := os.ReadFile(file); disk[0] != 0xf0 || anon[0] != 0xa0 {
		t.Error("a refused write changed the guest")
	}
}
