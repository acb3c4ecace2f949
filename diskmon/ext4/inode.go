package ext4

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"time"
)

// Inode flags (Documentation/filesystems/ext4/inodes.rst, i_flags).
const (
	flagEncrypt    = 0x800
	flagIndex      = 0x1000
	flagHugeFile   = 0x40000
	flagExtents    = 0x80000
	flagInlineData = 0x10000000
	flagCasefold   = 0x40000000
)

const (
	journalIno   = 8
	iBlockOffset = 0x28
	iBlockSize   = 60
)

// FileType is an inode's or a directory entry's file type.
type FileType uint8

const (
	TypeUnknown FileType = iota
	TypeRegular
	TypeDir
	TypeCharDev
	TypeBlockDev
	TypeFIFO
	TypeSocket
	TypeSymlink
)

var typeNames = [...]string{"unknown", "file", "dir", "chardev", "blockdev", "fifo", "socket", "symlink"}

func (t FileType) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("type%d", uint8(t))
}

// Inode is a decoded on-disk inode. Blocks counts 512-byte sectors (as
// stat's st_blocks) also for huge_file inodes that store filesystem blocks.
// Links is i_links_count as stored: with dir_nlink a folder with more than
// 64,998 subfolders stores 1. Times are UTC; Crtime is zero for inodes
// without the extra fields (128-byte inodes).
type Inode struct {
	Ino                         uint32
	Mode                        uint16
	UID, GID                    uint32
	Size                        uint64
	Links                       uint16
	Atime, Ctime, Mtime, Crtime time.Time
	Dtime                       uint32
	Flags                       uint32
	Generation                  uint32
	Blocks                      uint64

	raw []byte // the whole on-disk inode (inode size bytes)
	blk uint64 // the block that holds it, for error messages
}

// Type is the file type from the mode's S_IFMT bits.
func (i *Inode) Type() FileType {
	switch i.Mode & 0xF000 {
	case 0x8000:
		return TypeRegular
	case 0x4000:
		return TypeDir
	case 0xA000:
		return TypeSymlink
	case 0x2000:
		return TypeCharDev
	case 0x6000:
		return TypeBlockDev
	case 0x1000:
		return TypeFIFO
	case 0xC000:
		return TypeSocket
	}
	return TypeUnknown
}

// Perm is the permission bits with setuid, setgid and sticky as fs.FileMode.
func (i *Inode) Perm() fs.FileMode {
	m := fs.FileMode(i.Mode & 0o777)
	if i.Mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if i.Mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if i.Mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// iBlock is the 60-byte i_block area: block map, extent root, inline data
// or a fast symlink's target.
func (i *Inode) iBlock() []byte { return i.raw[iBlockOffset : iBlockOffset+iBlockSize] }

// extraIsize is the validated i_extra_isize: how many bytes past 128 the
// inode's fixed fields use; the rest up to the inode size holds xattrs.
func (i *Inode) extraIsize() int {
	if len(i.raw) <= 128 {
		return 0
	}
	n := int(binary.LittleEndian.Uint16(i.raw[0x80:]))
	if n < 4 || n%4 != 0 || 128+n > len(i.raw) {
		return 0
	}
	return n
}

// decodeTime combines a 32-bit seconds field with its *_extra field: the
// low 2 bits extend the epoch, the rest are nanoseconds (inodes.rst,
// "Inode Timestamps").
func decodeTime(sec uint32, extra uint32, hasExtra bool) time.Time {
	s := int64(int32(sec))
	var ns int64
	if hasExtra {
		s += int64(extra&3) << 32
		ns = int64(extra >> 2)
		if ns > 999999999 {
			ns = 0
		}
	}
	return time.Unix(s, ns).UTC()
}

// parseInode decodes raw (one inode, inode-size bytes).
func (s *super) parseInode(ino uint32, raw []byte, blk uint64) *Inode {
	le := binary.LittleEndian
	in := &Inode{
		Ino:        ino,
		Mode:       le.Uint16(raw[0x0:]),
		UID:        uint32(le.Uint16(raw[0x2:])) | uint32(le.Uint16(raw[0x78:]))<<16,
		GID:        uint32(le.Uint16(raw[0x18:])) | uint32(le.Uint16(raw[0x7A:]))<<16,
		Size:       uint64(le.Uint32(raw[0x4:])) | uint64(le.Uint32(raw[0x6C:]))<<32,
		Links:      le.Uint16(raw[0x1A:]),
		Dtime:      le.Uint32(raw[0x14:]),
		Flags:      le.Uint32(raw[0x20:]),
		Generation: le.Uint32(raw[0x64:]),
		raw:        raw,
		blk:        blk,
	}
	extra := in.extraIsize()
	// A field of the extra area exists when i_extra_isize covers it.
	has := func(off int) bool { return 128+extra >= off+4 && len(raw) >= off+4 }
	field := func(off int) uint32 {
		if has(off) {
			return le.Uint32(raw[off:])
		}
		return 0
	}
	in.Ctime = decodeTime(le.Uint32(raw[0xC:]), field(0x84), has(0x84))
	in.Mtime = decodeTime(le.Uint32(raw[0x10:]), field(0x88), has(0x88))
	in.Atime = decodeTime(le.Uint32(raw[0x8:]), field(0x8C), has(0x8C))
	if has(0x90) {
		in.Crtime = decodeTime(field(0x90), field(0x94), has(0x94))
	}
	blocks := uint64(le.Uint32(raw[0x1C:]))
	if s.roCompat&roHugeFile != 0 {
		blocks |= uint64(le.Uint16(raw[0x74:])) << 32
		if in.Flags&flagHugeFile != 0 {
			blocks *= uint64(s.blockSize / 512)
		}
	}
	in.Blocks = blocks
	return in
}

// Inode reads inode ino through the journal overlay.
func (f *FS) Inode(ino uint32) (*Inode, error) {
	s := f.sb
	if ino == 0 || ino > s.inodesCount {
		return nil, fmt.Errorf("ext4: inode %d out of range 1..%d: %w", ino, s.inodesCount, ErrNotExist)
	}
	g := (ino - 1) / s.inodesPerGroup
	desc, dblk, err := f.groupDesc(g)
	if err != nil {
		return nil, fmt.Errorf("read inode %d: %w", ino, err)
	}
	table := s.inodeTable(desc)
	off := uint64((ino-1)%s.inodesPerGroup) * uint64(s.inodeSize)
	blk := table + off/uint64(s.blockSize)
	if table == 0 || blk < table || blk >= s.blocksCount {
		return nil, corrupt(dblk, "group descriptor", "group %d inode table at block %d (inode %d)", g, table, ino)
	}
	b, err := f.inodeTableBlock(blk)
	if err != nil {
		return nil, fmt.Errorf("read inode %d: %w", ino, err)
	}
	o := int(off % uint64(s.blockSize))
	raw := make([]byte, s.inodeSize)
	copy(raw, b[o:])
	if s.metadataCsum() {
		if err := s.checkInodeCsum(ino, raw); err != nil {
			return nil, &CorruptError{Block: blk, What: fmt.Sprintf("inode %d", ino), Err: err}
		}
	}
	return s.parseInode(ino, raw, blk), nil
}

// checkInodeCsum verifies metadata_csum's inode checksum
// (inodes.rst: crc32c(seed, inode number, generation, inode) with the
// checksum fields zeroed). An all-zero never-used inode passes: mke2fs
// leaves unused inode table blocks zeroed (lazy_itable_init).
func (s *super) checkInodeCsum(ino uint32, raw []byte) error {
	le := binary.LittleEndian
	stored := uint32(le.Uint16(raw[0x7C:]))
	var e [8]byte
	le.PutUint32(e[0:], ino)
	le.PutUint32(e[4:], le.Uint32(raw[0x64:]))
	c := crc32cRaw(s.checksumSeed, e[:4])
	c = crc32cRaw(c, e[4:])
	// The inode with its checksum fields read as zero, in pieces: no copy
	// of it (the tracker checks every inode of a watched folder at each
	// rescan).
	var zero [2]byte
	c = crc32cRaw(c, raw[:0x7C])
	c = crc32cRaw(c, zero[:])
	hasHi := len(raw) > 128 && int(le.Uint16(raw[0x80:])) >= 4
	if hasHi {
		stored |= uint32(le.Uint16(raw[0x82:])) << 16
		c = crc32cRaw(c, raw[0x7E:0x82])
		c = crc32cRaw(c, zero[:])
		c = crc32cRaw(c, raw[0x84:])
	} else {
		c = crc32cRaw(c, raw[0x7E:])
	}
	if !hasHi {
		c &= 0xFFFF
	}
	if c == stored {
		return nil
	}
	for _, v := range raw {
		if v != 0 {
			return fmt.Errorf("inode checksum %#x, stored %#x", c, stored)
		}
	}
	return nil
}
