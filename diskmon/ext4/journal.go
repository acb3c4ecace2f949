package ext4

import (
	"encoding/binary"
	"fmt"
	"time"
)

// jbd2 on-disk constants (Documentation/filesystems/ext4/journal.rst).
// Every journal field is big-endian.
const (
	jMagic = 0xC03B3998

	jDescriptor = 1
	jCommit     = 2
	jSuperV1    = 3
	jSuperV2    = 4
	jRevoke     = 5

	jIncompatRevoke      = 0x1
	jIncompat64bit       = 0x2
	jIncompatAsyncCommit = 0x4
	jIncompatCsumV2      = 0x8
	jIncompatCsumV3      = 0x10
	jIncompatFastCommit  = 0x20
	jIncompatKnown       = 0x3F

	tagEscape   = 0x1
	tagSameUUID = 0x2
	tagLastTag  = 0x8

	jHeaderSize     = 12
	jFastCommitDflt = 256 // JBD2_DEFAULT_FAST_COMMIT_BLOCKS
)

// Stats describes the journal overlay's newest state (a Pin does not
// change it).
type Stats struct {
	Transactions   uint64    // distinct committed transactions read since Open
	Active         int       // committed transactions in the overlay window now
	BlocksOverlaid int       // home blocks whose reads come from the journal now
	LastSequence   uint32    // sequence of the newest committed transaction (0: none)
	LastCommit     time.Time // that commit block's timestamp (zero: none)
	BadDataBlocks  uint64    // journal data blocks skipped for a failed tag checksum
	Rescans        uint64    // scans restarted from the journal superblock's s_start
	Tail, Head     uint32    // journal blocks: s_start, and where the next commit will be looked for
}

type jcopy struct {
	log     uint32 // journal block that holds the copy
	seq     uint32
	escaped bool
}

// jtrans is one committed transaction in the overlay window, kept so that
// a checkpoint can drop exactly its entries.
type jtrans struct {
	seq, start uint32
	homes      []uint64
	revokes    []uint64
}

type journal struct {
	f        *FS
	runs     []run // journal inode: logical block -> filesystem block
	nblk     uint32
	bs       int
	first    uint32 // first log block (s_first)
	last     uint32 // one past the last log block (fast-commit area excluded)
	incompat uint32
	csum     bool // CSUM_V2 or CSUM_V3
	csumV3   bool
	seed     uint32
	tagSz    int

	sbStart, sbSeq uint32 // s_start and s_sequence the window was built from
	next, nextSeq  uint32 // where the next transaction is looked for
	used           uint32 // log blocks from sbStart to next
	trans          []jtrans
	copies         map[uint64]jcopy
	revoked        map[uint64]uint32 // newest revoke sequence per home block
	// The history a pinned view needs (pin.go): per home block the
	// copies, and the revoke sequences, that a newer one superseded but
	// whose transaction is still in the window, oldest first. Blocks
	// journaled once have no entry, so this costs nothing on the common
	// path and at most one entry per journal tag in the window.
	older    map[uint64][]jcopy
	olderRev map[uint64][]uint32
	pinned   bool
	pinSeq   uint32
	st       Stats
	// scratch holds a data block while its checksum is checked: every
	// commit checks each of its blocks once, and they are not kept.
	scratch []byte
}

func tidGT(a, b uint32) bool { return int32(a-b) > 0 }

// openJournal finds the internal journal (s_journal_inum) and scans it.
func (f *FS) openJournal() error {
	if f.opts.NoJournal || f.sb.compat&compatHasJournal == 0 {
		return nil
	}
	ino := f.sb.journalInum
	if ino == 0 {
		ino = journalIno
	}
	in, err := f.Inode(ino)
	if err != nil {
		return fmt.Errorf("ext4: journal inode: %w", err)
	}
	bs := uint64(f.sb.blockSize)
	n := in.Size / bs
	if n < 4 || n > 1<<31 {
		return corrupt(in.blk, "journal inode", "journal of %d bytes", in.Size)
	}
	runs, err := f.blockRuns(in, n)
	if err != nil {
		return fmt.Errorf("ext4: journal inode: %w", err)
	}
	j := &journal{f: f, runs: runs, nblk: uint32(n), bs: f.sb.blockSize}
	if err := j.reset(); err != nil {
		return err
	}
	f.jnl = j
	return nil
}

func (j *journal) readLog(n uint32) ([]byte, error) {
	b := make([]byte, j.f.sb.blockSize)
	if err := j.readLogInto(b, n); err != nil {
		return nil, err
	}
	return b, nil
}

// readLogInto is readLog into b (one block long).
func (j *journal) readLogInto(b []byte, n uint32) error {
	if n >= j.nblk {
		return corrupt(uint64(n), "journal", "log block %d beyond the journal's %d", n, j.nblk)
	}
	p := physBlock(j.runs, uint64(n))
	if p == 0 {
		return corrupt(uint64(n), "journal", "log block %d is a hole in the journal inode", n)
	}
	return j.f.readHomeInto(b, p)
}

// jsuper is the part of the journal superblock the scan depends on.
type jsuper struct {
	maxlen, first, seq, start, incompat, numFC uint32
	uuid                                       [16]byte
}

func (j *journal) readSuper() (*jsuper, error) {
	b, err := j.readLog(0)
	if err != nil {
		return nil, fmt.Errorf("ext4: journal superblock: %w", err)
	}
	be := binary.BigEndian
	what := "journal superblock"
	if be.Uint32(b[0:]) != jMagic {
		return nil, corrupt(0, what, "bad magic %#x", be.Uint32(b[0:]))
	}
	t := be.Uint32(b[4:])
	if t != jSuperV1 && t != jSuperV2 {
		return nil, corrupt(0, what, "block type %d", t)
	}
	if bsz := be.Uint32(b[0xC:]); bsz != uint32(j.bs) {
		return nil, corrupt(0, what, "journal block size %d, filesystem %d", bsz, j.bs)
	}
	s := &jsuper{maxlen: be.Uint32(b[0x10:]), first: be.Uint32(b[0x14:]), seq: be.Uint32(b[0x18:]), start: be.Uint32(b[0x1C:])}
	if t == jSuperV2 {
		s.incompat = be.Uint32(b[0x28:])
		copy(s.uuid[:], b[0x30:0x40])
		s.numFC = be.Uint32(b[0x54:])
	}
	if u := s.incompat &^ jIncompatKnown; u != 0 {
		return nil, fmt.Errorf("ext4: journal incompatible features %#x: %w", u, ErrUnsupported)
	}
	if s.incompat&(jIncompatCsumV2|jIncompatCsumV3) != 0 {
		// jbd2_superblock_csum: crc32c(~0) over the 1024-byte struct.
		want := be.Uint32(b[0xFC:])
		tmp := make([]byte, 1024)
		copy(tmp, b)
		copy(tmp[0xFC:0x100], []byte{0, 0, 0, 0})
		if got := crc32cRaw(^uint32(0), tmp); got != want {
			return nil, corrupt(0, what, "checksum %#x, stored %#x", got, want)
		}
	}
	if s.maxlen > j.nblk || s.first == 0 || s.first >= s.maxlen {
		return nil, corrupt(0, what, "log blocks %d..%d in a %d-block journal", s.first, s.maxlen, j.nblk)
	}
	if s.start != 0 && (s.start < s.first || s.start >= s.maxlen) {
		return nil, corrupt(0, what, "log start %d outside %d..%d", s.start, s.first, s.maxlen)
	}
	return s, nil
}

// reset re-reads the journal superblock and rebuilds the overlay from
// s_start, as recovery would.
func (j *journal) reset() error {
	s, err := j.readSuper()
	if err != nil {
		return err
	}
	j.first, j.last, j.incompat = s.first, s.maxlen, s.incompat
	if s.incompat&jIncompatFastCommit != 0 {
		fc := s.numFC
		if fc == 0 {
			fc = jFastCommitDflt
		}
		if fc >= j.last-j.first {
			return corrupt(0, "journal superblock", "%d fast-commit blocks in a %d-block log", fc, j.last-j.first)
		}
		j.last -= fc
	}
	j.csumV3 = s.incompat&jIncompatCsumV3 != 0
	j.csum = j.csumV3 || s.incompat&jIncompatCsumV2 != 0
	j.seed = crc32cRaw(^uint32(0), s.uuid[:])
	switch {
	case j.csumV3:
		j.tagSz = 16
	default:
		j.tagSz = 12
		if j.csum {
			j.tagSz += 2
		}
		if s.incompat&jIncompat64bit == 0 {
			j.tagSz -= 4
		}
	}
	j.sbStart, j.sbSeq = s.start, s.seq
	j.next, j.nextSeq, j.used = s.start, s.seq, 0
	j.trans = nil
	j.copies = map[uint64]jcopy{}
	j.revoked = map[uint64]uint32{}
	j.older = map[uint64][]jcopy{}
	j.olderRev = map[uint64][]uint32{}
	j.st.Rescans++
	if s.start == 0 { // clean journal: nothing to replay
		return nil
	}
	return j.scan()
}

// refresh follows the journal: a moved tail drops the transactions before
// it; new commits after the head are added.
func (j *journal) refresh() error {
	s, err := j.readSuper()
	if err != nil {
		return err
	}
	if s.first != j.first || s.maxlen < j.last || s.incompat != j.incompat {
		return j.reset()
	}
	if s.start != j.sbStart || s.seq != j.sbSeq {
		if s.start == 0 || j.sbStart == 0 || !j.dropBefore(s.start, s.seq) {
			return j.reset()
		}
		j.sbStart, j.sbSeq = s.start, s.seq
	}
	return j.scan()
}

// dropBefore removes the transactions older than seq, which the
// checkpoint wrote home, if the window holds seq starting at start (or
// everything was checkpointed and start is the head).
func (j *journal) dropBefore(start, seq uint32) bool {
	k := -1
	for i, t := range j.trans {
		if t.seq == seq {
			if t.start != start {
				return false
			}
			k = i
			break
		}
	}
	if k < 0 {
		if seq != j.nextSeq || start != j.next {
			return false
		}
		k = len(j.trans)
	}
	for _, t := range j.trans[:k] {
		// The window drops its oldest transactions first, so a dropped
		// copy or revoke is the newest of its block or at the front of
		// the block's history.
		for _, h := range t.homes {
			if c, ok := j.copies[h]; ok && c.seq == t.seq {
				delete(j.copies, h)
				delete(j.older, h)
				continue
			}
			if o := j.older[h]; len(o) > 0 {
				i := 0
				for i < len(o) && o[i].seq == t.seq {
					i++
				}
				if i == len(o) {
					delete(j.older, h)
				} else if i > 0 {
					j.older[h] = o[i:]
				}
			}
		}
		for _, r := range t.revokes {
			if s, ok := j.revoked[r]; ok && s == t.seq {
				delete(j.revoked, r)
				delete(j.olderRev, r)
				continue
			}
			if o := j.olderRev[r]; len(o) > 0 {
				i := 0
				for i < len(o) && o[i] == t.seq {
					i++
				}
				if i == len(o) {
					delete(j.olderRev, r)
				} else if i > 0 {
					j.olderRev[r] = o[i:]
				}
			}
		}
	}
	j.trans = append([]jtrans(nil), j.trans[k:]...)
	j.used = (j.next + j.logLen() - start) % j.logLen()
	return true
}

func (j *journal) logLen() uint32 { return j.last - j.first }

// wrap advances log block p by n in the circular log [first, last).
func (j *journal) wrap(p uint32, n uint32) uint32 {
	off := (uint64(p-j.first) + uint64(n)) % uint64(j.logLen())
	return j.first + uint32(off)
}

type jtag struct {
	home    uint64
	log     uint32
	escaped bool
	csum    uint32
}

// scan reads transactions from next while their sequence numbers follow
// and their commit blocks are valid (do_one_pass in fs/jbd2/recovery.c).
// A transaction without a valid commit stays unread until a later scan.
func (j *journal) scan() error {
	for {
		ok, err := j.scanOne()
		if err != nil || !ok {
			return err
		}
	}
}

func (j *journal) scanOne() (bool, error) {
	be := binary.BigEndian
	pos, seq, n := j.next, j.nextSeq, uint32(0)
	var tags []jtag
	var revs []uint64
	for {
		if j.used+n >= j.logLen() {
			return false, nil // the window would overrun its own tail
		}
		b, err := j.readLog(pos)
		if err != nil {
			return false, err
		}
		if be.Uint32(b[0:]) != jMagic || be.Uint32(b[8:]) != seq {
			return false, nil // end of the log
		}
		switch be.Uint32(b[4:]) {
		case jDescriptor:
			if !j.tailOK(b) {
				return false, nil
			}
			t, err := j.parseTags(b, pos)
			if err != nil {
				return false, nil
			}
			tags = append(tags, t...)
			if n+1+uint32(len(t)) >= j.logLen() {
				return false, nil
			}
			n += 1 + uint32(len(t))
			pos = j.wrap(pos, 1+uint32(len(t)))
		case jRevoke:
			if !j.tailOK(b) {
				return false, nil
			}
			r, ok := j.parseRevoke(b)
			if !ok {
				return false, nil
			}
			revs = append(revs, r...)
			n++
			pos = j.wrap(pos, 1)
		case jCommit:
			if j.csum && !j.commitOK(b) {
				return false, nil // e2fsck: a bad commit ends the replay
			}
			n++
			j.commit(seq, tags, revs)
			j.st.LastCommit = time.Unix(int64(be.Uint64(b[0x30:])), int64(be.Uint32(b[0x38:])%1e9)).UTC()
			j.next, j.nextSeq = j.wrap(pos, 1), seq+1
			j.used += n
			return true, nil
		default:
			return false, nil
		}
	}
}

// parseTags decodes a descriptor block's tags; tag i's data is the log
// block i+1 after the descriptor.
func (j *journal) parseTags(b []byte, pos uint32) ([]jtag, error) {
	be := binary.BigEndian
	end := len(b)
	if j.csum {
		end -= 4 // jbd2_journal_block_tail
	}
	var tags []jtag
	off := jHeaderSize
	for off+j.tagSz <= end {
		t := b[off : off+j.tagSz]
		var home uint64
		var flags uint32
		var csum uint32
		if j.csumV3 {
			home = uint64(be.Uint32(t[0:]))
			flags = be.Uint32(t[4:])
			if j.incompat&jIncompat64bit != 0 {
				home |= uint64(be.Uint32(t[8:])) << 32
			}
			csum = be.Uint32(t[12:])
		} else {
			home = uint64(be.Uint32(t[0:]))
			csum = uint32(be.Uint16(t[4:]))
			flags = uint32(be.Uint16(t[6:]))
			if j.incompat&jIncompat64bit != 0 {
				home |= uint64(be.Uint32(t[8:])) << 32
			}
		}
		off += j.tagSz
		if flags&tagSameUUID == 0 {
			off += 16
		}
		tags = append(tags, jtag{home: home, log: j.wrap(pos, uint32(len(tags)+1)), escaped: flags&tagEscape != 0, csum: csum})
		if flags&tagLastTag != 0 {
			return tags, nil
		}
	}
	// jbd2's count_tags stops at the end of the block too.
	if len(tags) == 0 {
		return nil, corrupt(uint64(pos), "journal descriptor", "no tags")
	}
	return tags, nil
}

func (j *journal) parseRevoke(b []byte) ([]uint64, bool) {
	be := binary.BigEndian
	cnt := int(be.Uint32(b[12:]))
	max := len(b)
	if j.csum {
		max -= 4
	}
	if cnt < 16 || cnt > max {
		return nil, false
	}
	sz := 4
	if j.incompat&jIncompat64bit != 0 {
		sz = 8
	}
	var r []uint64
	for off := 16; off+sz <= cnt; off += sz {
		if sz == 8 {
			r = append(r, be.Uint64(b[off:]))
		} else {
			r = append(r, uint64(be.Uint32(b[off:])))
		}
	}
	return r, true
}

// tailOK verifies a descriptor or revoke block's jbd2_journal_block_tail.
func (j *journal) tailOK(b []byte) bool {
	if !j.csum {
		return true
	}
	n := len(b) - 4
	want := binary.BigEndian.Uint32(b[n:])
	c := crc32cRaw(j.seed, b[:n])
	c = crc32cRaw(c, []byte{0, 0, 0, 0})
	return c == want
}

// commitOK verifies a commit block's checksum (h_chksum[0] at byte 16).
func (j *journal) commitOK(b []byte) bool {
	want := binary.BigEndian.Uint32(b[16:])
	c := crc32cRaw(j.seed, b[:16])
	c = crc32cRaw(c, []byte{0, 0, 0, 0})
	c = crc32cRaw(c, b[20:])
	return c == want
}

// dataOK verifies a data block against its tag (jbd2_block_tag_csum_verify).
func (j *journal) dataOK(t jtag, seq uint32) bool {
	if !j.csum {
		return true
	}
	if len(j.scratch) != int(j.f.sb.blockSize) {
		j.scratch = make([]byte, j.f.sb.blockSize)
	}
	b := j.scratch
	if err := j.readLogInto(b, t.log); err != nil {
		return false
	}
	var s [4]byte
	binary.BigEndian.PutUint32(s[:], seq)
	c := crc32cRaw(crc32cRaw(j.seed, s[:]), b)
	if j.csumV3 {
		return c == t.csum
	}
	return c&0xFFFF == t.csum
}

// commit adds a transaction whose commit block is valid to the overlay.
func (j *journal) commit(seq uint32, tags []jtag, revs []uint64) {
	t := jtrans{seq: seq, start: j.next}
	for _, r := range revs {
		old, ok := j.revoked[r]
		if ok && !tidGT(seq, old) {
			continue // listed twice in one transaction
		}
		if ok {
			j.olderRev[r] = append(j.olderRev[r], old)
		}
		j.revoked[r] = seq
		t.revokes = append(t.revokes, r)
	}
	for _, tg := range tags {
		if tg.home >= j.f.sb.blocksCount || !j.dataOK(tg, seq) {
			j.st.BadDataBlocks++
			continue
		}
		if old, ok := j.copies[tg.home]; ok {
			j.older[tg.home] = append(j.older[tg.home], old)
		}
		j.copies[tg.home] = jcopy{log: tg.log, seq: seq, escaped: tg.escaped}
		t.homes = append(t.homes, tg.home)
	}
	j.trans = append(j.trans, t)
	// A rescan reads transactions seen before; count each sequence once.
	if j.st.Transactions == 0 || tidGT(seq, j.st.LastSequence) {
		j.st.Transactions++
		j.st.LastSequence = seq
	}
}

// lookup returns the journal's copy of home block blk if recovery would
// write one: the newest committed copy, unless a revoke record at least
// as new as that copy's transaction cancels it.
func (j *journal) lookup(blk uint64) ([]byte, bool, error) {
	c, ok := j.copies[blk]
	if !ok {
		return nil, false, nil
	}
	if j.pinned {
		if c, ok = j.pinnedCopy(blk, c); !ok {
			return nil, false, nil
		}
	} else if r, ok := j.revoked[blk]; ok && !tidGT(c.seq, r) {
		return nil, false, nil
	}
	b, err := j.readLog(c.log)
	if err != nil {
		return nil, false, fmt.Errorf("journal copy of block %d: %w", blk, err)
	}
	if c.escaped {
		binary.BigEndian.PutUint32(b[0:], jMagic)
	}
	return b, true, nil
}

func (j *journal) stats() Stats {
	s := j.st
	s.Active = len(j.trans)
	s.Tail, s.Head = j.sbStart, j.next
	for h, c := range j.copies {
		if r, ok := j.revoked[h]; ok && !tidGT(c.seq, r) {
			continue
		}
		s.BlocksOverlaid++
	}
	return s
}
