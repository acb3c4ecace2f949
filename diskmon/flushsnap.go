package diskmon

import (
	"sync"

	"github.com/xascript/xascript/diskmon/ext4"
	"github.com/xascript/xascript/diskmon/nbd"
)

// flushSnapshot keeps the state of the disk at each of the guest's recent
// FLUSHes for the tracker of a file system without a journal (ext2). There,
// the only moment the guest says its metadata is whole is the end of its
// sync, whose last request is a FLUSH; the guest's next writes may follow
// within milliseconds, before the tracker has read the folders it watches.
// So every FLUSH starts an epoch, and the first write to a block in an
// epoch first copies the block's old content aside (copy-on-write, as an
// LVM snapshot does). The disk as it was at FLUSH k is then, block by
// block, the copy kept by the first epoch at or after k that kept one, else
// the live block. The tracker steps through the epochs as it steps through
// jbd2 commits (CommitView), so a file made at one sync and removed at the
// next is seen even when both happened between two rescans.
//
// The guest's write pays one read of the overwritten block from the host's
// page cache, only while an epoch is held. The copies are bounded
// (snapshotLimit); past that every epoch is dropped, the tracker reads the
// live disk and reports LOST.
type flushSnapshot struct {
	*nbd.FileBackend

	mu       sync.Mutex
	epochs   []*flushEpoch // oldest first
	nextID   uint32
	bytes    int
	overflow bool
	pinned   *flushEpoch // what snapshotView reads; nil: the live disk
}

type flushEpoch struct {
	id    uint32
	saved map[int64][]byte // block index -> content at this epoch's FLUSH
}

const (
	snapBlock     = 4096
	snapshotLimit = 64 << 20
	maxEpochs     = 1024
)

func newFlushSnapshot(b *nbd.FileBackend) *flushSnapshot {
	return &flushSnapshot{FileBackend: b, nextID: 1}
}

// dropAll gives every epoch up (too much to keep). Called with mu held.
func (s *flushSnapshot) dropAll() {
	s.epochs, s.bytes, s.overflow, s.pinned = nil, 0, true, nil
}

// preserve copies aside, into the newest epoch, the blocks of [off, off+n)
// it has not kept yet. Called with mu held.
func (s *flushSnapshot) preserve(off, n int64) {
	if len(s.epochs) == 0 || n <= 0 {
		return
	}
	e := s.epochs[len(s.epochs)-1]
	size := s.Size()
	for blk := off / snapBlock; blk*snapBlock < off+n && blk*snapBlock < size; blk++ {
		if _, ok := e.saved[blk]; ok {
			continue
		}
		if s.bytes+snapBlock > snapshotLimit {
			s.dropAll()
			return
		}
		buf := make([]byte, min(snapBlock, size-blk*snapBlock))
		if _, err := s.FileBackend.ReadAt(buf, blk*snapBlock); err != nil {
			s.dropAll() // a block we cannot read back cannot be kept
			return
		}
		e.saved[blk] = buf
		s.bytes += len(buf)
	}
}

// WriteAt keeps what it overwrites, then writes.
func (s *flushSnapshot) WriteAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	s.preserve(off, int64(len(p)))
	s.mu.Unlock()
	return s.FileBackend.WriteAt(p, off)
}

// Trim keeps what it discards, then discards.
func (s *flushSnapshot) Trim(off, length int64) error {
	s.mu.Lock()
	s.preserve(off, length)
	s.mu.Unlock()
	return s.FileBackend.Trim(off, length)
}

// WriteZeroes keeps what it zeroes, then zeroes.
func (s *flushSnapshot) WriteZeroes(off, length int64, mayTrim bool) error {
	s.mu.Lock()
	s.preserve(off, length)
	s.mu.Unlock()
	return s.FileBackend.WriteZeroes(off, length, mayTrim)
}

// Sync makes the image durable (the guest's FLUSH) and starts an epoch.
func (s *flushSnapshot) Sync() error {
	err := s.FileBackend.Sync()
	if err == nil {
		s.mu.Lock()
		if len(s.epochs) >= maxEpochs {
			s.dropAll()
		}
		s.epochs = append(s.epochs, &flushEpoch{id: s.nextID, saved: map[int64][]byte{}})
		s.nextID++
		s.mu.Unlock()
	}
	return err
}

// snapshotView is the tracker's reader of a flushSnapshot; the guest's own
// reads go to the live image (the embedded FileBackend's ReadAt).
type snapshotView struct{ s *flushSnapshot }

// ReadAt reads the disk as it was at the pinned epoch's FLUSH (the live
// disk when none is pinned).
func (v snapshotView) ReadAt(p []byte, off int64) (int, error) { return v.s.readPinned(p, off) }

func (s *flushSnapshot) readPinned(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.FileBackend.ReadAt(p, off)
	if s.pinned == nil {
		return n, err
	}
	later := false
	for blk := off / snapBlock; blk*snapBlock < off+int64(n); blk++ {
		for _, e := range s.epochs {
			if e == s.pinned {
				later = true
			}
			if !later {
				continue
			}
			old, ok := e.saved[blk]
			if !ok {
				continue
			}
			from := blk * snapBlock
			lo, hi := max(from, off), min(from+int64(len(old)), off+int64(n))
			copy(p[lo-off:hi-off], old[lo-from:hi-from])
			break
		}
		later = false
	}
	return n, err
}

// epochIDs lists the held epochs newer than after (all with all), oldest
// first.
func (s *flushSnapshot) epochIDs(after uint32, all bool) []uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []uint32
	for _, e := range s.epochs {
		if all || tidAfter(e.id, after) {
			ids = append(ids, e.id)
		}
	}
	return ids
}

// pin makes snapshotView read epoch id (false: not held any more).
func (s *flushSnapshot) pin(id uint32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.epochs {
		if e.id == id {
			s.pinned = e
			return true
		}
	}
	return false
}

// pinNewest makes snapshotView read the newest epoch, or the live disk
// when none is held.
func (s *flushSnapshot) pinNewest() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pinned = nil
	if n := len(s.epochs); n > 0 {
		s.pinned = s.epochs[n-1]
	}
}

// release drops the epochs older than the newest (the tracker has read
// them; the newest stays the view until a later FLUSH) and reports whether
// epochs were given up since the last call.
func (s *flushSnapshot) release() (overflowed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	overflowed, s.overflow = s.overflow, false
	if n := len(s.epochs); n > 1 {
		for _, e := range s.epochs[:n-1] {
			for _, b := range e.saved {
				s.bytes -= len(b)
			}
		}
		s.epochs = append([]*flushEpoch(nil), s.epochs[n-1])
	}
	return overflowed
}

// flushView is an ext2 file system read through a flushSnapshot: its
// "commits" are the guest's FLUSHes, and its newest state is the disk at
// the last FLUSH (writes after it are the next sync's, maybe half done).
type flushView struct {
	ext4View
	s *flushSnapshot
}

func (v flushView) Newest() (uint32, bool) {
	ids := v.s.epochIDs(0, true)
	if len(ids) == 0 {
		return 0, false
	}
	return ids[len(ids)-1], true
}

func (v flushView) Commits(after uint32, max int) []uint32 {
	ids := v.s.epochIDs(after, false)
	if len(ids) > max {
		ids = ids[len(ids)-max:]
	}
	return ids
}

func (v flushView) Pin(id uint32) error {
	if !v.s.pin(id) {
		return ext4.ErrNoCommit
	}
	return v.fs.Refresh() // superblock and group descriptors as at that FLUSH
}

func (v flushView) Unpin() {
	v.s.pinNewest()
	v.fs.Refresh()
}

// Refresh reads the newest FLUSH's state.
func (v flushView) Refresh() error {
	v.s.pinNewest()
	return v.fs.Refresh()
}
