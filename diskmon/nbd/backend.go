package nbd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// Backend is the storage behind an export. Calls come from several goroutines at once
// (one per in-flight request, over all connections), so implementations must be safe
// for concurrent use, and all connections must see one shared state (the server
// advertises NBD_FLAG_CAN_MULTI_CONN).
type Backend interface {
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	Size() int64
	// Sync makes every write that has returned durable (FLUSH; FUA unless the backend
	// also implements DataSyncer).
	Sync() error
	// Trim discards a range; the contents read afterwards are unspecified.
	Trim(off, length int64) error
	// WriteZeroes makes a range read back as zeroes; with mayTrim false the range
	// must stay allocated (NBD_CMD_FLAG_NO_HOLE).
	WriteZeroes(off, length int64, mayTrim bool) error
}

// DataSyncer is an optional Backend capability: a cheaper sync for FUA that persists
// data and the metadata needed to read it back (fdatasync). The server uses it for
// NBD_CMD_FLAG_FUA when present and Sync otherwise.
type DataSyncer interface {
	DataSync() error
}

// FileBackend serves a regular file or a block device. It never changes the file's
// size: trims and zeroes use FALLOC_FL_KEEP_SIZE.
type FileBackend struct {
	f        *os.File
	size     int64
	readOnly bool
	closeMu  sync.Once
}

// OpenFile opens an image for serving. The file is locked with flock (exclusive, or
// shared when read-only) so that two xascript processes cannot serve one image and
// corrupt it; QEMU's own image locks are OFD locks and do not conflict with it.
func OpenFile(path string, readOnly bool) (*FileBackend, error) {
	flags := os.O_RDWR
	lock := unix.LOCK_EX
	if readOnly {
		flags = os.O_RDONLY
		lock = unix.LOCK_SH
	}
	f, err := os.OpenFile(path, flags, 0)
	if err != nil {
		return nil, fmt.Errorf("open image: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open image %s: %w", path, err)
	}
	var size int64
	switch {
	case st.Mode().IsRegular():
		size = st.Size()
	case st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0:
		// Stat reports 0 for block devices; their size is where SEEK_END lands.
		size, err = f.Seek(0, io.SeekEnd)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("open image %s: size of block device: %w", path, err)
		}
	default:
		f.Close()
		return nil, fmt.Errorf("open image %s: not a regular file or block device (%s)", path, st.Mode().Type())
	}
	if err := unix.Flock(int(f.Fd()), lock|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("open image %s: in use by another process (flock)", path)
		}
		return nil, fmt.Errorf("open image %s: flock: %w", path, err)
	}
	return &FileBackend{f: f, size: size, readOnly: readOnly}, nil
}

func (b *FileBackend) Size() int64 { return b.size }

// ReadOnly reports whether the image was opened read-only.
func (b *FileBackend) ReadOnly() bool { return b.readOnly }

func (b *FileBackend) ReadAt(p []byte, off int64) (int, error) {
	n, err := b.f.ReadAt(p, off)
	if n == len(p) {
		return n, nil // io.EOF at the very end of the image is not an error here
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF // the image shrank under us
	}
	return n, err
}

func (b *FileBackend) WriteAt(p []byte, off int64) (int, error) { return b.f.WriteAt(p, off) }

// Sync is fsync: data and all metadata of the image.
func (b *FileBackend) Sync() error { return b.f.Sync() }

// DataSync is fdatasync, enough for FUA since the image's size never changes.
func (b *FileBackend) DataSync() error {
	for {
		err := unix.Fdatasync(int(b.f.Fd()))
		if err != unix.EINTR {
			return err
		}
	}
}

// Trim punches a hole. A file system or device that cannot punch holes makes the trim
// a no-op, which the protocol allows (TRIM is advisory).
func (b *FileBackend) Trim(off, length int64) error {
	err := b.fallocate(unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, length)
	if isNotSupported(err) {
		return nil
	}
	return err
}

// WriteZeroes punches a hole when allowed, else zeroes the range in place
// (FALLOC_FL_ZERO_RANGE keeps it allocated); where neither works it writes zeroes.
func (b *FileBackend) WriteZeroes(off, length int64, mayTrim bool) error {
	if mayTrim {
		err := b.fallocate(unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, length)
		if !isNotSupported(err) {
			return err
		}
	}
	err := b.fallocate(unix.FALLOC_FL_ZERO_RANGE|unix.FALLOC_FL_KEEP_SIZE, off, length)
	if !isNotSupported(err) {
		return err
	}
	return b.writeZeroes(off, length)
}

var zeroBuf [1 << 20]byte

func (b *FileBackend) writeZeroes(off, length int64) error {
	for length > 0 {
		n := min(length, int64(len(zeroBuf)))
		if _, err := b.f.WriteAt(zeroBuf[:n], off); err != nil {
			return err
		}
		off += n
		length -= n
	}
	return nil
}

func (b *FileBackend) fallocate(mode uint32, off, length int64) error {
	if length == 0 {
		return nil
	}
	for {
		err := unix.Fallocate(int(b.f.Fd()), mode, off, length)
		if err != unix.EINTR {
			if err != nil {
				return &os.PathError{Op: "fallocate", Path: b.f.Name(), Err: err}
			}
			return nil
		}
	}
}

func isNotSupported(err error) bool {
	return errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.ENODEV)
}

// Close syncs (when writable) and closes the image.
func (b *FileBackend) Close() error {
	var err error
	b.closeMu.Do(func() {
		if !b.readOnly {
			err = b.f.Sync()
		}
		if cerr := b.f.Close(); err == nil {
			err = cerr
		}
	})
	return err
}
