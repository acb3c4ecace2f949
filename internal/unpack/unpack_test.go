package unpack

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/xascript/xascript/internal/progress"
	"github.com/xascript/xascript/internal/unpack/unpacktest"
)

// bzip2 of "hello bzip2 world\n" (the standard library has no bzip2 writer).
var bzip2Hello = []byte{0x42, 0x5a, 0x68, 0x39, 0x31, 0x41, 0x59, 0x26, 0x53, 0x59, 0xa4, 0x53, 0x4a, 0x50, 0x00, 0x00, 0x03, 0xd9, 0x80, 0x00, 0x10, 0x40, 0x00, 0x10, 0x00, 0x16, 0x64, 0xd0, 0x90, 0x20, 0x00, 0x22, 0x98, 0x13, 0x68, 0x6a, 0x10, 0x00, 0x01, 0xc3, 0xdc, 0x58, 0xf1, 0xdc, 0x8e, 0x13, 0x80, 0xfc, 0x5d, 0xc9, 0x14, 0xe1, 0x42, 0x42, 0x91, 0x4d, 0x29, 0x40}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpenRoundTrip(t *testing.T) {
	plain := bytes.Repeat([]byte("guest memory page "), 10000)
	for _, kind := range []string{Zstd, XZ, Gzip} {
		t.Run(kind, func(t *testing.T) {
			path := writeFile(t, "img", unpacktest.Compress(t, kind, plain))
			opt := Options{CacheDir: t.TempDir()}
			f, err := Open(path, opt)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Compression() != kind {
				t.Errorf("compression %q, want %q", f.Compression(), kind)
			}
			if !bytes.Equal(f.Data, plain) {
				t.Fatalf("decompressed %d bytes differ from the %d written", len(f.Data), len(plain))
			}
			if f.CachePath() == "" {
				t.Fatal("compressed file was not cached")
			}
			// The second open must map the cache entry, not decompress again:
			// corrupt the cache entry and see the corruption come back.
			if err := os.WriteFile(f.CachePath(), []byte("from cache"), 0o644); err != nil {
				t.Fatal(err)
			}
			g, err := Open(path, opt)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			if string(g.Data) != "from cache" {
				t.Fatalf("second open did not use the cache: got %d bytes", len(g.Data))
			}
		})
	}
}

func TestOpenBzip2(t *testing.T) {
	f, err := Open(writeFile(t, "x.bz2", bzip2Hello), Options{NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	if string(f.Data) != "hello bzip2 world\n" || f.Compression() != Bzip2 {
		t.Fatalf("got %q (%s)", f.Data, f.Compression())
	}
}

func TestOpenPlainIsMapped(t *testing.T) {
	f, err := Open(writeFile(t, "raw", []byte("plain bytes")), Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if string(f.Data) != "plain bytes" || f.Compression() != "" || f.CachePath() != "" {
		t.Fatalf("got %q compression %q cache %q", f.Data, f.Compression(), f.CachePath())
	}
}

func TestOpenEmpty(t *testing.T) {
	f, err := Open(writeFile(t, "empty", nil), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Data) != 0 {
		t.Fatal("empty file has data")
	}
}

func TestMaxSizeBoundsBombs(t *testing.T) {
	path := writeFile(t, "bomb", unpacktest.Compress(t, Zstd, make([]byte, 1<<20)))
	_, err := Open(path, Options{CacheDir: t.TempDir(), MaxSize: 1000})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	// Nothing partial is left in the cache.
	if _, err := Open(path, Options{CacheDir: t.TempDir(), MaxSize: 1 << 20}); err != nil {
		t.Fatalf("exact-size limit: %v", err)
	}
}

func TestCorruptCompressedFile(t *testing.T) {
	data := unpacktest.Compress(t, Zstd, bytes.Repeat([]byte("abc"), 1000))
	dir := t.TempDir()
	path := writeFile(t, "trunc", data[:len(data)/2])
	if _, err := Open(path, Options{CacheDir: dir}); err == nil {
		t.Fatal("truncated zstd decompressed without error")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".lock") { // lock files stay by design
			t.Fatalf("failed decompression left cache entries: %v", entries)
		}
	}
}

func TestUnwritableCacheFallsBackToMemory(t *testing.T) {
	ro := filepath.Join(t.TempDir(), "file-not-dir")
	if err := os.WriteFile(ro, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, "z", unpacktest.Compress(t, Zstd, []byte("data")))
	f, err := Open(path, Options{CacheDir: filepath.Join(ro, "sub")})
	if err != nil {
		t.Fatal(err)
	}
	if string(f.Data) != "data" || f.CachePath() != "" {
		t.Fatalf("got %q cache %q", f.Data, f.CachePath())
	}
}

func TestDerivedRunsProduceOnce(t *testing.T) {
	src := writeFile(t, "vmlinuz", []byte("source"))
	opt := Options{CacheDir: t.TempDir()}
	calls := 0
	produce := func(w io.Writer) error { calls++; _, err := w.Write([]byte("derived")); return err }
	for i := 0; i < 2; i++ {
		f, err := Derived(src, "btf", opt, produce)
		if err != nil {
			t.Fatal(err)
		}
		if string(f.Data) != "derived" {
			t.Fatalf("got %q", f.Data)
		}
		f.Close()
	}
	if calls != 1 {
		t.Fatalf("produce ran %d times, want 1", calls)
	}
	// A changed source is a new key.
	if err := os.WriteFile(src, []byte("source v2, longer"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Derived(src, "btf", opt, produce); err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Fatalf("changed source did not re-derive (calls %d)", calls)
	}
}

func TestDetect(t *testing.T) {
	for head, want := range map[string]string{
		"\x28\xb5\x2f\xfd..": Zstd, "\xfd7zXZ\x00": XZ, "\x1f\x8b\x08": Gzip, "BZh9": Bzip2,
		"BZh0": "", "\x7fELF": "", "": "",
	} {
		if got := Detect([]byte(head)); got != want {
			t.Errorf("Detect(%q) = %q, want %q", head, got, want)
		}
	}
}

// TestProgressOnCacheMissOnly: decompressing reports one line (not a
// terminal) on a miss, with the output's size; a hit reports nothing.
func TestProgressOnCacheMissOnly(t *testing.T) {
	path := writeFile(t, "img.zst", unpacktest.Compress(t, Zstd, bytes.Repeat([]byte("x"), 3<<20)))
	var log bytes.Buffer
	meter := progress.New(&log, false)
	meter.Delay = 0 // report even this quick miss
	opt := Options{CacheDir: t.TempDir(), Progress: meter}
	for i := 0; i < 2; i++ {
		f, err := Open(path, opt)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	if !regexp.MustCompile(`^xascript: img\.zst: decompressed 3\.0 MiB in \d+\.\d s \(later runs use the cache\)\n$`).MatchString(log.String()) {
		t.Fatalf("progress log:\n%s", log.String())
	}
	// Derived reports the bytes it wrote.
	log.Reset()
	f, err := Derived(path, "index-v1", opt, func(w io.Writer) error {
		_, err := w.Write(make([]byte, 2048))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if !regexp.MustCompile(`^xascript: img\.zst: prepared index-v1, 2\.0 KiB in \d+\.\d s \(later runs use the cache\)\n$`).MatchString(log.String()) {
		t.Fatalf("progress log:\n%s", log.String())
	}
}
