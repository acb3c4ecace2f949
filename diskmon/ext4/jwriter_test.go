package ext4

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"
)

// A jbd2 log writer for tests, written from journal.rst independently of
// the reader's tables, so that wrap-around, every tag format and checksum
// failures can be produced and cross-checked against e2fsprogs' replay
// (debugfs journal_run), which debugfs's own journal writer cannot do.

type synTx struct {
	homes     []uint64
	data      [][]byte
	revokes   []uint64
	noCommit  bool // descriptor and data only
	badCommit bool // commit block checksum wrong
	badData   int  // 1 + index of a data block whose tag checksum is wrong
}

type synJournal struct {
	incompat   uint32
	start, seq uint32
	txs        []synTx
}

func (s *synJournal) tagBytes() int {
	switch {
	case s.incompat&jIncompatCsumV3 != 0:
		return 16
	case s.incompat&jIncompatCsumV2 != 0 && s.incompat&jIncompat64bit != 0:
		return 14
	case s.incompat&jIncompatCsumV2 != 0:
		return 10
	case s.incompat&jIncompat64bit != 0:
		return 12
	}
	return 8
}

func (s *synJournal) csum() bool { return s.incompat&(jIncompatCsumV2|jIncompatCsumV3) != 0 }

// writeSynJournal replaces the journal of img (made by mkfs.ext3/4) with
// s's log and sets the filesystem's needs_recovery flag. It returns the
// log block after the last one written.
func writeSynJournal(t testing.TB, img string, s *synJournal) uint32 {
	t.Helper()
	f := openImage(t, img, Options{NoJournal: true})
	jin, err := f.Inode(f.sb.journalInum)
	if err != nil {
		t.Fatal(err)
	}
	bs := f.BlockSize()
	nblk := jin.Size / uint64(bs)
	runs, err := f.blockRuns(jin, nblk)
	if err != nil {
		t.Fatal(err)
	}
	w, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	put := func(logBlk uint32, b []byte) {
		t.Helper()
		p := physBlock(runs, uint64(logBlk))
		if _, err := w.WriteAt(b, int64(p)*int64(bs)); err != nil {
			t.Fatal(err)
		}
	}
	be := binary.BigEndian
	uuid := [16]byte{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xf0, 0x01}
	seed := crc32cRaw(^uint32(0), uuid[:])
	first, maxlen := uint32(1), uint32(nblk)
	// Wipe the log so no stale block continues a sequence by accident.
	for i := uint32(1); i < maxlen; i++ {
		put(i, make([]byte, bs))
	}
	sb := make([]byte, bs)
	be.PutUint32(sb[0:], jMagic)
	be.PutUint32(sb[4:], jSuperV2)
	be.PutUint32(sb[0xC:], uint32(bs))
	be.PutUint32(sb[0x10:], maxlen)
	be.PutUint32(sb[0x14:], first)
	be.PutUint32(sb[0x18:], s.seq)
	be.PutUint32(sb[0x1C:], s.start)
	be.PutUint32(sb[0x28:], s.incompat|jIncompatRevoke)
	copy(sb[0x30:], uuid[:])
	be.PutUint32(sb[0x40:], 1)
	if s.csum() {
		sb[0x50] = 4 // JBD2_CRC32C_CHKSUM
		be.PutUint32(sb[0xFC:], crc32cRaw(^uint32(0), sb[:1024]))
	}
	put(0, sb)

	next := func(p uint32) uint32 {
		p++
		if p >= maxlen {
			p = first
		}
		return p
	}
	tail := func(b []byte) {
		if s.csum() {
			c := crc32cRaw(seed, b[:bs-4]) // the tail counts as zero
			c = crc32cRaw(c, []byte{0, 0, 0, 0})
			be.PutUint32(b[bs-4:], c)
		}
	}
	pos, seq := s.start, s.seq
	for _, tx := range s.txs {
		hdr := func(typ uint32) []byte {
			b := make([]byte, bs)
			be.PutUint32(b[0:], jMagic)
			be.PutUint32(b[4:], typ)
			be.PutUint32(b[8:], seq)
			return b
		}
		if len(tx.homes) > 0 {
			d := hdr(jDescriptor)
			off := 12
			for i, h := range tx.homes {
				data := append([]byte(nil), tx.data[i]...)
				var flags uint32
				if be.Uint32(data) == jMagic {
					flags |= tagEscape
					be.PutUint32(data, 0)
				}
				if i > 0 {
					flags |= tagSameUUID
				}
				if i == len(tx.homes)-1 {
					flags |= tagLastTag
				}
				var sq [4]byte
				be.PutUint32(sq[:], seq)
				c := crc32cRaw(crc32cRaw(seed, sq[:]), data)
				if tx.badData == i+1 {
					c ^= 0xFFFF
				}
				tag := d[off:]
				if s.incompat&jIncompatCsumV3 != 0 {
					be.PutUint32(tag[0:], uint32(h))
					be.PutUint32(tag[4:], flags)
					be.PutUint32(tag[8:], uint32(h>>32))
					be.PutUint32(tag[12:], c)
				} else {
					be.PutUint32(tag[0:], uint32(h))
					be.PutUint16(tag[4:], uint16(c))
					be.PutUint16(tag[6:], uint16(flags))
					if s.incompat&jIncompat64bit != 0 {
						be.PutUint32(tag[8:], uint32(h>>32))
					}
				}
				off += s.tagBytes()
				if i == 0 {
					copy(d[off:], uuid[:])
					off += 16
				}
				tx.data[i] = data
			}
			tail(d)
			put(pos, d)
			pos = next(pos)
			for _, data := range tx.data {
				put(pos, data)
				pos = next(pos)
			}
		}
		if len(tx.revokes) > 0 {
			r := hdr(jRevoke)
			off := 16
			for _, h := range tx.revokes {
				if s.incompat&jIncompat64bit != 0 {
					be.PutUint64(r[off:], h)
					off += 8
				} else {
					be.PutUint32(r[off:], uint32(h))
					off += 4
				}
			}
			be.PutUint32(r[12:], uint32(off))
			tail(r)
			put(pos, r)
			pos = next(pos)
		}
		if tx.noCommit {
			break
		}
		c := hdr(jCommit)
		be.PutUint64(c[0x30:], 1700000000+uint64(seq))
		if s.csum() {
			c[12], c[13] = 4, 4
			be.PutUint32(c[16:], crc32cRaw(seed, c))
			if tx.badCommit {
				c[16] ^= 1
			}
		}
		put(pos, c)
		pos = next(pos)
		seq++
	}
	// needs_recovery, with the superblock checksum redone.
	sup := make([]byte, 1024)
	if _, err := w.ReadAt(sup, 1024); err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	le.PutUint32(sup[0x60:], le.Uint32(sup[0x60:])|incompatRecover)
	if le.Uint32(sup[0x64:])&roMetadataCsum != 0 {
		le.PutUint32(sup[0x3FC:], crc32cRaw(^uint32(0), sup[:0x3FC]))
	}
	if _, err := w.WriteAt(sup, 1024); err != nil {
		t.Fatal(err)
	}
	return pos
}

// TestJournalWrap writes logs that wrap around the end of the journal in
// every tag format (32/64-bit, no checksum, v2, v3), with revokes, an
// escaped block, and checksum failures, and compares the overlay with
// e2fsprogs' replay of the same image.
func TestJournalWrap(t *testing.T) {
	formats := []struct {
		name     string
		incompat uint32
	}{
		{"plain32", 0},
		{"plain64", jIncompat64bit},
		{"v2-32", jIncompatCsumV2},
		{"v2-64", jIncompatCsumV2 | jIncompat64bit},
		{"v3-32", jIncompatCsumV3},
		{"v3-64", jIncompatCsumV3 | jIncompat64bit},
	}
	const bs = 1024
	for _, fm := range formats {
		t.Run(fm.name, func(t *testing.T) {
			img := mkfs(t, "ext4", "32M", "", "-b", "1024", "-J", "size=1")
			esc := pattern(3, 1, bs)
			binary.BigEndian.PutUint32(esc, jMagic)
			txs := []synTx{
				{homes: []uint64{20000, 20001, 20002}, data: [][]byte{pattern(1, 1, bs), pattern(2, 1, bs), esc}},
				{homes: []uint64{20003}, data: [][]byte{pattern(4, 1, bs)}, revokes: []uint64{20001}},
				{homes: []uint64{20000, 20004, 20005, 20006}, data: [][]byte{pattern(5, 1, bs), pattern(6, 1, bs), pattern(7, 1, bs), pattern(8, 1, bs)}},
			}
			csum := fm.incompat&(jIncompatCsumV2|jIncompatCsumV3) != 0
			if csum {
				txs[2].badData = 2 // 20004 is skipped, the rest replayed
				txs = append(txs, synTx{homes: []uint64{20007}, data: [][]byte{pattern(9, 1, bs)}, badCommit: true},
					synTx{homes: []uint64{20008}, data: [][]byte{pattern(10, 1, bs)}})
			} else {
				txs = append(txs, synTx{homes: []uint64{20007}, data: [][]byte{pattern(9, 1, bs)}, noCommit: true})
			}
			s := &synJournal{incompat: fm.incompat, start: 1020, seq: 77, txs: txs}
			end := writeSynJournal(t, img, s)
			if end > 100 {
				t.Fatalf("log did not wrap (ends at %d)", end)
			}
			f := openImage(t, img, Options{})
			st := f.Stats()
			if st.Transactions != 3 || st.LastSequence != 79 || st.Tail != 1020 {
				t.Fatalf("Stats %+v: want 3 transactions 77..79 (the 4th is not committed or fails its checksum)", st)
			}
			check := func(b uint64, want []byte) {
				t.Helper()
				got, err := f.readBlock(b)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("block %d: %x..., want %x...", b, got[:8], want[:8])
				}
			}
			home := func(b uint64) []byte { d, _ := f.readHome(b); return d }
			check(20000, pattern(5, 1, bs))
			check(20001, home(20001)) // revoked
			check(20002, esc)
			check(20003, pattern(4, 1, bs))
			if csum {
				check(20004, home(20004))
				if st.BadDataBlocks != 1 {
					t.Errorf("BadDataBlocks %d, want 1", st.BadDataBlocks)
				}
			} else {
				check(20004, pattern(6, 1, bs))
			}
			check(20006, pattern(8, 1, bs))
			check(20007, home(20007))
			check(20008, home(20008))
			compareBlocks(t, f, replay(t, img))
		})
	}
}

// TestJournalCommitLater: a transaction whose commit block is not on disk
// yet is invisible; once the commit lands, a Refresh adds it by reading
// only the new blocks (no rescan).
func TestJournalCommitLater(t *testing.T) {
	const bs = 1024
	img := mkfs(t, "ext4", "32M", "", "-b", "1024", "-J", "size=1")
	tx1 := synTx{homes: []uint64{20000}, data: [][]byte{pattern(1, 1, bs)}}
	tx2 := synTx{homes: []uint64{20001, 20002}, data: [][]byte{pattern(2, 1, bs), pattern(3, 1, bs)}, noCommit: true}
	s := &synJournal{incompat: jIncompatCsumV3 | jIncompat64bit, start: 5, seq: 10, txs: []synTx{tx1, tx2}}
	writeSynJournal(t, img, s)
	osf, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer osf.Close()
	st, _ := osf.Stat()
	cr := &countingReader{r: osf}
	f, err := Open(cr, st.Size(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s := f.Stats(); s.Transactions != 1 || s.BlocksOverlaid != 1 {
		t.Fatalf("before the commit: %+v", s)
	}
	tx2.noCommit = false
	tx2.data = [][]byte{pattern(2, 1, bs), pattern(3, 1, bs)}
	tx1.data = [][]byte{pattern(1, 1, bs)}
	writeSynJournal(t, img, &synJournal{incompat: s.incompat, start: 5, seq: 10, txs: []synTx{tx1, tx2}})
	cr.n.Store(0)
	if err := f.Refresh(); err != nil {
		t.Fatal(err)
	}
	reads := cr.n.Load()
	got := f.Stats()
	if got.Transactions != 2 || got.BlocksOverlaid != 3 || got.Rescans != 1 || got.LastSequence != 11 {
		t.Fatalf("after the commit: %+v", got)
	}
	// journal superblock, descriptor, 2 data blocks (tag checksums),
	// commit, the block after it, the superblock: 7.
	if reads > 8 {
		t.Errorf("Refresh made %d reads for one new transaction", reads)
	}
	b, err := f.readBlock(20002)
	if err != nil || !bytes.Equal(b, pattern(3, 1, bs)) {
		t.Fatalf("block 20002 after the commit: %v", err)
	}
}
