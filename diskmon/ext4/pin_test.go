package ext4

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// diffTx is the transaction that turns image a into image b: every block
// that differs, with b's content (what the kernel would journal, data
// included, as in data=journal).
func diffTx(t *testing.T, a, b string, bs int) synTx {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	var tx synTx
	for off := 0; off+bs <= len(x); off += bs {
		if string(x[off:off+bs]) != string(y[off:off+bs]) {
			tx.homes = append(tx.homes, uint64(off/bs))
			tx.data = append(tx.data, append([]byte(nil), y[off:off+bs]...))
		}
	}
	if len(tx.homes) == 0 {
		t.Fatalf("%s and %s do not differ", a, b)
	}
	return tx
}

// cloneTxs deep-copies txs: writeSynJournal escapes data in place.
func cloneTxs(txs []synTx) []synTx {
	out := make([]synTx, len(txs))
	for i, tx := range txs {
		out[i] = tx
		out[i].data = make([][]byte, len(tx.data))
		for k, d := range tx.data {
			out[i].data[k] = append([]byte(nil), d...)
		}
	}
	return out
}

// writeJournalCopy writes the journal s onto a copy of base.
func writeJournalCopy(t *testing.T, base string, s synJournal) string {
	t.Helper()
	img := copyFile(t, base)
	s.txs = cloneTxs(s.txs)
	writeSynJournal(t, img, &s)
	return img
}

// setJournalTailCsum moves s_start/s_sequence as a checkpoint does and
// redoes the journal superblock checksum.
func setJournalTailCsum(t *testing.T, f *FS, img string, start, seq uint32) {
	t.Helper()
	w, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	off := int64(physBlock(f.jnl.runs, 0)) * int64(f.BlockSize())
	b := make([]byte, 1024)
	if _, err := w.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	be := binary.BigEndian
	be.PutUint32(b[0x18:], seq)
	be.PutUint32(b[0x1C:], start)
	be.PutUint32(b[0xFC:], 0)
	be.PutUint32(b[0xFC:], crc32cRaw(^uint32(0), b))
	if _, err := w.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func exists(t *testing.T, f *FS, path string) bool {
	t.Helper()
	_, err := f.Lookup(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Lookup %s: %v", path, err)
	}
	return err == nil
}

// TestPinSteps journals three real changes, one transaction each (a file
// created, the file removed, a folder renamed), then transactions with
// revokes, with tids that wrap past 2^32 and a log that wraps past its
// end; Pin at each sequence must show exactly the filesystem after that
// transaction: block for block what e2fsck replays from a journal holding
// only the transactions up to it, what debugfs lists there, and, for the
// three changes, the image debugfs itself wrote.
func TestPinSteps(t *testing.T) {
	const bs = 1024
	src := t.TempDir()
	for _, d := range []string{"d", "x"} {
		if err := os.Mkdir(filepath.Join(src, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(src, "d", "keep"), []byte("keep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b0 := mkfs(t, "ext4", "32M", src, "-b", "1024", "-J", "size=1")
	content := filepath.Join(t.TempDir(), "content")
	if err := os.WriteFile(content, []byte("created\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s1 := copyFile(t, b0)
	debugfs(t, s1, true, "write "+content+" /d/newfile")
	s2 := copyFile(t, s1)
	debugfs(t, s2, true, "rm /d/newfile")
	s3 := copyFile(t, s2)
	debugfs(t, s3, true, "link /d /e", "unlink /d")
	states := []string{s1, s2, s3}

	tx1, tx2, tx3 := diffTx(t, b0, s1, bs), diffTx(t, s1, s2, bs), diffTx(t, s2, s3, bs)
	// The root folder's block: the rename rewrote it.
	nj := openImage(t, b0, Options{NoJournal: true})
	rootIn, err := nj.Inode(rootIno)
	if err != nil {
		t.Fatal(err)
	}
	rootRuns, err := nj.blockRuns(rootIn, 1)
	if err != nil {
		t.Fatal(err)
	}
	rootBlk := physBlock(rootRuns, 0)
	inTx3 := false
	for _, h := range tx3.homes {
		inTx3 = inTx3 || h == rootBlk
	}
	if !inTx3 {
		t.Fatalf("the rename did not change the root folder's block %d (changed %v)", rootBlk, tx3.homes)
	}
	t.Logf("blocks per transaction: %d, %d, %d; root folder block %d", len(tx1.homes), len(tx2.homes), len(tx3.homes), rootBlk)
	txs := []synTx{tx1, tx2, tx3,
		// 4: two free blocks.
		{homes: []uint64{20000, 20001}, data: [][]byte{pattern(1, 1, bs), pattern(2, 1, bs)}},
		// 5: the rename's root block and 20000 revoked, 20001 rewritten.
		{homes: []uint64{20001}, data: [][]byte{pattern(3, 1, bs)}, revokes: []uint64{rootBlk, 20000}},
		// 6: 20000 journaled again after its revoke.
		{homes: []uint64{20000}, data: [][]byte{pattern(4, 1, bs)}},
	}
	const seq0 = 0xFFFFFFFD // 0xFFFFFFFD, 0xFFFFFFFE, 0xFFFFFFFF, 0, 1, 2
	js := synJournal{incompat: jIncompatCsumV3 | jIncompat64bit, start: 1000, seq: seq0, txs: txs}
	img := writeJournalCopy(t, b0, js)
	f := openImage(t, img, Options{})
	if st := f.Stats(); st.Active != 6 || st.LastSequence != 2 {
		t.Fatalf("Stats %+v: want 6 transactions up to 2", st)
	}
	if st := f.Stats(); st.Head > st.Tail {
		t.Fatalf("log did not wrap: %+v", st)
	}
	seqs := f.Commits(seq0-1, 100)
	if fmt.Sprint(seqs) != fmt.Sprint([]uint32{seq0, seq0 + 1, seq0 + 2, 0, 1, 2}) {
		t.Fatalf("Commits = %v", seqs)
	}
	newest := replay(t, img)

	for k, seq := range seqs {
		t.Run(fmt.Sprintf("after%d", k+1), func(t *testing.T) {
			if err := f.Pin(seq); err != nil {
				t.Fatal(err)
			}
			if p, ok := f.Pinned(); !ok || p != seq {
				t.Fatalf("Pinned() = %d, %v", p, ok)
			}
			part := js
			part.txs = txs[:k+1]
			want := replay(t, writeJournalCopy(t, b0, part))
			compareBlocks(t, f, want)
			if k < len(states) {
				compareBlocks(t, f, states[k])
			}
			compareDir(t, f, want, "/")
			for _, d := range []string{"/d", "/e"} {
				if exists(t, f, d) {
					compareDir(t, f, want, d)
				}
			}
			created := exists(t, f, "/d/newfile")
			renamed := exists(t, f, "/e") && !exists(t, f, "/d")
			if created != (k == 0) {
				t.Errorf("/d/newfile exists: %v", created)
			}
			if created {
				ino, _ := f.Lookup("/d/newfile")
				if b, err := f.ReadFile(ino, 100); err != nil || string(b) != "created\n" {
					t.Errorf("/d/newfile = %q, %v", b, err)
				}
			}
			// Renamed by 3, the rename's root block revoked by 5 (the
			// revoke cancels it from 5 on, not before).
			if renamed != (k == 2 || k == 3) {
				t.Errorf("/d renamed to /e: %v", renamed)
			}
			if !exists(t, f, "/x") || (!exists(t, f, "/d/keep") && !exists(t, f, "/e/keep")) {
				t.Error("/x or keep missing")
			}
		})
	}

	// Unpin: the newest state, equal to the full replay; so is Pin of
	// the newest commit.
	f.Unpin()
	if _, ok := f.Pinned(); ok {
		t.Fatal("still pinned after Unpin")
	}
	compareBlocks(t, f, newest)
	for _, bad := range []uint32{seq0 - 1, 3, 1 << 31} {
		if err := f.Pin(bad); !errors.Is(err, ErrNoCommit) {
			t.Errorf("Pin(%d) = %v, want ErrNoCommit", bad, err)
		}
	}
	if _, ok := f.Pinned(); ok {
		t.Fatal("a failed Pin pinned")
	}
	// Refresh unpins.
	if err := f.Pin(seq0); err != nil {
		t.Fatal(err)
	}
	if err := f.Refresh(); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Pinned(); ok || !exists(t, f, "/d") || exists(t, f, "/e") {
		t.Fatal("Refresh did not unpin")
	}

	// A checkpoint moves the tail to transaction 3: 1 and 2 leave the
	// window, with their history, and the views of 3..6 are those of a
	// journal starting at 3.
	tr := f.jnl.trans[2]
	setJournalTailCsum(t, f, img, tr.start, tr.seq)
	rescans := f.Stats().Rescans
	if err := f.Refresh(); err != nil {
		t.Fatal(err)
	}
	if st := f.Stats(); st.Rescans != rescans || st.Active != 4 {
		t.Fatalf("after the checkpoint: %+v", st)
	}
	if got := f.Commits(seq0-1, 100); fmt.Sprint(got) != fmt.Sprint(seqs[2:]) {
		t.Fatalf("Commits after the checkpoint = %v", got)
	}
	if err := f.Pin(seq0); !errors.Is(err, ErrNoCommit) {
		t.Errorf("Pin of a checkpointed transaction: %v", err)
	}
	for h, o := range f.jnl.older {
		for _, c := range o {
			if !f.jnl.inWindow(c.seq) {
				t.Errorf("block %d keeps a copy of transaction %d, no longer in the window", h, c.seq)
			}
		}
	}
	for h, o := range f.jnl.olderRev {
		for _, r := range o {
			if !f.jnl.inWindow(r) {
				t.Errorf("block %d keeps a revoke of transaction %d, no longer in the window", h, r)
			}
		}
	}
	if err := f.Pin(seqs[3]); err != nil {
		t.Fatal(err)
	}
	part := js
	part.start, part.seq, part.txs = tr.start, tr.seq, txs[2:4]
	compareBlocks(t, f, replay(t, writeJournalCopy(t, b0, part)))
}

// TestCommits checks the window listing: order, after with tid
// wrap-around, max keeping the newest.
func TestCommits(t *testing.T) {
	const bs = 1024
	img := mkfs(t, "ext4", "32M", "", "-b", "1024", "-J", "size=1")
	var txs []synTx
	for i := 0; i < 5; i++ {
		txs = append(txs, synTx{homes: []uint64{20000 + uint64(i%2)}, data: [][]byte{pattern(byte(i), 1, bs)}})
	}
	writeSynJournal(t, img, &synJournal{start: 3, seq: 0xFFFFFFFE, txs: txs})
	f := openImage(t, img, Options{})
	for _, c := range []struct {
		after uint32
		max   int
		want  string
	}{
		{0xFFFFFFFD, 10, "[4294967294 4294967295 0 1 2]"},
		{0xFFFFFFFE, 10, "[4294967295 0 1 2]"},
		{0xFFFFFFFF, 10, "[0 1 2]"},
		{0, 10, "[1 2]"},
		{2, 10, "[]"},
		{100, 10, "[]"},
		{0xF0000000, 10, "[4294967294 4294967295 0 1 2]"},
		{0xFFFFFFFD, 2, "[1 2]"},
		{0xFFFFFFFD, 0, "[]"},
	} {
		if got := fmt.Sprint(f.Commits(c.after, c.max)); got != c.want {
			t.Errorf("Commits(%#x, %d) = %s, want %s", c.after, c.max, got, c.want)
		}
	}
	// Each step shows its own copy of the two blocks.
	for i, seq := range f.Commits(0xFFFFFFFD, 10) {
		if err := f.Pin(seq); err != nil {
			t.Fatal(err)
		}
		b, err := f.readBlock(20000 + uint64(i%2))
		if err != nil || string(b) != string(pattern(byte(i), 1, bs)) {
			t.Errorf("Pin(%d): block %d is not transaction %d's copy (%v)", seq, 20000+i%2, i, err)
		}
		if i > 0 {
			b, _ := f.readBlock(20000 + uint64((i-1)%2))
			if string(b) != string(pattern(byte(i-1), 1, bs)) {
				t.Errorf("Pin(%d): block %d is not transaction %d's copy", seq, 20000+(i-1)%2, i-1)
			}
		}
	}
	// Without a journal: nothing, and Pin fails.
	ext2 := mkfs(t, "ext2", "8M", "")
	g := openImage(t, ext2, Options{})
	if c := g.Commits(0, 10); len(c) != 0 {
		t.Errorf("ext2 Commits = %v", c)
	}
	if err := g.Pin(1); !errors.Is(err, ErrNoCommit) {
		t.Errorf("ext2 Pin = %v", err)
	}
}

// synSeed writes a synthetic log onto the fuzz base's journal: tids that
// wrap, a block journaled in three transactions, a revoke between them.
func synSeed(t testing.TB, base []byte, runs []run, bs int) []byte {
	img := filepath.Join(t.TempDir(), "seed.img")
	if err := os.WriteFile(img, base, 0o600); err != nil {
		t.Fatal(err)
	}
	p := func(s byte) []byte { return pattern(s, 1, bs) }
	js := &synJournal{incompat: jIncompatCsumV3 | jIncompat64bit, start: 1, seq: 0xFFFFFFFF, txs: []synTx{
		{homes: []uint64{300, 301}, data: [][]byte{p(1), p(2)}},
		{homes: []uint64{302}, data: [][]byte{p(3)}, revokes: []uint64{300}},
		{homes: []uint64{300, 301}, data: [][]byte{p(4), p(5)}},
	}}
	end := writeSynJournal(t, img, js)
	r, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return logBytes(b, runs, bs, uint64(end)+1)
}

// TestPinFixtures pins each transaction the kernel left in the fixtures'
// journals (ext3's holds a revoke block) and compares the view, block for
// block and by debugfs ls, with e2fsck's replay of a copy whose log ends
// after that transaction (the next transaction's first block has its
// magic zeroed, so recovery's scan stops there).
func TestPinFixtures(t *testing.T) {
	for _, name := range []string{"ext4-journal", "ext4-1k-journal", "ext4-inline-journal", "ext3-journal"} {
		t.Run(name, func(t *testing.T) {
			want := truth(t, name)
			img := unzstd(t, filepath.Join(fixtureDir, name+".img.zst"))
			f := openImage(t, img, Options{})
			seqs := f.Commits(f.jnl.sbSeq-1, 1000)
			if len(seqs) < 2 || len(seqs) != f.Stats().Active {
				t.Fatalf("Commits = %v, Stats %+v", seqs, f.Stats())
			}
			revokes := 0
			for _, tr := range f.jnl.trans {
				revokes += len(tr.revokes)
			}
			t.Logf("%d transactions %v, %d revoke records", len(seqs), seqs, revokes)
			differ := 0
			var prev map[string]map[string]uint32
			for k, seq := range seqs {
				cut := copyFile(t, img)
				if k+1 < len(seqs) {
					zeroMagic(t, f, cut, f.jnl.trans[k+1].start)
				}
				r := replay(t, cut)
				if err := f.Pin(seq); err != nil {
					t.Fatal(err)
				}
				compareBlocks(t, f, r)
				cur := map[string]map[string]uint32{}
				for dir := range want {
					if m, err := dirMap(t, f, dir); err == nil {
						cur[dir] = m
						compareDir(t, f, r, dir)
					}
				}
				if prev != nil && fmt.Sprint(prev) != fmt.Sprint(cur) {
					differ++
				}
				prev = cur
			}
			// The newest pinned view is the guest's final listing.
			for dir, w := range want {
				if fmt.Sprint(prev[dir]) != fmt.Sprint(w) {
					t.Errorf("%s pinned at the newest commit: %v, want %v", dir, prev[dir], w)
				}
			}
			// The guest changed the tree in batches a commit apart: some
			// steps must show a different tree, else pinning shows nothing.
			if differ == 0 {
				t.Error("every pinned view lists the same folders")
			}
			t.Logf("%d of %d steps change the listed folders", differ, len(seqs)-1)
		})
	}
}

// zeroMagic clears the jbd2 magic of log block logBlk in img.
func zeroMagic(t *testing.T, f *FS, img string, logBlk uint32) {
	t.Helper()
	w, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.WriteAt(make([]byte, 4), int64(physBlock(f.jnl.runs, uint64(logBlk)))*int64(f.BlockSize())); err != nil {
		t.Fatal(err)
	}
}
