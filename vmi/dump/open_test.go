package dump

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/internal/unpack/unpacktest"
	"github.com/xascript/xascript/vmi"
)

// TestOpenCompressed: every format, compressed every way, opens from disk
// with the same memory map, CPU state and bytes. The file names carry no
// extension: compression is recognised by magic bytes.
func TestOpenCompressed(t *testing.T) {
	formats := map[string][]byte{"elf64": qemuELF64(), "elf32": qemuELF32(), "lime": limeSample(), "raw": pattern(0, 0x4000, testSeed)}
	for fname, plain := range formats {
		ref := mustParse(t, plain)
		for _, comp := range []string{"", "zstd", "xz", "gzip"} {
			for _, noCache := range []bool{false, true} {
				t.Run(fname+"/"+comp, func(t *testing.T) {
					dir := t.TempDir()
					path := filepath.Join(dir, "dump")
					if err := os.WriteFile(path, unpacktest.Compress(t, comp, plain), 0o644); err != nil {
						t.Fatal(err)
					}
					tg, err := Open(path, Options{unpack.Options{CacheDir: filepath.Join(dir, "cache"), NoCache: noCache}})
					if err != nil {
						t.Fatal(err)
					}
					defer tg.Close()
					if got := tg.(CompressionProvider).Compression(); got != comp {
						t.Errorf("Compression = %q, want %q", got, comp)
					}
					if tg.Kind() != ref.Kind() || tg.CPU() != ref.CPU() || !slices.Equal(tg.MemoryMap(), ref.MemoryMap()) {
						t.Errorf("opened %s %+v %v, parsed %s %+v %v", tg.Kind(), tg.CPU(), tg.MemoryMap(), ref.Kind(), ref.CPU(), ref.MemoryMap())
					}
					for _, r := range ref.MemoryMap() {
						a, b := make([]byte, r.Len()), make([]byte, r.Len())
						if err := tg.ReadPhys(a, r.Start); err != nil {
							t.Fatal(err)
						}
						if err := ref.ReadPhys(b, r.Start); err != nil {
							t.Fatal(err)
						}
						if !bytes.Equal(a, b) {
							t.Fatalf("range %v differs", r)
						}
					}
				})
			}
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := Open(filepath.Join(dir, "missing"), Options{})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	// A truncated compressed ELF: the error names the decompression.
	cut := qemuELF64()[:0x300]
	path := filepath.Join(dir, "cut.elf.zst")
	if err := os.WriteFile(path, unpacktest.Compress(t, "zstd", cut), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(path, Options{unpack.Options{CacheDir: dir}})
	if err == nil || !errors.Is(err, vmi.ErrFormat) || !strings.Contains(err.Error(), "(zstd-decompressed)") || !strings.Contains(err.Error(), "beyond file size 0x300") {
		t.Errorf("truncated zstd ELF: %v", err)
	}
	txt := filepath.Join(dir, "notes.txt")
	os.WriteFile(txt, []byte("not a dump\n"), 0o644)
	if _, err = Open(txt, Options{}); err == nil || !strings.Contains(err.Error(), "unknown format") {
		t.Errorf("text file: %v", err)
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o644)
	if _, err = Open(empty, Options{}); err == nil || !strings.Contains(err.Error(), "empty file") {
		t.Errorf("empty file: %v", err)
	}
}
