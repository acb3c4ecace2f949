package diskmon

import (
	"sync"

	"github.com/xascript/xascript/diskmon/nbd"
)

// flushSnapshot keeps the state of the disk at the guest's last FLUSH for
// the tracker of a file system without a journal (ext2). There, the only
// moment the guest says its metadata is whole is the end of its sync, whose
// last request is a FLUSH; the guest's next writes may follow within
// milliseconds, before the tracker has read the folders it watches. So from
// a FLUSH until the tracker has rescanned, every block the guest overwrites
// first has its old content copied aside (copy-on-write, as an LVM snapshot
// does), and the tracker reads the image through those copies: it sees the
// disk exactly as it was at the FLUSH. The guest's write pays one read of
// the overwritten block from the host's page cache, and only while a
// snapshot is held. The copies are bounded (snapshotLimit); past that the
// snapshot is dropped and the tracker reports LOST and reads the live disk.
type flushSnapshot struct {
	*nbd.FileBackend

	mu       sync.Mutex
	active   bool
	saved    map[int64][]byte // snapshot block index -> content at the FLUSH
	bytes    int
	overflow bool
}

const (
	snapBlock     = 4096
	snapshotLimit = 64 << 20
)

func newFlushSnapshot(b *nbd.FileBackend) *flushSnapshot {
	return &flushSnapshot{FileBackend: b, saved: map[int64][]byte{}}
}

// preserve copies aside the blocks of [off, off+n) not yet saved, when a
// snapshot is held. Called with mu held.
func (s *flushSnapshot) preserve(off, n int64) {
	if !s.active || n <= 0 {
		return
	}
	size := s.Size()
	for blk := off / snapBlock; blk*snapBlock < off+n && blk*snapBlock < size; blk++ {
		if _, ok := s.saved[blk]; ok {
			continue
		}
		if s.bytes+snapBlock > snapshotLimit {
			s.active, s.overflow = false, true
			s.saved, s.bytes = map[int64][]byte{}, 0
			return
		}
		buf := make([]byte, min(snapBlock, size-blk*snapBlock))
		if _, err := s.FileBackend.ReadAt(buf, blk*snapBlock); err != nil {
			// A block we cannot read back cannot be kept: give the snapshot up.
			s.active, s.overflow = false, true
			s.saved, s.bytes = map[int64][]byte{}, 0
			return
		}
		s.saved[blk] = buf
		s.bytes += len(buf)
	}
}

// WriteAt saves what it overwrites, then writes.
func (s *flushSnapshot) WriteAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	s.preserve(off, int64(len(p)))
	s.mu.Unlock()
	return s.FileBackend.WriteAt(p, off)
}

// Trim saves what it discards, then discards.
func (s *flushSnapshot) Trim(off, length int64) error {
	s.mu.Lock()
	s.preserve(off, length)
	s.mu.Unlock()
	return s.FileBackend.Trim(off, length)
}

// WriteZeroes saves what it zeroes, then zeroes.
func (s *flushSnapshot) WriteZeroes(off, length int64, mayTrim bool) error {
	s.mu.Lock()
	s.preserve(off, length)
	s.mu.Unlock()
	return s.FileBackend.WriteZeroes(off, length, mayTrim)
}

// Sync makes the image durable (the guest's FLUSH) and, unless the tracker
// still holds the state of an earlier FLUSH, starts a snapshot of this one.
func (s *flushSnapshot) Sync() error {
	err := s.FileBackend.Sync()
	if err == nil {
		s.mu.Lock()
		s.active = true
		s.mu.Unlock()
	}
	return err
}

// snapshotView is the tracker's reader of a flushSnapshot; the guest's own
// reads go to the live image (the embedded FileBackend's ReadAt).
type snapshotView struct{ s *flushSnapshot }

// ReadAt reads the disk as it was at the snapshot's FLUSH (the live disk
// when no snapshot is held).
func (v snapshotView) ReadAt(p []byte, off int64) (int, error) { return v.s.readSnapshot(p, off) }

func (s *flushSnapshot) readSnapshot(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.FileBackend.ReadAt(p, off)
	if !s.active || len(s.saved) == 0 {
		return n, err
	}
	for blk := off / snapBlock; blk*snapBlock < off+int64(n); blk++ {
		old, ok := s.saved[blk]
		if !ok {
			continue
		}
		from := blk * snapBlock
		lo, hi := max(from, off), min(from+int64(len(old)), off+int64(n))
		copy(p[lo-off:hi-off], old[lo-from:hi-from])
	}
	return n, err
}

// release ends the snapshot once the tracker has read it; it reports
// whether a snapshot had to be given up since the last release.
func (s *flushSnapshot) release() (overflowed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	overflowed = s.overflow
	s.active, s.overflow = false, false
	s.saved, s.bytes = map[int64][]byte{}, 0
	return overflowed
}
