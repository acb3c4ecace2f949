package unpack

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// blockSize is the granularity at which all-zero data is skipped instead of
// stored. Memory dumps are mostly zero pages (a 4.5 GiB guest booted with
// init_on_free=1 holds about 140 MiB of data), so skipping them keeps a
// cache entry, or an in-memory copy, near the size of the data itself.
const blockSize = 4096

var zeroBlock [blockSize]byte

// forEachDataRun calls write for each maximal run of blockSize-aligned
// blocks of p (which starts at stream offset off) that are not all zero.
// off must be a multiple of blockSize.
func forEachDataRun(p []byte, off int64, write func(run []byte, at int64) error) error {
	start := -1
	for i := 0; i < len(p); i += blockSize {
		end := min(i+blockSize, len(p))
		zero := bytes.Equal(p[i:end], zeroBlock[:end-i])
		switch {
		case !zero && start < 0:
			start = i
		case zero && start >= 0:
			if err := write(p[start:i], off+int64(start)); err != nil {
				return err
			}
			start = -1
		}
	}
	if start >= 0 {
		return write(p[start:], off+int64(start))
	}
	return nil
}

// sparseFileWriter writes a stream to a file, leaving holes where the stream
// has all-zero blocks. Close sets the file's final size.
type sparseFileWriter struct {
	f   *os.File
	buf []byte
	off int64 // stream offset of buf[0]
}

func newSparseFileWriter(f *os.File) *sparseFileWriter {
	return &sparseFileWriter{f: f, buf: make([]byte, 0, 1<<20)}
}

func (w *sparseFileWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf = w.buf[:len(w.buf)+k]
		p = p[k:]
		if len(w.buf) == cap(w.buf) {
			if err := w.flush(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (w *sparseFileWriter) flush() error {
	err := forEachDataRun(w.buf, w.off, func(run []byte, at int64) error {
		_, err := w.f.WriteAt(run, at)
		return err
	})
	w.off += int64(len(w.buf))
	w.buf = w.buf[:0]
	return err
}

// Finish writes what is buffered and sets the file size, so a trailing run
// of zeros becomes a hole too.
func (w *sparseFileWriter) Finish() error {
	if err := w.flush(); err != nil {
		return err
	}
	return w.f.Truncate(w.off)
}

// anonWriter collects a stream in anonymous memory that grows by mremap.
// All-zero blocks are never written, so their pages are never touched and
// cost no RAM: the copy of a mostly-empty dump stays small.
// The producer bounds the stream's length (copyBounded).
type anonWriter struct {
	mem []byte // the whole mapping; len(mem) is its size
	n   int    // bytes of stream so far
}

func (w *anonWriter) Write(p []byte) (int, error) {
	if err := w.grow(w.n + len(p)); err != nil {
		return 0, err
	}
	// Block alignment is relative to the stream, which starts at offset 0.
	head := 0
	if r := w.n % blockSize; r != 0 {
		head = min(blockSize-r, len(p))
		copy(w.mem[w.n:], p[:head])
	}
	err := forEachDataRun(p[head:], int64(w.n+head), func(run []byte, at int64) error {
		copy(w.mem[at:], run)
		return nil
	})
	w.n += len(p)
	return len(p), err
}

func (w *anonWriter) grow(need int) error {
	if need <= len(w.mem) {
		return nil
	}
	size := max(len(w.mem), 64<<20)
	for size < need {
		size *= 2
	}
	if w.mem == nil {
		m, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
		if err != nil {
			return fmt.Errorf("reserve %d bytes of memory: %w", size, err)
		}
		w.mem = m
		return nil
	}
	m, err := unix.Mremap(w.mem, size, unix.MREMAP_MAYMOVE)
	if err != nil {
		return fmt.Errorf("grow memory to %d bytes: %w", size, err)
	}
	w.mem = m
	return nil
}

// file hands the collected bytes over as a read-only File.
func (w *anonWriter) file() (*File, error) {
	if w.mem == nil {
		return &File{Data: []byte{}}, nil
	}
	if err := unix.Mprotect(w.mem, unix.PROT_READ); err != nil {
		w.release()
		return nil, err
	}
	return &File{Data: w.mem[:w.n], mapping: w.mem}, nil
}

func (w *anonWriter) release() {
	if w.mem != nil {
		_ = unix.Munmap(w.mem)
		w.mem = nil
	}
}

var _ io.Writer = (*anonWriter)(nil)
