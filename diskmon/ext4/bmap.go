package ext4

import (
	"encoding/binary"
	"fmt"
)

// Bounds on walks over guest-controlled block maps.
const (
	maxExtentDepth = 5       // the kernel's EXT4_MAX_EXTENT_DEPTH
	maxMapNodes    = 1 << 14 // extent/indirect blocks visited per file: >= 4 GiB of file at 1 KiB blocks
	maxRuns        = 1 << 20 // mapped runs per file
	extentMagic    = 0xF30A
)

// run maps count logical blocks from logical to physical; physical 0 is
// a hole (or an uninitialised extent, which reads as zeros).
type run struct {
	logical, physical, count uint64
}

// mapper builds the run list of one inode, bounded to the first limit
// logical blocks.
type mapper struct {
	f     *FS
	ino   uint32
	limit uint64
	runs  []run
	seen  map[uint64]bool // map blocks visited: a second visit is a loop
	nodes int
}

func (m *mapper) add(logical, physical, count uint64) error {
	if logical >= m.limit || count == 0 {
		return nil
	}
	if count > m.limit-logical {
		count = m.limit - logical
	}
	if physical != 0 && (physical >= m.f.sb.blocksCount || count > m.f.sb.blocksCount-physical) {
		return fmt.Errorf("inode %d: blocks %d+%d beyond the filesystem's %d", m.ino, physical, count, m.f.sb.blocksCount)
	}
	if n := len(m.runs); n > 0 {
		last := &m.runs[n-1]
		if last.logical+last.count == logical && ((last.physical == 0 && physical == 0) ||
			(last.physical != 0 && physical != 0 && last.physical+last.count == physical)) {
			last.count += count
			return nil
		}
	}
	if len(m.runs) >= maxRuns {
		return fmt.Errorf("inode %d: more than %d block runs: %w", m.ino, maxRuns, ErrTooLarge)
	}
	m.runs = append(m.runs, run{logical, physical, count})
	return nil
}

// visit reads one map block (extent node or indirect block), refusing a
// block seen before in this walk and more than maxMapNodes blocks.
func (m *mapper) visit(blk uint64, what string) ([]byte, error) {
	if blk == 0 || blk >= m.f.sb.blocksCount {
		return nil, corrupt(blk, what, "inode %d points outside the filesystem", m.ino)
	}
	if m.seen[blk] {
		return nil, corrupt(blk, what, "inode %d visits this block twice (loop)", m.ino)
	}
	m.nodes++
	if m.nodes > maxMapNodes {
		return nil, corrupt(blk, what, "inode %d: more than %d map blocks", m.ino, maxMapNodes)
	}
	m.seen[blk] = true
	return m.f.readBlock(blk)
}

// blockRuns maps the first limit logical blocks of in.
func (f *FS) blockRuns(in *Inode, limit uint64) ([]run, error) {
	m := &mapper{f: f, ino: in.Ino, limit: limit, seen: map[uint64]bool{}}
	var err error
	if in.Flags&flagExtents != 0 {
		err = m.extents(in.iBlock(), in.blk, 0, -1, 0, ^uint64(0))
	} else {
		err = m.indirect(in)
	}
	if err != nil {
		if _, ok := err.(*CorruptError); !ok {
			err = &CorruptError{Block: in.blk, What: fmt.Sprintf("inode %d block map", in.Ino), Err: err}
		}
		return nil, err
	}
	return m.runs, nil
}

// extents walks one extent tree node (Documentation/filesystems/ext4/
// ifork.html). want is the depth the parent expects (-1 at the root), and
// [lo, hi) the logical range the parent's index entry covers.
func (m *mapper) extents(b []byte, blk uint64, level int, want int, lo, hi uint64) error {
	le := binary.LittleEndian
	what := fmt.Sprintf("extent node of inode %d", m.ino)
	if len(b) < 12 || le.Uint16(b[0:]) != extentMagic {
		return corrupt(blk, what, "bad extent header magic")
	}
	entries, max, depth := int(le.Uint16(b[2:])), int(le.Uint16(b[4:])), int(le.Uint16(b[6:]))
	if max == 0 || 12+12*max > len(b) || entries > max {
		return corrupt(blk, what, "%d entries, max %d in %d bytes", entries, max, len(b))
	}
	if depth > maxExtentDepth || (want >= 0 && depth != want) || level > maxExtentDepth {
		return corrupt(blk, what, "depth %d at level %d", depth, level)
	}
	prev, next := int64(-1), uint64(0) // next: end of the previous leaf extent
	for i := 0; i < entries; i++ {
		e := b[12+12*i : 24+12*i]
		first := uint64(le.Uint32(e[0:]))
		if int64(first) <= prev || first < next || first < lo || first >= hi {
			return corrupt(blk, what, "entry %d starts at logical block %d, out of order", i, first)
		}
		prev = int64(first)
		if first >= m.limit {
			return nil
		}
		if depth == 0 {
			n := uint64(le.Uint16(e[4:]))
			uninit := n > 32768
			if uninit {
				n -= 32768
			}
			phys := uint64(le.Uint16(e[6:]))<<32 | uint64(le.Uint32(e[8:]))
			if n == 0 || first+n > hi {
				return corrupt(blk, what, "extent %d: %d blocks at logical %d", i, n, first)
			}
			next = first + n
			if uninit {
				phys = 0
			}
			if err := m.add(first, phys, n); err != nil {
				return err
			}
			continue
		}
		child := uint64(le.Uint16(e[8:]))<<32 | uint64(le.Uint32(e[4:]))
		end := hi
		if i+1 < entries {
			end = uint64(le.Uint32(b[24+12*i:]))
		}
		cb, err := m.visit(child, what)
		if err != nil {
			return err
		}
		if err := m.extents(cb, child, level+1, depth-1, first, end); err != nil {
			return err
		}
	}
	return nil
}

// indirect walks the classic block map: 12 direct pointers, then single,
// double and triple indirect blocks (Documentation/filesystems/ext4/
// ifork.html, "Direct/Indirect Block Addressing").
func (m *mapper) indirect(in *Inode) error {
	le := binary.LittleEndian
	ib := in.iBlock()
	for i := 0; i < 12; i++ {
		p := uint64(le.Uint32(ib[4*i:]))
		if err := m.add(uint64(i), p, 1); err != nil {
			return err
		}
	}
	per := uint64(m.f.sb.blockSize / 4)
	base := uint64(12)
	span := per
	for level := 1; level <= 3; level++ {
		if base >= m.limit {
			return nil
		}
		p := uint64(le.Uint32(ib[4*(11+level):]))
		if p != 0 {
			if err := m.indirectBlock(p, level, base); err != nil {
				return err
			}
		} else if err := m.add(base, 0, span); err != nil {
			return err
		}
		base += span
		span *= per
	}
	return nil
}

func (m *mapper) indirectBlock(blk uint64, level int, base uint64) error {
	what := fmt.Sprintf("indirect block (level %d) of inode %d", level, m.ino)
	b, err := m.visit(blk, what)
	if err != nil {
		return err
	}
	per := uint64(len(b) / 4)
	span := uint64(1)
	for i := 1; i < level; i++ {
		span *= per
	}
	le := binary.LittleEndian
	for i := uint64(0); i < per; i++ {
		l := base + i*span
		if l >= m.limit {
			return nil
		}
		p := uint64(le.Uint32(b[4*i:]))
		if level == 1 || p == 0 {
			if err := m.add(l, p, span); err != nil {
				return err
			}
			continue
		}
		if err := m.indirectBlock(p, level-1, l); err != nil {
			return err
		}
	}
	return nil
}

// physBlock finds logical block l in runs (sorted by logical); 0 is a hole.
func physBlock(runs []run, l uint64) uint64 {
	lo, hi := 0, len(runs)
	for lo < hi {
		mid := (lo + hi) / 2
		r := runs[mid]
		switch {
		case l < r.logical:
			hi = mid
		case l >= r.logical+r.count:
			lo = mid + 1
		default:
			if r.physical == 0 {
				return 0
			}
			return r.physical + (l - r.logical)
		}
	}
	return 0
}
