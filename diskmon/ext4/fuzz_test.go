package ext4

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// The fuzzers feed guest-controlled bytes into every parser: whole small
// images (superblock, group descriptors, inodes, extents, directories),
// a journal log spliced into a real image, and directory blocks and
// inodes spliced into a real image. Seeds are cut from images made by
// mkfs and from the kernel-written fixtures. A fuzz input must never
// panic, hang or allocate without bound; errors are fine.

// patchReader is base with patch written at off (a copy-free splice),
// and more patches in more.
type patchReader struct {
	base  []byte
	off   int64
	patch []byte
	more  []*patchReader
}

func (p *patchReader) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(p.base)) {
		return 0, fmt.Errorf("read at %d beyond %d", off, len(p.base))
	}
	n := copy(b, p.base[off:])
	for _, q := range append([]*patchReader{p}, p.more...) {
		// Overlap of [off, off+n) with [q.off, q.off+len(q.patch)).
		lo, hi := max(off, q.off), min(off+int64(n), q.off+int64(len(q.patch)))
		if lo < hi {
			copy(b[lo-off:hi-off], q.patch[lo-q.off:hi-q.off])
		}
	}
	if n < len(b) {
		return n, fmt.Errorf("short read")
	}
	return n, nil
}

// exercise walks what the tracker would: the root and its subfolders
// (bounded), every entry's inode, symlinks and small files.
func exercise(f *FS) {
	_ = f.Refresh()
	walk(f)
}

// walk reads the tree as the tracker does, without a Refresh (which
// would unpin).
func walk(f *FS) {
	_ = f.Stats()
	_, _ = f.Lookup("/a/b/../c")
	queue := []uint32{rootIno}
	for n := 0; len(queue) > 0 && n < 64; n++ {
		ino := queue[0]
		queue = queue[1:]
		ents, err := f.ReadDir(ino)
		if err != nil {
			continue
		}
		for i, e := range ents {
			if i > 256 {
				break
			}
			in, err := f.Inode(e.Ino)
			if err != nil {
				continue
			}
			switch in.Type() {
			case TypeDir:
				queue = append(queue, e.Ino)
			case TypeSymlink:
				_, _ = f.ReadLink(e.Ino)
			case TypeRegular:
				_, _ = f.ReadFile(e.Ino, 1<<16)
			}
		}
	}
}

type fuzzBase struct {
	once sync.Once
	imgs map[string][]byte
	err  error
}

var bases fuzzBase

// fuzzImages makes (once per process) the small images the fuzzers start
// from: ext2 and ext4 without a journal (128 KiB, inline data, an htree
// folder).
func fuzzImages(t testing.TB) map[string][]byte {
	needTool(t, "mkfs.ext2", "mkfs.ext4", "e2fsck")
	bases.once.Do(func() {
		dir, err := os.MkdirTemp("", "ext4fuzz")
		if err != nil {
			bases.err = err
			return
		}
		defer os.RemoveAll(dir)
		src := filepath.Join(dir, "src")
		os.MkdirAll(filepath.Join(src, "d/e"), 0o755)
		os.WriteFile(filepath.Join(src, "d/file"), []byte("some data\n"), 0o644)
		os.WriteFile(filepath.Join(src, "d/e/big"), bytes.Repeat([]byte("x"), 5000), 0o644)
		os.Symlink("d/file", filepath.Join(src, "link"))
		os.Symlink("/"+string(bytes.Repeat([]byte("s"), 80)), filepath.Join(src, "slowlink"))
		for i := 0; i < 40; i++ {
			os.WriteFile(filepath.Join(src, "d", fmt.Sprintf("entry-number-%02d", i)), nil, 0o644)
		}
		bases.imgs = map[string][]byte{}
		for name, args := range map[string][]string{
			"ext2":    {"mkfs.ext2", "-b", "1024", "-N", "64"},
			"ext4":    {"mkfs.ext4", "-b", "1024", "-N", "64", "-O", "^has_journal,inline_data"},
			"ext4-64": {"mkfs.ext4", "-b", "1024", "-N", "64", "-O", "^has_journal,64bit"},
		} {
			size := "128k"
			img := filepath.Join(dir, name+".img")
			out, err := execOut(args[0], append(args[1:], "-q", "-F", "-E", "root_owner=0:0", "-d", src, img, size)...)
			if err != nil {
				bases.err = fmt.Errorf("%v: %v\n%s", args, err, out)
				return
			}
			execOut("e2fsck", "-fyD", img) // index d/ as an htree
			b, err := os.ReadFile(img)
			if err != nil {
				bases.err = err
				return
			}
			bases.imgs[name] = b
		}
	})
	if bases.err != nil {
		t.Fatal(bases.err)
	}
	return bases.imgs
}

func FuzzOpen(f *testing.F) {
	for _, name := range []string{"ext2", "ext4", "ext4-64"} {
		f.Add(fuzzImages(f)[name])
	}
	f.Fuzz(func(t *testing.T, img []byte) {
		for _, nj := range []bool{false, true} {
			fs, err := Open(bytes.NewReader(img), int64(len(img)), Options{NoJournal: nj})
			if err == nil {
				exercise(fs)
			}
		}
	})
}

// journalRuns returns the journal inode's block runs in base.
func journalRuns(t testing.TB, base []byte) ([]run, int) {
	f, err := Open(bytes.NewReader(base), int64(len(base)), Options{NoJournal: true})
	if err != nil {
		t.Fatal(err)
	}
	jin, err := f.Inode(f.sb.journalInum)
	if err != nil {
		t.Fatal(err)
	}
	runs, err := f.blockRuns(jin, jin.Size/uint64(f.BlockSize()))
	if err != nil {
		t.Fatal(err)
	}
	return runs, f.BlockSize()
}

// logBytes reads the first n journal blocks of img.
func logBytes(img []byte, runs []run, bs int, n uint64) []byte {
	var out []byte
	for l := uint64(0); l < n; l++ {
		p := int64(physBlock(runs, l)) * int64(bs)
		out = append(out, img[p:p+int64(bs)]...)
	}
	return out
}

// logPatch writes log over the journal of base (through its runs).
func logPatch(base []byte, runs []run, bs int, log []byte) *patchReader {
	r := &patchReader{base: base}
	for l := 0; l*bs < len(log); l++ {
		chunk := log[l*bs : min(len(log), (l+1)*bs)]
		r.more = append(r.more, &patchReader{off: int64(physBlock(runs, uint64(l))) * int64(bs), patch: chunk})
	}
	return r
}

// journalBase is the kernel-written 1 KiB fixture: the fuzzer mutates
// its real journal in place.
func journalBase(t testing.TB) ([]byte, []run, int) {
	b, err := os.ReadFile(unzstd(t, filepath.Join(fixtureDir, "ext4-1k-journal.img.zst")))
	if err != nil {
		t.Fatal(err)
	}
	runs, bs := journalRuns(t, b)
	return b, runs, bs
}

func FuzzJournal(f *testing.F) {
	base, runs, bs := journalBase(f)
	// Seeds: the real log (superblock and the first 63 log blocks: the
	// committed transactions), and its superblock alone.
	f.Add(logBytes(base, runs, bs, 64))
	f.Add(logBytes(base, runs, bs, 1))
	f.Add(synSeed(f, base, runs, bs))
	f.Fuzz(func(t *testing.T, log []byte) {
		if len(log) > 256*bs {
			return
		}
		fs, err := Open(logPatch(base, runs, bs, log), int64(len(base)), Options{})
		if err != nil {
			return
		}
		st := fs.Stats()
		if st.BlocksOverlaid > int(fs.jnl.nblk) {
			t.Fatalf("%d blocks overlaid from a %d-block journal", st.BlocksOverlaid, fs.jnl.nblk)
		}
		for h := range fs.jnl.copies {
			_, _ = fs.readBlock(h)
		}
		checkPins(t, fs)
		exercise(fs)
	})
}

// dirSplice finds the first block of directory path and the block
// holding its inode in base.
func dirSplice(t testing.TB, base []byte, path string) (dirBlk, inoBlk uint64, inoOff int, bs int) {
	f, err := Open(bytes.NewReader(base), int64(len(base)), Options{NoJournal: true})
	if err != nil {
		t.Fatal(err)
	}
	ino, err := f.Lookup(path)
	if err != nil {
		t.Fatal(err)
	}
	in, err := f.Inode(ino)
	if err != nil {
		t.Fatal(err)
	}
	runs, err := f.blockRuns(in, 1)
	if err != nil {
		t.Fatal(err)
	}
	s := f.sb
	desc, _, _ := f.groupDesc((ino - 1) / s.inodesPerGroup)
	off := uint64((ino-1)%s.inodesPerGroup) * uint64(s.inodeSize)
	return physBlock(runs, 0), s.inodeTable(desc) + off/uint64(s.blockSize), int(off % uint64(s.blockSize)), s.blockSize
}

// FuzzReadDir splices a directory block (linear, or an htree root with
// its dx entries) over /d's first block, and an inode over /d's inode.
func FuzzReadDir(f *testing.F) {
	imgs := fuzzImages(f)
	type target struct {
		img              []byte
		dirOff, inodeOff int64
		bs               int
	}
	var targets []target
	for _, name := range []string{"ext2", "ext4"} {
		base := imgs[name]
		dblk, iblk, ioff, bs := dirSplice(f, base, "/d")
		tg := target{base, int64(dblk) * int64(bs), int64(iblk)*int64(bs) + int64(ioff), bs}
		targets = append(targets, tg)
		// Seeds: the htree root block of /d, a linear block, and the
		// inodes of /d (htree), /d/e/big (extents or block map), /slowlink.
		f.Add(uint8(len(targets)-1), false, append([]byte(nil), base[tg.dirOff:tg.dirOff+int64(bs)]...))
		_, _, _, _ = dirSplice(f, base, "/d/e")
		e, _, _, _ := dirSplice(f, base, "/d/e")
		f.Add(uint8(len(targets)-1), false, append([]byte(nil), base[int64(e)*int64(bs):int64(e+1)*int64(bs)]...))
		f.Add(uint8(len(targets)-1), true, append([]byte(nil), base[tg.inodeOff:tg.inodeOff+256]...))
	}
	f.Fuzz(func(t *testing.T, which uint8, inode bool, data []byte) {
		tg := targets[int(which)%len(targets)]
		off := tg.dirOff
		if inode {
			off = tg.inodeOff
			if len(data) > 256 {
				data = data[:256]
			}
		} else if len(data) > tg.bs {
			data = data[:tg.bs]
		}
		r := &patchReader{base: tg.img, off: off, patch: data}
		fs, err := Open(r, int64(len(tg.img)), Options{})
		if err != nil {
			return
		}
		if ino, err := fs.Lookup("/d"); err == nil {
			_, _ = fs.ReadDir(ino)
		}
		exercise(fs)
	})
}

// TestFuzzJournalSeed: FuzzJournal's first seed replays, so the fuzzer
// starts from real transactions.
func TestFuzzJournalSeed(t *testing.T) {
	base, runs, bs := journalBase(t)
	fs, err := Open(logPatch(base, runs, bs, logBytes(base, runs, bs, 64)), int64(len(base)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s := fs.Stats(); s.Transactions < 2 || s.BlocksOverlaid == 0 {
		t.Fatalf("seed replays %+v", s)
	}
}

// checkPins pins each commit of a fuzzed window: nothing panics, a pin of
// the newest commit reads as the unpinned view, Unpin restores it, and a
// sequence outside the window is refused.
func checkPins(t *testing.T, fs *FS) {
	j := fs.jnl
	newest := map[uint64]string{}
	for h := range j.copies {
		if b, err := fs.readBlock(h); err == nil {
			newest[h] = string(b)
		}
	}
	seqs := fs.Commits(j.sbSeq-1, 1<<30)
	if len(seqs) != len(j.trans) {
		t.Fatalf("Commits lists %d of %d transactions", len(seqs), len(j.trans))
	}
	for i, seq := range seqs {
		if err := fs.Pin(seq); err != nil {
			continue // e.g. a pinned superblock that does not parse
		}
		if i == 0 {
			walk(fs)
		}
		for h := range j.copies {
			b, err := fs.readBlock(h)
			if i == len(seqs)-1 && err == nil && string(b) != newest[h] {
				t.Fatalf("block %d pinned at the newest commit %d differs from the unpinned view", h, seq)
			}
		}
	}
	if len(seqs) > 0 {
		if err := fs.Pin(seqs[0] - 1); err == nil {
			t.Fatalf("Pin(%d) before the window %v succeeded", seqs[0]-1, seqs)
		}
	}
	fs.Unpin()
	for h, want := range newest {
		if b, err := fs.readBlock(h); err != nil || string(b) != want {
			t.Fatalf("block %d after Unpin differs (%v)", h, err)
		}
	}
}
