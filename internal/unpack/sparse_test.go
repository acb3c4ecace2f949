package unpack

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/xascript/xascript/internal/unpack/unpacktest"
)

// patchy returns size bytes in which whole and partial blocks of zeros
// alternate with data, so every run boundary case is present.
func patchy(size int, seed int64) []byte {
	r := rand.New(rand.NewSource(seed))
	b := make([]byte, size)
	for i := 0; i < size; {
		n := 1 + r.Intn(3*blockSize)
		if r.Intn(2) == 0 {
			r.Read(b[i:min(i+n, size)])
		}
		i += n
	}
	return b
}

// writeInPieces feeds data to w in chunks of irregular sizes.
func writeInPieces(t *testing.T, w io.Writer, data []byte, seed int64) {
	t.Helper()
	r := rand.New(rand.NewSource(seed))
	for len(data) > 0 {
		n := min(1+r.Intn(3<<20), len(data))
		if _, err := w.Write(data[:n]); err != nil {
			t.Fatal(err)
		}
		data = data[n:]
	}
}

func TestSparseFileWriterKeepsContent(t *testing.T) {
	for seed := int64(1); seed <= 4; seed++ {
		want := patchy(5<<20+123, seed)
		f, err := os.Create(filepath.Join(t.TempDir(), "out"))
		if err != nil {
			t.Fatal(err)
		}
		w := newSparseFileWriter(f)
		writeInPieces(t, w, want, seed)
		if err := w.Finish(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		got, err := os.ReadFile(f.Name())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("seed %d: content differs (len %d, want %d)", seed, len(got), len(want))
		}
	}
}

func TestAnonWriterKeepsContent(t *testing.T) {
	for seed := int64(1); seed <= 4; seed++ {
		want := patchy(70<<20+17, seed) // crosses the first 64 MiB mremap
		var w anonWriter
		writeInPieces(t, &w, want, seed)
		f, err := w.file()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(f.Data, want) {
			t.Fatalf("seed %d: content differs", seed)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// A dump is mostly zero pages; its cache entry must not store them.
func TestCacheEntryIsSparse(t *testing.T) {
	raw := make([]byte, 64<<20)
	copy(raw[10<<20:], bytes.Repeat([]byte("kernel"), 1000))
	path := writeFile(t, "mem.zst", unpacktest.Compress(t, Zstd, raw))
	f, err := Open(path, Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !bytes.Equal(f.Data, raw) {
		t.Fatal("content differs")
	}
	var st syscall.Stat_t
	if err := syscall.Stat(f.CachePath(), &st); err != nil {
		t.Fatal(err)
	}
	if used := st.Blocks * 512; used > 1<<20 {
		t.Errorf("64 MiB entry with 6 KB of data uses %d bytes of disk; want holes", used)
	}
}

// failingTemp makes the cache's temporary files refuse writes, as a full
// disk does: it hands out read-only descriptors of files in a scratch dir
// (writeEntry removes them afterwards, so they must be the test's own).
func failingTemp(t *testing.T) {
	scratch := t.TempDir()
	createTemp = func(string, string) (*os.File, error) {
		f, err := os.CreateTemp(scratch, "tmp-*")
		if err != nil {
			return nil, err
		}
		f.Close()
		return os.Open(f.Name())
	}
	t.Cleanup(func() { createTemp = os.CreateTemp })
}

// A cache entry that cannot be written (a full disk) must not fail the
// open: the data is produced again into memory.
func TestCacheWriteFailureFallsBackToMemory(t *testing.T) {
	failingTemp(t)
	raw := patchy(3<<20, 9)
	path := writeFile(t, "mem.zst", unpacktest.Compress(t, Zstd, raw))
	f, err := Open(path, Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatalf("Open with an unwritable cache entry: %v", err)
	}
	defer f.Close()
	if f.CachePath() != "" {
		t.Errorf("CachePath = %q, want none", f.CachePath())
	}
	if !bytes.Equal(f.Data, raw) {
		t.Fatal("content differs")
	}
}

// Errors of the source itself are still reported, not hidden by the
// fallback.
func TestCorruptSourceWithFailingCacheIsAnError(t *testing.T) {
	failingTemp(t)
	data := unpacktest.Compress(t, Zstd, patchy(3<<20, 3))
	path := writeFile(t, "trunc", data[:len(data)/2])
	if _, err := Open(path, Options{CacheDir: t.TempDir()}); err == nil || isCacheWriteError(err) {
		t.Fatalf("err = %v, want the decompression error", err)
	}
}

// Concurrent opens of one source produce the entry once.
func TestConcurrentDerivesProduceOnce(t *testing.T) {
	src := writeFile(t, "src", []byte("source"))
	dir := t.TempDir()
	var calls atomic.Int32
	produce := func(w io.Writer) error {
		calls.Add(1)
		_, err := w.Write(bytes.Repeat([]byte{1}, 1<<20))
		return err
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := Derived(src, "test", Options{CacheDir: dir}, produce)
			if err == nil && len(f.Data) != 1<<20 {
				err = errors.New("short entry")
			}
			if f != nil {
				f.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("produce ran %d times, want 1", n)
	}
}
