package ext4

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const fixtureDir = "../../testdata/ext4"

// truth parses NAME.truth.txt: "DIR /path" lines, each followed by the
// "ino name" lines the guest's ls printed.
func truth(t *testing.T, name string) map[string]map[string]uint32 {
	t.Helper()
	f, err := os.Open(filepath.Join(fixtureDir, name+".truth.txt"))
	if err != nil {
		t.Fatalf("fixture missing: %v (regenerate with testdata/ext4/make-fixtures.sh)", err)
	}
	defer f.Close()
	out := map[string]map[string]uint32{}
	var cur map[string]uint32
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if d, ok := strings.CutPrefix(l, "DIR "); ok {
			cur = map[string]uint32{}
			out[d] = cur
			continue
		}
		ino, name, ok := strings.Cut(l, " ")
		n, err := strconv.ParseUint(ino, 10, 32)
		if !ok || err != nil || cur == nil {
			t.Fatalf("truth line %q", l)
		}
		cur[name] = uint32(n)
	}
	if len(out) == 0 {
		t.Fatal("empty truth file")
	}
	return out
}

func dirMap(t *testing.T, f *FS, path string) (map[string]uint32, error) {
	t.Helper()
	ino, err := f.Lookup(path)
	if err != nil {
		return nil, err
	}
	ents, err := f.ReadDir(ino)
	if err != nil {
		return nil, err
	}
	m := map[string]uint32{}
	for _, e := range ents {
		m[e.Name] = e.Ino
	}
	return m, nil
}

// TestJournalFixtures reads images a real kernel left with committed but
// not checkpointed transactions: through the overlay they show what the
// guest printed; without it, the old tree; and the overlay equals what
// recovery (debugfs journal_run, e2fsck -fy) writes.
func TestJournalFixtures(t *testing.T) {
	for _, name := range []string{"ext4-journal", "ext4-1k-journal", "ext4-inline-journal", "ext3-journal"} {
		t.Run(name, func(t *testing.T) {
			want := truth(t, name)
			img := unzstd(t, filepath.Join(fixtureDir, name+".img.zst"))
			f := openImage(t, img, Options{})
			for dir, w := range want {
				got, err := dirMap(t, f, dir)
				if err != nil {
					t.Fatalf("%s: %v", dir, err)
				}
				if fmt.Sprint(got) != fmt.Sprint(w) {
					t.Errorf("%s with the journal:\n got %v\nwant %v", dir, got, w)
				}
			}
			st := f.Stats()
			if st.Transactions < 2 || st.BlocksOverlaid == 0 || st.LastSequence == 0 ||
				st.LastCommit.Before(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)) {
				t.Errorf("Stats %+v: want at least 2 transactions with a commit time", st)
			}
			t.Logf("%s: %+v", name, st)
			checkFixtureFiles(t, f)

			// Home locations alone: the guest's changes are not all there
			// (the kernel may have written some home blocks already; then
			// the home state is torn, e.g. an entry whose inode is still
			// zero).
			nj := openImage(t, img, Options{NoJournal: true})
			same := 0
			for dir, w := range want {
				if got, err := dirMap(t, nj, dir); err == nil && fmt.Sprint(got) == fmt.Sprint(w) {
					same++
				}
			}
			if same == len(want) {
				t.Error("without the journal every folder already reads as the guest left it: the fixture's journal holds nothing the tracker needs (regenerate it)")
			}
			t.Logf("without the journal %d of %d folders read as the truth", same, len(want))

			// Pure replay: every block recovery writes equals our view.
			compareBlocks(t, f, replay(t, img))

			// e2fsck's recovery, then a clean check, then its listing.
			fixed := copyFile(t, img)
			e2fsck(t, fixed, "-fy")
			e2fsck(t, fixed, "-fn")
			for dir := range want {
				compareDir(t, f, fixed, dir)
			}
		})
	}
}

func checkFixtureFiles(t *testing.T, f *FS) {
	t.Helper()
	a, err := f.Lookup("/new/a.txt")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := f.ReadFile(a, 1<<20); err != nil || string(b) != "hello\n" {
		t.Errorf("/new/a.txt = %q, %v", b, err)
	}
	if in, err := f.Inode(a); err != nil || in.Links != 2 || in.Type() != TypeRegular {
		t.Errorf("/new/a.txt inode %v %v: want 2 links (hard.txt)", in, err)
	}
	if h, _ := f.Lookup("/new/hard.txt"); h != a {
		t.Errorf("/new/hard.txt is inode %d, /new/a.txt %d", h, a)
	}
	l, _ := f.Lookup("/new/link")
	if s, err := f.ReadLink(l); err != nil || s != "a.txt" {
		t.Errorf("/new/link -> %q, %v", s, err)
	}
	l, _ = f.Lookup("/new/longlink")
	if s, err := f.ReadLink(l); err != nil || !strings.HasSuffix(s, "/xxxxxxxxxxxxxxxxxxxxxxxx") {
		t.Errorf("/new/longlink -> %q, %v", s, err)
	}
	if _, err := f.Lookup("/old"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("/old (removed in the journal): %v", err)
	}
	// The kernel built /new/big as an htree: its dx root validates and all
	// its leaves read.
	big, err := f.Lookup("/new/big")
	if err != nil {
		t.Fatal(err)
	}
	if in, err := f.Inode(big); err != nil || in.Flags&flagIndex == 0 {
		t.Errorf("/new/big is not an htree: %v", err)
	}
	if ents, err := f.ReadDir(big); err != nil || len(ents) != 300 {
		t.Errorf("/new/big: %d entries, %v", len(ents), err)
	}
	if f.sb.incompat&incompatInlineData != 0 {
		ino, err := f.Lookup("/new/inl")
		if err != nil {
			t.Fatal(err)
		}
		in, err := f.Inode(ino)
		if err != nil || in.Flags&flagInlineData == 0 {
			t.Fatalf("/new/inl not inline: %v", err)
		}
		if x, _ := inlineXattr(in); len(x) == 0 {
			t.Error("/new/inl has no entries in system.data: the spill path is untested")
		}
		a1, _ := f.Lookup("/new/inl/a1")
		if b, err := f.ReadFile(a1, 100); err != nil || string(b) != "1\n" {
			t.Errorf("/new/inl/a1 = %q, %v", b, err)
		}
	}
}

// replay returns a copy of img after e2fsck's journal replay alone
// (-E journal_only: no other check or repair), and checks that the replay
// happened (the journal superblock's s_start is 0 afterwards).
func replay(t *testing.T, img string) string {
	t.Helper()
	r := copyFile(t, img)
	e2fsck(t, r, "-E", "journal_only", "-y")
	f := openImage(t, r, Options{})
	if s := f.Stats(); s.Tail != 0 || s.BlocksOverlaid != 0 {
		t.Fatalf("e2fsck -E journal_only left the journal at %+v", s)
	}
	return r
}

func copyFile(t *testing.T, src string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dst
}

// compareBlocks checks every filesystem block outside the superblock and
// the journal (which recovery itself rewrites) against a replayed copy.
func compareBlocks(t *testing.T, f *FS, replayed string) {
	t.Helper()
	r, err := os.ReadFile(replayed)
	if err != nil {
		t.Fatal(err)
	}
	bs := uint64(f.BlockSize())
	journal := map[uint64]bool{}
	if f.jnl != nil {
		for _, rn := range f.jnl.runs {
			for i := uint64(0); i < rn.count; i++ {
				journal[rn.physical+i] = true
			}
		}
	}
	diffs := 0
	for b := uint64(0); b < f.sb.blocksCount; b++ {
		if b*bs < 2048 || journal[b] {
			continue
		}
		got, err := f.readBlock(b)
		if err != nil {
			t.Fatalf("block %d: %v", b, err)
		}
		if !bytes.Equal(got, r[b*bs:(b+1)*bs]) {
			if diffs < 5 {
				_, inJ := f.jnl.copies[b]
				t.Errorf("block %d differs from the replayed image (in overlay map: %v)", b, inJ)
			}
			diffs++
		}
	}
	if diffs > 0 {
		t.Errorf("%d blocks differ", diffs)
	}
}

// countingReader counts ReadAt calls, to see what a Refresh reads.
type countingReader struct {
	r io.ReaderAt
	n atomic.Int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.n.Add(1)
	return c.r.ReadAt(p, off)
}

func pattern(seed byte, n, bs int) []byte {
	b := make([]byte, n*bs)
	for i := range b {
		b[i] = seed + byte(i/bs)*3 + byte(i%251)
	}
	return b
}

func writeTmp(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "blocks.bin")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func blockList(first, n int) string {
	s := make([]string, n)
	for i := range s {
		s[i] = strconv.Itoa(first + i)
	}
	return strings.Join(s, ",")
}

// TestJournalIncremental writes transactions with debugfs's journal
// writer between Refresh calls: new commits appear, revokes cancel older
// copies, escaped blocks come back with their magic, uncommitted
// transactions stay invisible, a moved tail drops old transactions without
// a rescan, the log wraps, and the final view equals a replay.
func TestJournalIncremental(t *testing.T) {
	img := mkfs(t, "ext4", "64M", "", "-b", "4096")
	osf, err := os.OpenFile(img, os.O_RDWR, 0)
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
	const bs = 4096
	jw := func(args string, data []byte) {
		t.Helper()
		debugfs(t, img, true, "jo", "jw "+args+" "+writeTmp(t, data), "jc")
		if err := f.Refresh(); err != nil {
			t.Fatalf("Refresh after jw %s: %v", args, err)
		}
	}
	block := func(b uint64) []byte {
		t.Helper()
		d, err := f.readBlock(b)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	zero := make([]byte, bs)

	a := pattern(1, 2, bs)
	jw("-b 6000,6001", a)
	if !bytes.Equal(block(6000), a[:bs]) || !bytes.Equal(block(6001), a[bs:]) {
		t.Fatal("first transaction not overlaid")
	}
	if s := f.Stats(); s.Transactions != 1 || s.BlocksOverlaid != 2 {
		t.Fatalf("after one transaction: %+v", s)
	}
	// Nothing changed: superblock, journal superblock, the head block.
	cr.n.Store(0)
	if err := f.Refresh(); err != nil {
		t.Fatal(err)
	}
	if n := cr.n.Load(); n > 3 {
		t.Errorf("an idle Refresh made %d reads, want <= 3", n)
	}

	b := pattern(50, 1, bs)
	jw("-b 6002 -r 6000", b)
	if !bytes.Equal(block(6000), zero) || !bytes.Equal(block(6002), b) || !bytes.Equal(block(6001), a[bs:]) {
		t.Fatal("revoke of 6000 / copy of 6002 not applied")
	}
	esc := pattern(90, 1, bs)
	binary.BigEndian.PutUint32(esc, jMagic)
	jw("-b 6003", esc)
	if !bytes.Equal(block(6003), esc) {
		t.Fatal("escaped block not restored")
	}
	// Four 200-block transactions bring the head near the end of the
	// 1024-block log.
	for i := 0; i < 4; i++ {
		jw("-b "+blockList(7000+200*i, 200), pattern(byte(10*i), 200, bs))
	}
	s := f.Stats()
	if s.Transactions != 7 || s.Head < 800 {
		t.Fatalf("after 7 transactions: %+v", s)
	}
	rescans := s.Rescans
	// A checkpoint: the kernel moves s_start/s_sequence to the oldest live
	// transaction. Keep the last one.
	last := f.jnl.trans[len(f.jnl.trans)-1]
	setJournalTail(t, f, osf, last.start, last.seq)
	if err := f.Refresh(); err != nil {
		t.Fatal(err)
	}
	s = f.Stats()
	if s.Rescans != rescans || s.Active != 1 || s.BlocksOverlaid != 200 {
		t.Fatalf("after the tail moved: %+v (rescans before %d)", s, rescans)
	}
	if !bytes.Equal(block(6001), zero) {
		t.Error("block 6001 of a checkpointed transaction still overlaid")
	}
	// The next transaction fills the log to its end (debugfs's writer
	// does not wrap; TestJournalWrap covers that with a synthetic log).
	w := pattern(200, 200, bs)
	jw("-b "+blockList(9200, 200), w)
	s = f.Stats()
	if s.Transactions != 8 || s.Active != 2 || s.BlocksOverlaid != 400 || !bytes.Equal(block(9399), w[199*bs:]) || !bytes.Equal(block(9200), w[:bs]) {
		t.Fatalf("transaction after the tail moved: %+v", s)
	}
	// An uncommitted transaction changes nothing.
	debugfs(t, img, true, "jo", "jw -c -b 6010 "+writeTmp(t, pattern(7, 1, bs)), "jc")
	if err := f.Refresh(); err != nil {
		t.Fatal(err)
	}
	if s2 := f.Stats(); s2.Transactions != 8 || !bytes.Equal(block(6010), zero) {
		t.Fatalf("uncommitted transaction visible: %+v", s2)
	}
	compareBlocks(t, f, replay(t, img))

	// Recovery in place empties the journal (s_start 0): no overlay left.
	debugfs(t, img, true, "journal_run")
	if err := f.Refresh(); err != nil {
		t.Fatal(err)
	}
	if s := f.Stats(); s.BlocksOverlaid != 0 || s.Active != 0 {
		t.Fatalf("after recovery: %+v", s)
	}
	if !bytes.Equal(block(9399), w[199*bs:]) {
		t.Fatal("recovered block differs")
	}
}

// setJournalTail writes s_start and s_sequence of the journal superblock
// as a checkpoint does (debugfs's journals carry no superblock checksum).
func setJournalTail(t *testing.T, f *FS, w io.WriterAt, start, seq uint32) {
	t.Helper()
	p := physBlock(f.jnl.runs, 0)
	var b [8]byte
	binary.BigEndian.PutUint32(b[0:], seq)
	binary.BigEndian.PutUint32(b[4:], start)
	if _, err := w.WriteAt(b[:], int64(p)*int64(f.BlockSize())+0x18); err != nil {
		t.Fatal(err)
	}
}

func sortedKeys(m map[string]uint32) []string {
	k := make([]string, 0, len(m))
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}
