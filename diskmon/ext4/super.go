package ext4

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/bits"
)

// Feature flags of the ext4 superblock (Documentation/filesystems/ext4/super.rst).
const (
	compatHasJournal   = 0x4
	compatExtAttr      = 0x8
	compatResizeInode  = 0x10
	compatDirIndex     = 0x20
	compatSparseSuper2 = 0x200
	compatFastCommit   = 0x400

	incompatCompression = 0x1
	incompatFiletype    = 0x2
	incompatRecover     = 0x4
	incompatJournalDev  = 0x8
	incompatMetaBG      = 0x10
	incompatExtents     = 0x40
	incompat64bit       = 0x80
	incompatMMP         = 0x100
	incompatFlexBG      = 0x200
	incompatEAInode     = 0x400
	incompatDirData     = 0x1000
	incompatCsumSeed    = 0x2000
	incompatLargeDir    = 0x4000
	incompatInlineData  = 0x8000
	incompatEncrypt     = 0x10000
	incompatCasefold    = 0x20000

	// Flags whose layout this package reads; others are refused.
	incompatKnown = incompatFiletype | incompatRecover | incompatMetaBG | incompatExtents |
		incompat64bit | incompatMMP | incompatFlexBG | incompatEAInode | incompatCsumSeed |
		incompatLargeDir | incompatInlineData | incompatEncrypt | incompatCasefold

	roSparseSuper  = 0x1
	roLargeFile    = 0x2
	roHugeFile     = 0x8
	roGdtCsum      = 0x10
	roDirNlink     = 0x20
	roExtraIsize   = 0x40
	roBigalloc     = 0x200
	roMetadataCsum = 0x400
)

const (
	superOffset = 1024
	superSize   = 1024
	superMagic  = 0xEF53
	rootIno     = 2
	maxGroups   = 1 << 24 // 2^24 groups of 32768 4-KiB blocks is 2^51 bytes: beyond any disk served here
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32cRaw is the kernel's crc32c_le: the register without the pre- and
// post-inversion that hash/crc32 applies, which is what ext4 and jbd2 chain.
func crc32cRaw(c uint32, p []byte) uint32 { return ^crc32.Update(^c, castagnoli, p) }

// super is the decoded superblock: only the fields this package uses.
type super struct {
	inodesCount     uint32
	blocksCount     uint64
	firstDataBlock  uint32
	logBlockSize    uint32
	blocksPerGroup  uint32
	inodesPerGroup  uint32
	revLevel        uint32
	inodeSize       uint16
	compat          uint32
	incompat        uint32
	roCompat        uint32
	uuid            [16]byte
	label           [16]byte
	journalInum     uint32
	journalDev      uint32
	descSize        uint16
	firstMetaBG     uint32
	backupBGs       [2]uint32
	minExtraIsize   uint16
	checksumSeed    uint32
	blockSize       int
	groups          uint32
	descPerBlock    uint32
	gdtBlocksNeeded uint64
}

func (s *super) has(compat, incompat, ro uint32) bool {
	return s.compat&compat != 0 || s.incompat&incompat != 0 || s.roCompat&ro != 0
}

// parseSuper decodes and validates the 1024 bytes at byte 1024 of the
// device. devSize bounds the block count (a guest may lie about it).
func parseSuper(b []byte, devSize int64) (*super, error) {
	if len(b) < superSize {
		return nil, corrupt(0, "superblock", "short read (%d bytes)", len(b))
	}
	le := binary.LittleEndian
	if m := le.Uint16(b[0x38:]); m != superMagic {
		return nil, corrupt(0, "superblock", "bad magic %#x (not ext2/3/4)", m)
	}
	s := &super{
		inodesCount:    le.Uint32(b[0x0:]),
		blocksCount:    uint64(le.Uint32(b[0x4:])),
		firstDataBlock: le.Uint32(b[0x14:]),
		logBlockSize:   le.Uint32(b[0x18:]),
		blocksPerGroup: le.Uint32(b[0x20:]),
		inodesPerGroup: le.Uint32(b[0x28:]),
		revLevel:       le.Uint32(b[0x4C:]),
		inodeSize:      128,
		compat:         le.Uint32(b[0x5C:]),
		incompat:       le.Uint32(b[0x60:]),
		roCompat:       le.Uint32(b[0x64:]),
		journalInum:    le.Uint32(b[0xE0:]),
		journalDev:     le.Uint32(b[0xE4:]),
		descSize:       32,
		firstMetaBG:    le.Uint32(b[0x104:]),
		minExtraIsize:  le.Uint16(b[0x15C:]),
		backupBGs:      [2]uint32{le.Uint32(b[0x24C:]), le.Uint32(b[0x250:])},
	}
	copy(s.uuid[:], b[0x68:0x78])
	copy(s.label[:], b[0x78:0x88])
	if s.revLevel == 0 {
		// Revision 0 has fixed inode size and no feature flags.
		s.compat, s.incompat, s.roCompat = 0, 0, 0
	} else {
		s.inodeSize = le.Uint16(b[0x58:])
	}
	if s.incompat&incompat64bit != 0 {
		s.blocksCount |= uint64(le.Uint32(b[0x150:])) << 32
		s.descSize = le.Uint16(b[0xFE:])
	}
	if s.incompat&incompatJournalDev != 0 {
		return nil, fmt.Errorf("ext4: this is an external journal device, not a filesystem: %w", ErrUnsupported)
	}
	if u := s.incompat &^ incompatKnown; u != 0 {
		return nil, fmt.Errorf("ext4: incompatible features %#x: %w", u, ErrUnsupported)
	}
	if s.roCompat&roBigalloc != 0 {
		// Cluster allocation changes no metadata this package reads except
		// that blocks_per_group counts clusters; refuse rather than guess.
		return nil, fmt.Errorf("ext4: bigalloc: %w", ErrUnsupported)
	}
	if s.compat&compatHasJournal != 0 && s.journalInum == 0 && s.journalDev != 0 {
		return nil, fmt.Errorf("ext4: external journal (device %#x): %w", s.journalDev, ErrUnsupported)
	}
	if s.logBlockSize > 6 { // 1 KiB << 6 = 64 KiB, the largest ext4 block
		return nil, corrupt(0, "superblock", "block size 1024<<%d", s.logBlockSize)
	}
	s.blockSize = 1024 << s.logBlockSize
	if s.metadataCsum() {
		if s.incompat&incompatCsumSeed != 0 {
			s.checksumSeed = le.Uint32(b[0x270:])
		} else {
			s.checksumSeed = crc32cRaw(^uint32(0), s.uuid[:])
		}
		want := le.Uint32(b[0x3FC:])
		if got := crc32cRaw(^uint32(0), b[:0x3FC]); got != want {
			return nil, corrupt(0, "superblock", "checksum %#x, stored %#x", got, want)
		}
	}
	if s.inodeSize < 128 || s.inodeSize > uint16(s.blockSize) || bits.OnesCount16(s.inodeSize) != 1 {
		return nil, corrupt(0, "superblock", "inode size %d", s.inodeSize)
	}
	if s.incompat&incompat64bit != 0 {
		if s.descSize < 64 || s.descSize > 1024 || bits.OnesCount16(s.descSize) != 1 {
			return nil, corrupt(0, "superblock", "group descriptor size %d", s.descSize)
		}
	} else {
		s.descSize = 32
	}
	bs := uint64(s.blockSize)
	if s.blocksPerGroup == 0 || s.blocksPerGroup > 8*uint32(s.blockSize) {
		return nil, corrupt(0, "superblock", "%d blocks per group", s.blocksPerGroup)
	}
	if s.inodesPerGroup == 0 || s.inodesPerGroup > 8*uint32(s.blockSize) {
		return nil, corrupt(0, "superblock", "%d inodes per group", s.inodesPerGroup)
	}
	if want := uint32(0); s.blockSize == 1024 {
		want = 1
		if s.firstDataBlock != want {
			return nil, corrupt(0, "superblock", "first data block %d with 1 KiB blocks", s.firstDataBlock)
		}
	} else if s.firstDataBlock != 0 {
		return nil, corrupt(0, "superblock", "first data block %d with %d-byte blocks", s.firstDataBlock, s.blockSize)
	}
	if s.blocksCount <= uint64(s.firstDataBlock) {
		return nil, corrupt(0, "superblock", "block count %d", s.blocksCount)
	}
	if hi, lo := bits.Mul64(s.blocksCount, bs); hi != 0 || lo > uint64(devSize) {
		return nil, corrupt(0, "superblock", "%d blocks of %d bytes exceed the %d-byte device", s.blocksCount, bs, devSize)
	}
	groups := (s.blocksCount - uint64(s.firstDataBlock) + uint64(s.blocksPerGroup) - 1) / uint64(s.blocksPerGroup)
	if groups == 0 || groups > maxGroups {
		return nil, corrupt(0, "superblock", "%d block groups", groups)
	}
	s.groups = uint32(groups)
	if uint64(s.inodesCount) > groups*uint64(s.inodesPerGroup) || s.inodesCount < rootIno {
		return nil, corrupt(0, "superblock", "%d inodes in %d groups of %d", s.inodesCount, groups, s.inodesPerGroup)
	}
	s.descPerBlock = uint32(s.blockSize) / uint32(s.descSize)
	s.gdtBlocksNeeded = (groups + uint64(s.descPerBlock) - 1) / uint64(s.descPerBlock)
	if s.incompat&incompatMetaBG == 0 || uint64(s.firstMetaBG) > s.gdtBlocksNeeded {
		s.firstMetaBG = uint32(s.gdtBlocksNeeded)
	}
	return s, nil
}

func (s *super) metadataCsum() bool { return s.roCompat&roMetadataCsum != 0 }

// hasSuper reports whether group g holds a superblock backup (and so a
// copy of the group descriptor table right after it).
func (s *super) hasSuper(g uint64) bool {
	if g == 0 {
		return true
	}
	if s.compat&compatSparseSuper2 != 0 {
		return g == uint64(s.backupBGs[0]) || g == uint64(s.backupBGs[1])
	}
	if s.roCompat&roSparseSuper == 0 {
		return true
	}
	if g&1 == 0 {
		return false
	}
	for _, p := range []uint64{3, 5, 7} {
		n := g
		for n%p == 0 {
			n /= p
		}
		if n == 1 {
			return true
		}
	}
	return false
}

// descBlock is the filesystem block holding the group descriptor of group
// g, and the descriptor's byte offset in it. Without meta_bg the table
// follows the primary superblock; with meta_bg, descriptor block i (from
// s_first_meta_bg on) lives in the first group of its meta group
// (Documentation/filesystems/ext4/group_descr.rst, "meta_bg").
func (s *super) descBlock(g uint32) (uint64, int) {
	idx := g / s.descPerBlock
	off := int(g%s.descPerBlock) * int(s.descSize)
	if idx < s.firstMetaBG {
		return uint64(s.firstDataBlock) + 1 + uint64(idx), off
	}
	first := uint64(idx) * uint64(s.descPerBlock)
	blk := uint64(s.firstDataBlock) + first*uint64(s.blocksPerGroup)
	if s.hasSuper(first) {
		blk++
	}
	return blk, off
}

// inodeTable decodes the inode table location from a group descriptor.
func (s *super) inodeTable(desc []byte) uint64 {
	t := uint64(binary.LittleEndian.Uint32(desc[0x8:]))
	if s.descSize >= 64 {
		t |= uint64(binary.LittleEndian.Uint32(desc[0x28:])) << 32
	}
	return t
}

// Kind names the filesystem by its features the way the kernel's
// ext2/ext3 drivers would accept it: ext2 has no journal, ext3 has a
// journal and nothing ext4-only.
func (s *super) kind() string {
	ext4Only := s.incompat&(incompatExtents|incompat64bit|incompatFlexBG|incompatInlineData|
		incompatLargeDir|incompatEncrypt|incompatCasefold|incompatMMP|incompatEAInode|incompatCsumSeed) != 0 ||
		s.roCompat&(roHugeFile|roGdtCsum|roDirNlink|roExtraIsize|roMetadataCsum|roBigalloc) != 0 ||
		s.compat&compatFastCommit != 0
	switch {
	case ext4Only:
		return "ext4"
	case s.compat&compatHasJournal != 0:
		return "ext3"
	}
	return "ext2"
}
