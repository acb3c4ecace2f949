package dump

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/internal/unpack/unpacktest"
	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/qemu"
)

// writeFile puts data in a new file and returns its path.
func writeDumpFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
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

func TestWriteRaw(t *testing.T) {
	plain := pattern(0, 0x3000, testSeed)
	path := writeDumpFile(t, "mem.raw", plain)
	tg, err := Open(path, Options{unpack.Options{Writable: true, NoCache: true}})
	if err != nil {
		t.Fatal(err)
	}
	d := tg.(*Dump)
	if err := d.Writable(); err != nil {
		t.Fatalf("Writable: %v", err)
	}
	if got := mappingPerms(t, path); len(got) != 1 || got[0] != "rw-s" {
		t.Errorf("writable dump mapped %v, want one shared writable mapping", got)
	}
	// A page handed out before the write (a cached read) must see it.
	page := d.PhysPage(0x1000)
	gen := d.Generation().Load()
	data := []byte("written across a page boundary")
	pa := uint64(0x2000 - 7)
	if err := d.WritePhys(data, pa); err != nil {
		t.Fatal(err)
	}
	if d.Generation().Load() == gen {
		t.Error("a write did not move the generation")
	}
	got := make([]byte, len(data))
	if err := d.ReadPhys(got, pa); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read after write: %q, %v; want %q", got, err, data)
	}
	if !bytes.Equal(page[0x1000-7:], data[:7]) {
		t.Errorf("page handed out before the write holds %q, want %q", page[0x1000-7:], data[:7])
	}
	// A write that runs into the end of memory stores nothing.
	before := make([]byte, 16)
	d.ReadPhys(before, 0x3000-16)
	err = d.WritePhys(bytes.Repeat([]byte{0xAA}, 32), 0x3000-16)
	var pe *vmi.PhysError
	if !errors.Is(err, vmi.ErrNotPresent) || !errors.As(err, &pe) || pe.Addr != 0x3000 {
		t.Errorf("write past the end: %v, want not present at 0x3000", err)
	}
	after := make([]byte, 16)
	d.ReadPhys(after, 0x3000-16)
	if !bytes.Equal(before, after) {
		t.Error("a write that failed changed memory")
	}
	if err := tg.Close(); err != nil {
		t.Fatal(err)
	}
	// The file holds the write, and nothing else changed.
	want := append([]byte(nil), plain...)
	copy(want[pa:], data)
	if file, _ := os.ReadFile(path); !bytes.Equal(file, want) {
		t.Error("the dump file does not hold exactly the write")
	}
	if err := d.WritePhys(data, 0); !errors.Is(err, errClosed) {
		t.Errorf("write after Close: %v", err)
	}
}

// TestReadOnlyByDefault: without Writable the file is opened and mapped
// read-only, every write fails with ErrReadOnly, and the file's bytes stay
// as they were.
func TestReadOnlyByDefault(t *testing.T) {
	plain := pattern(0, 0x3000, testSeed)
	path := writeDumpFile(t, "mem.raw", plain)
	sum := sha256.Sum256(plain)
	tg, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := tg.(*Dump)
	if got := mappingPerms(t, path); len(got) != 1 || got[0] != "r--s" {
		t.Errorf("read-only dump mapped %v, want one shared read-only mapping", got)
	}
	if err := d.Writable(); !errors.Is(err, vmi.ErrReadOnly) {
		t.Errorf("Writable: %v, want read-only", err)
	}
	if err := d.WritePhys([]byte{1, 2, 3}, 0x100); !errors.Is(err, vmi.ErrReadOnly) || !strings.Contains(err.Error(), "opened read-only") {
		t.Errorf("write: %v, want read-only", err)
	}
	tg.Close()
	file, _ := os.ReadFile(path)
	if sha256.Sum256(file) != sum {
		t.Error("a read-only dump's file changed")
	}
}

// TestWriteCompressedRefused: a compressed dump is read from a copy, so
// even with Writable it says it cannot be written, and why.
func TestWriteCompressedRefused(t *testing.T) {
	plain := pattern(0, 0x2000, testSeed)
	path := writeDumpFile(t, "mem.raw.zst", unpacktest.Compress(t, "zstd", plain))
	tg, err := Open(path, Options{unpack.Options{Writable: true, CacheDir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	err = tg.(vmi.Writer).WritePhys([]byte{1}, 0)
	if !errors.Is(err, vmi.ErrReadOnly) || !strings.Contains(err.Error(), "this target cannot be written") || !strings.Contains(err.Error(), "zstd -d") {
		t.Errorf("write to a compressed dump: %v", err)
	}
	got := make([]byte, 1)
	if tg.ReadPhys(got, 0); got[0] != plain[0] {
		t.Error("a refused write changed the copy")
	}
}

// TestWriteELFTail: in an ELF core, bytes the file holds are written in
// place (at the segment's file offset); the zero-filled tail of a segment
// is not in the file and refuses, storing nothing.
func TestWriteELFTail(t *testing.T) {
	path := writeDumpFile(t, "mem.elf", qemuELF64())
	tg, err := Open(path, Options{unpack.Options{Writable: true}})
	if err != nil {
		t.Fatal(err)
	}
	w := tg.(vmi.Writer)
	// Across the two adjacent blocks at 0x3000.
	if err := w.WritePhys([]byte("ABCDEFGH"), 0x3000-4); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 8)
	if err := tg.ReadPhys(got, 0x3000-4); err != nil || string(got) != "ABCDEFGH" {
		t.Errorf("read back %q, %v", got, err)
	}
	// 0x10000 holds 0x1000 bytes in the file and 0x2000 more of zeros.
	err = w.WritePhys(make([]byte, 8), 0x11000-4)
	var pe *vmi.PhysError
	if !errors.Is(err, vmi.ErrReadOnly) || !errors.As(err, &pe) || pe.Addr != 0x11000 || !strings.Contains(err.Error(), "zero-filled tail") {
		t.Errorf("write into a segment's zero tail: %v", err)
	}
	checkRead(t, tg, 0x11000-8, 8, testSeed)
	tg.Close()
	file, _ := os.ReadFile(path)
	if !bytes.Contains(file, []byte("ABCDEFGH")) {
		t.Error("the ELF file does not hold the write")
	}
	if n := len(file); n != len(qemuELF64()) {
		t.Errorf("the file's size changed to %d", n)
	}
}
