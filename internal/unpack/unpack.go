package unpack

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"golang.org/x/sys/unix"

	"github.com/xascript/xascript/internal/progress"
)

// DefaultMaxSize bounds a decompressed file when Options.MaxSize is zero.
const DefaultMaxSize = 64 << 30

// ErrTooLarge is returned when decompressed data exceeds Options.MaxSize.
var ErrTooLarge = errors.New("decompressed data exceeds size limit")

// Options controls caching. The zero value caches in the default directory.
type Options struct {
	// CacheDir overrides the cache directory.
	CacheDir string
	// NoCache decompresses into memory instead of the on-disk cache.
	NoCache bool
	// MaxSize bounds decompressed sizes; 0 means DefaultMaxSize.
	MaxSize int64
	// Writable opens an uncompressed file read-write and maps it shared
	// and writable, so that stores into Data change the file (a memory
	// dump that a script may write, with xascript's --allow-write). A
	// compressed file is still decompressed into a read-only copy: a store
	// there would change a cache entry, not the file; File.Writable says
	// which one the caller got.
	Writable bool
	// Progress, when set, reports each slow cache miss (decompressing a
	// dump can take minutes; later runs are instant): a bar on a terminal,
	// one line otherwise (internal/progress).
	Progress *progress.Meter
}

func (o Options) maxSize() int64 {
	if o.MaxSize > 0 {
		return o.MaxSize
	}
	return DefaultMaxSize
}

// File is the uncompressed content of a file.
type File struct {
	// Data is the uncompressed bytes. It is read-only unless Writable:
	// when mmapped read-only, writing to it faults.
	Data        []byte
	writable    bool
	compression string
	cached      string
	mapped      bool
	mapping     []byte // when set, the whole mapping behind Data, for Close
}

// Compression names the source's compression: "" when it was not compressed.
func (f *File) Compression() string { return f.compression }

// Writable tells whether Data may be written, each store reaching the file
// (Options.Writable, and the file was not compressed).
func (f *File) Writable() bool { return f.writable }

// CachePath is the cache entry that backs Data, or "" when there is none.
func (f *File) CachePath() string { return f.cached }

// Close releases the mapping. Data must not be used afterwards.
func (f *File) Close() error {
	if f == nil {
		return nil
	}
	if f.mapping != nil {
		err := unix.Munmap(f.mapping)
		f.mapping, f.Data = nil, nil
		return err
	}
	if !f.mapped || f.Data == nil {
		return nil
	}
	err := unix.Munmap(f.Data)
	f.Data = nil
	return err
}

// Compression kinds reported by Detect.
const (
	Zstd  = "zstd"
	XZ    = "xz"
	Gzip  = "gzip"
	Bzip2 = "bzip2"
)

// Detect names the compression whose magic starts head, or "" for none.
func Detect(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return Zstd
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		return XZ
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return Gzip
	case len(head) >= 4 && bytes.HasPrefix(head, []byte("BZh")) && head[3] >= '1' && head[3] <= '9':
		return Bzip2
	}
	return ""
}

// NewReader returns a reader that decompresses r according to kind.
func NewReader(kind string, r io.Reader) (io.ReadCloser, error) {
	switch kind {
	case Zstd:
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(1<<31))
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	case XZ:
		x, err := xz.NewReader(bufio.NewReaderSize(r, 1<<20))
		if err != nil {
			return nil, err
		}
		return io.NopCloser(x), nil
	case Gzip:
		g, err := gzip.NewReader(r)
		if err != nil {
			return nil, err
		}
		return g, nil
	case Bzip2:
		return io.NopCloser(bzip2.NewReader(bufio.NewReaderSize(r, 1<<20))), nil
	}
	return nil, fmt.Errorf("unknown compression %q", kind)
}

// Open returns path's uncompressed content.
func Open(path string, opt Options) (*File, error) {
	mode := os.O_RDONLY
	if opt.Writable {
		mode = os.O_RDWR
	}
	f, err := os.OpenFile(path, mode, 0)
	if err != nil {
		if opt.Writable {
			return nil, fmt.Errorf("open for writing (writes were allowed): %w", err)
		}
		return nil, err
	}
	defer f.Close()
	head := make([]byte, 8)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	kind := Detect(head[:n])
	if kind == "" {
		prot := unix.PROT_READ
		if opt.Writable {
			prot |= unix.PROT_WRITE
		}
		data, err := mmapFileProt(f, prot)
		if err != nil {
			return nil, fmt.Errorf("map %s: %w", path, err)
		}
		return &File{Data: data, mapped: data != nil, writable: opt.Writable && data != nil}, nil
	}
	produce := func(w io.Writer, bar *progress.Bar) error {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		// The compressed input is what has a known size: the bar counts
		// it, and the final line gives the output's size.
		if st, err := f.Stat(); err == nil {
			bar.SetTotal(st.Size())
		}
		r, err := NewReader(kind, bufio.NewReaderSize(countingReader{f, bar}, 1<<20))
		if err != nil {
			return err
		}
		defer r.Close()
		cw := &countingWriter{w: w}
		err = copyBounded(cw, r, opt.maxSize())
		bar.SetResult(progress.FormatBytes(cw.n))
		return err
	}
	step := progress.Step{Name: filepath.Base(path), Doing: "decompressing", Done: "decompressed",
		Note: " (later runs use the cache)", Unit: progress.Bytes}
	out, err := derive(f, path, "decompressed", step, opt, produce)
	if err != nil {
		return nil, fmt.Errorf("decompress %s (%s): %w", path, kind, err)
	}
	out.compression = kind
	return out, nil
}

// Derived returns data produced from srcPath by produce, cached under a key
// made of the source's identity and tag. produce runs only on a cache miss.
// Change tag whenever what produce writes changes.
// A slow miss reports the bytes written as its progress.
func Derived(srcPath, tag string, opt Options, produce func(w io.Writer) error) (*File, error) {
	step := progress.Step{Name: filepath.Base(srcPath), Doing: "preparing " + tag, Done: "prepared " + tag + ",",
		Note: " (later runs use the cache)", Unit: progress.Bytes}
	return DerivedStep(srcPath, tag, step, opt, func(w io.Writer, bar *progress.Bar) error {
		return produce(&countingWriter{w: w, bar: bar})
	})
}

// DerivedStep is Derived for work that reports its own progress: produce
// gets the bar of step (nil when nothing is reported) and counts its work
// on it.
func DerivedStep(srcPath, tag string, step progress.Step, opt Options, produce func(w io.Writer, bar *progress.Bar) error) (*File, error) {
	f, err := os.Open(srcPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return derive(f, srcPath, tag, step, opt, produce)
}

func derive(src *os.File, path, tag string, step progress.Step, opt Options, withBar func(w io.Writer, bar *progress.Bar) error) (*File, error) {
	if opt.NoCache {
		step.Note = "" // no later run will find it
	}
	// Only a miss runs produce, and so shows progress.
	produce := func(w io.Writer) error {
		bar := opt.Progress.Start(step)
		err := withBar(w, bar)
		bar.Done(err)
		return err
	}
	if !opt.NoCache {
		if dir, err := cacheDir(opt); err == nil {
			key, err := identity(src, path, tag)
			if err != nil {
				return nil, err
			}
			f, err := deriveCached(dir, key, produce)
			if err == nil || !isCacheWriteError(err) {
				return f, err
			}
			// The cache is not usable (read-only, disk full): fall back to
			// memory below.
		}
	}
	var w anonWriter
	if err := produce(&w); err != nil {
		w.release()
		return nil, err
	}
	return w.file()
}

// deriveCached returns the cache entry key in dir, producing it first when
// it is missing. Other processes opening the same source at the same time
// (parallel test binaries, two monitors) wait on a lock file instead of
// each writing its own copy of a possibly multi-GiB entry.
func deriveCached(dir, key string, produce func(w io.Writer) error) (*File, error) {
	entry := filepath.Join(dir, key)
	if data, err := mmapPath(entry); err == nil {
		return &File{Data: data, cached: entry, mapped: data != nil}, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, cacheWriteError{err}
	}
	unlock, err := lockEntry(entry + ".lock")
	if err != nil {
		return nil, cacheWriteError{err}
	}
	defer unlock()
	if data, err := mmapPath(entry); err == nil { // made while we waited
		return &File{Data: data, cached: entry, mapped: data != nil}, nil
	}
	if err := writeEntry(dir, entry, produce); err != nil {
		return nil, err
	}
	data, err := mmapPath(entry)
	if err != nil {
		return nil, err
	}
	return &File{Data: data, cached: entry, mapped: data != nil}, nil
}

// lockEntry takes an exclusive flock on path, creating it, and returns the
// function that releases it. The lock file stays: removing it would race
// with a process that just opened it.
func lockEntry(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600) // owner-only, like every cache file
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil // closing drops the flock
}

// cacheWriteError marks failures of the cache itself (not of produce), after
// which working from memory is still correct.
type cacheWriteError struct{ err error }

func (e cacheWriteError) Error() string { return "cache: " + e.err.Error() }
func (e cacheWriteError) Unwrap() error { return e.err }

func isCacheWriteError(err error) bool {
	var c cacheWriteError
	return errors.As(err, &c)
}

// createTemp is os.CreateTemp; tests replace it to simulate a full disk.
var createTemp = os.CreateTemp

// cacheWriter marks the errors of writing the cache entry, so that a full
// disk sends derive to its in-memory fallback while an error of produce
// itself (a corrupt source) is reported.
type cacheWriter struct{ w io.Writer }

func (c cacheWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if err != nil {
		err = cacheWriteError{err}
	}
	return n, err
}

func writeEntry(dir, entry string, produce func(w io.Writer) error) error {
	tmp, err := createTemp(dir, ".tmp-*")
	if err != nil {
		return cacheWriteError{err}
	}
	defer os.Remove(tmp.Name())
	sw := newSparseFileWriter(tmp)
	if err := produce(cacheWriter{sw}); err != nil {
		tmp.Close()
		return err
	}
	if err := sw.Finish(); err != nil {
		tmp.Close()
		return cacheWriteError{err}
	}
	if err := tmp.Close(); err != nil {
		return cacheWriteError{err}
	}
	if err := os.Rename(tmp.Name(), entry); err != nil {
		return cacheWriteError{err}
	}
	return nil
}

// CacheDir returns the cache directory that opt selects.
func CacheDir(opt Options) (string, error) { return cacheDir(opt) }

func cacheDir(opt Options) (string, error) {
	if opt.CacheDir != "" {
		return opt.CacheDir, nil
	}
	if d := os.Getenv("XASCRIPT_CACHE_DIR"); d != "" {
		return d, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(base, "xascript"), nil
}

// identity keys a cache entry. A changed file gets a new key because its
// size or mtime changes; stale entries are simply never looked up again.
func identity(f *os.File, path, tag string) (string, error) {
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	var dev, ino uint64
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		dev, ino = sys.Dev, sys.Ino
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d\x00%d\x00%d\x00%d\x00%s", abs, st.Size(), st.ModTime().UnixNano(), dev, ino, tag)
	return hex.EncodeToString(h.Sum(nil)[:16]) + "-" + sanitize(filepath.Base(path)) + "." + sanitize(tag), nil
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	if len(b) > 64 {
		b = b[:64]
	}
	return string(b)
}

func copyBounded(w io.Writer, r io.Reader, limit int64) error {
	n, err := io.Copy(w, io.LimitReader(r, limit+1))
	if err != nil {
		return err
	}
	if n > limit {
		return fmt.Errorf("%w (%d bytes)", ErrTooLarge, limit)
	}
	return nil
}

func mmapPath(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return mmapFile(f)
}

func mmapFile(f *os.File) ([]byte, error) { return mmapFileProt(f, unix.PROT_READ) }

// mmapFileProt maps all of f shared with protection prot: PROT_READ, or
// with PROT_WRITE for a file opened read-write, whose stores then reach the
// file.
func mmapFileProt(f *os.File, prot int) ([]byte, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	if size == 0 {
		return nil, nil
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", f.Name())
	}
	if size != int64(int(size)) {
		return nil, fmt.Errorf("%s: size %d does not fit in memory", f.Name(), size)
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(size), prot, unix.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	// Scripts and the kernel locator touch scattered pages of a dump; the
	// default readahead would fault in (and count as our RSS) hundreds of
	// KiB around each one. The advice is only a hint: ignore failure.
	_ = unix.Madvise(data, unix.MADV_RANDOM)
	return data, nil
}

// countingReader counts what is read from the compressed source on bar.
type countingReader struct {
	r   io.Reader
	bar *progress.Bar
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.bar.Add(int64(n))
	return n, err
}

// countingWriter counts what produce writes, and reports it on bar when
// there is one.
type countingWriter struct {
	w   io.Writer
	n   int64
	bar *progress.Bar
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.bar.Add(int64(n))
	return n, err
}
