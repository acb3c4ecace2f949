package ext4

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Options tune Open.
type Options struct {
	// NoJournal ignores the journal: every read goes to the home location.
	NoJournal bool
}

// FS is a read-only view of an ext2/3/4 filesystem on dev: the home
// locations overlaid with what jbd2 recovery would replay from the journal
// as of the last Open or Refresh, or, after Pin, up to one transaction of
// it. It keeps the group descriptors and inode-table blocks it has read
// until the next Refresh, Pin or Unpin: a device that changes under it is
// seen after Refresh. An FS is not safe for concurrent use.
type FS struct {
	dev  io.ReaderAt
	size int64
	opts Options
	sb   *super
	gdt  map[uint64][]byte // descriptor blocks read since the last Refresh or Pin
	jnl  *journal          // nil without a journal or with NoJournal

	// While pinned, sb and gdt are the pinned view's; these hold the
	// newest state's, which Unpin puts back without reading anything.
	unpinnedSB  *super
	unpinnedGDT map[uint64][]byte

	// itab holds the inode-table blocks Inode has read since the last
	// Refresh, Pin or Unpin (forgetBlocks), up to itabBytes: a folder's
	// inodes share blocks (16 to a 4 KiB block, visited in hash order),
	// and a walk that stats each of them would otherwise read (and,
	// through the journal, copy) a block for every one.
	itab map[uint64][]byte
}

// itabBytes bounds the inode-table blocks an FS keeps between two view
// changes; past it they are all dropped and read again as needed.
const itabBytes = 1 << 20

// forgetBlocks drops what was read under the view that is changing (a
// Refresh, Pin or Unpin): the device or the pinned commit may differ now.
func (f *FS) forgetBlocks() { clear(f.itab) }

// inodeTableBlock is readBlock for Inode, through itab.
func (f *FS) inodeTableBlock(blk uint64) ([]byte, error) {
	if b, ok := f.itab[blk]; ok {
		return b, nil
	}
	b, err := f.readBlock(blk)
	if err != nil {
		return nil, err
	}
	if f.itab == nil {
		f.itab = map[uint64][]byte{}
	}
	if len(f.itab) >= itabBytes/f.sb.blockSize {
		clear(f.itab)
	}
	f.itab[blk] = b
	return b, nil
}

// Open reads the superblock (and, for ext3/4 without opts.NoJournal, scans
// the journal) of the filesystem on dev, which is size bytes long.
func Open(dev io.ReaderAt, size int64, opts Options) (*FS, error) {
	f := &FS{dev: dev, size: size, opts: opts}
	if err := f.readSuper(); err != nil {
		return nil, err
	}
	if err := f.openJournal(); err != nil {
		return nil, err
	}
	f.forgetBlocks() // the journal inode's block, read without the journal
	if f.jnl != nil {
		// The superblock itself is journaled (orphan list, resize, ...):
		// take the copy recovery would write.
		if err := f.readSuper(); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// readSuper reads the superblock through the journal overlay once there
// is one, else from its home location.
func (f *FS) readSuper() error {
	f.forgetBlocks() // a new superblock is a new view (Open, Refresh, Pin)
	b := make([]byte, superSize)
	if f.jnl != nil {
		bs := uint64(f.sb.blockSize)
		blk, err := f.readBlock(superOffset / bs)
		if err != nil {
			return fmt.Errorf("ext4: read superblock: %w", err)
		}
		copy(b, blk[superOffset%bs:])
	} else if err := f.readAt(b, superOffset); err != nil {
		return fmt.Errorf("ext4: read superblock: %w", err)
	}
	sb, err := parseSuper(b, f.size)
	if err != nil {
		return err
	}
	if f.sb != nil && (sb.blockSize != f.sb.blockSize || sb.inodeSize != f.sb.inodeSize ||
		sb.journalInum != f.sb.journalInum || sb.uuid != f.sb.uuid) {
		return corrupt(0, "superblock", "block size, inode size, journal inode or UUID changed under a mounted filesystem")
	}
	f.sb = sb
	f.gdt = map[uint64][]byte{}
	return nil
}

// Refresh re-reads the superblock and group descriptors and brings the
// journal overlay up to date: only journal blocks written after the last
// valid commit are read, unless the journal's tail moved (a checkpoint),
// in which case transactions before the new tail leave the overlay. It
// unpins (see Pin).
func (f *FS) Refresh() error {
	f.Unpin()
	f.forgetBlocks()
	if f.jnl != nil {
		if err := f.jnl.refresh(); err != nil {
			return err
		}
	}
	return f.readSuper()
}

// BlockSize is the filesystem block size in bytes.
func (f *FS) BlockSize() int { return f.sb.blockSize }

// Label is the volume label (s_volume_name) up to its first NUL.
func (f *FS) Label() string {
	l := f.sb.label[:]
	if i := bytes.IndexByte(l, 0); i >= 0 {
		l = l[:i]
	}
	return string(l)
}

// UUID is the filesystem UUID (s_uuid).
func (f *FS) UUID() [16]byte { return f.sb.uuid }

// Kind is "ext2", "ext3" or "ext4", by the features the superblock sets.
func (f *FS) Kind() string { return f.sb.kind() }

// Stats describes the journal overlay; all zero without a journal.
func (f *FS) Stats() Stats {
	if f.jnl == nil {
		return Stats{}
	}
	return f.jnl.stats()
}

func (f *FS) readAt(b []byte, off int64) error {
	if off < 0 || off > f.size || int64(len(b)) > f.size-off {
		return fmt.Errorf("read of %d bytes at byte %d beyond the %d-byte device", len(b), off, f.size)
	}
	n, err := f.dev.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// readHome reads filesystem block blk from its home location.
func (f *FS) readHome(blk uint64) ([]byte, error) {
	b := make([]byte, f.sb.blockSize)
	if err := f.readHomeInto(b, blk); err != nil {
		return nil, err
	}
	return b, nil
}

// readHomeInto is readHome into b (one block long).
func (f *FS) readHomeInto(b []byte, blk uint64) error {
	if blk >= f.sb.blocksCount {
		return fmt.Errorf("block %d beyond the filesystem's %d blocks", blk, f.sb.blocksCount)
	}
	if err := f.readAt(b, int64(blk)*int64(f.sb.blockSize)); err != nil {
		return fmt.Errorf("read block %d: %w", blk, err)
	}
	return nil
}

// readBlock reads filesystem block blk as recovery would leave it: the
// newest committed, unrevoked journal copy if any, else the home block.
func (f *FS) readBlock(blk uint64) ([]byte, error) {
	if f.jnl != nil {
		if b, ok, err := f.jnl.lookup(blk); ok || err != nil {
			return b, err
		}
	}
	return f.readHome(blk)
}

// groupDesc returns group g's descriptor and the block that holds it.
func (f *FS) groupDesc(g uint32) ([]byte, uint64, error) {
	if g >= f.sb.groups {
		return nil, 0, fmt.Errorf("group %d beyond the filesystem's %d", g, f.sb.groups)
	}
	blk, off := f.sb.descBlock(g)
	b, ok := f.gdt[blk]
	if !ok {
		var err error
		if b, err = f.readBlock(blk); err != nil {
			return nil, blk, fmt.Errorf("group descriptor %d: %w", g, err)
		}
		f.gdt[blk] = b
	}
	return b[off : off+int(f.sb.descSize)], blk, nil
}
