package ext4

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkReadDirHtree10k reads a 10,000-entry htree folder (all leaf
// blocks linearly), as the tracker does after each batch of writes.
func BenchmarkReadDirHtree10k(b *testing.B) {
	src := b.TempDir()
	if err := os.Mkdir(filepath.Join(src, "many"), 0o755); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 10000; i++ {
		if err := os.WriteFile(filepath.Join(src, "many", "file-"+itoa(i)+"-with-a-longer-name"), nil, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	img := mkfs(b, "ext4", "64M", src, "-N", "16384")
	f := openImage(b, img, Options{})
	ino, err := f.Lookup("/many")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ents, err := f.ReadDir(ino)
		if err != nil || len(ents) != 10000 {
			b.Fatalf("%d entries, %v", len(ents), err)
		}
	}
}

// BenchmarkRefreshIdle is Refresh when nothing changed, on the kernel's
// ext4 fixture (5 committed transactions in the journal).
func BenchmarkRefreshIdle(b *testing.B) {
	img := unzstd(b, filepath.Join(fixtureDir, "ext4-journal.img.zst"))
	f := openImage(b, img, Options{})
	if f.Stats().Transactions == 0 {
		b.Fatal("fixture journal is empty")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := f.Refresh(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenJournal is Open with a full journal scan of the fixture.
func BenchmarkOpenJournal(b *testing.B) {
	img := unzstd(b, filepath.Join(fixtureDir, "ext4-journal.img.zst"))
	osf, err := os.Open(img)
	if err != nil {
		b.Fatal(err)
	}
	defer osf.Close()
	st, _ := osf.Stat()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Open(osf, st.Size(), Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInode reads one inode through the overlay.
func BenchmarkInode(b *testing.B) {
	img := unzstd(b, filepath.Join(fixtureDir, "ext4-journal.img.zst"))
	f := openImage(b, img, Options{})
	ino, err := f.Lookup("/new/a.txt")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.Inode(ino); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInodePinned reads the same inode with the view pinned at the
// fixture's oldest commit (the history lookups of pin.go).
func BenchmarkInodePinned(b *testing.B) {
	img := unzstd(b, filepath.Join(fixtureDir, "ext4-journal.img.zst"))
	f := openImage(b, img, Options{})
	ino, err := f.Lookup("/new/a.txt")
	if err != nil {
		b.Fatal(err)
	}
	seqs := f.Commits(f.jnl.sbSeq-1, 100)
	if len(seqs) < 2 {
		b.Fatalf("fixture window %v", seqs)
	}
	if err := f.Pin(seqs[len(seqs)-2]); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.Inode(ino); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPinStep is one step of the tracker's walk: Pin the next
// commit (re-reading the superblock through it), then Unpin.
func BenchmarkPinStep(b *testing.B) {
	img := unzstd(b, filepath.Join(fixtureDir, "ext4-journal.img.zst"))
	f := openImage(b, img, Options{})
	seqs := f.Commits(f.jnl.sbSeq-1, 100)
	if len(seqs) == 0 {
		b.Fatal("fixture journal is empty")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := f.Pin(seqs[i%len(seqs)]); err != nil {
			b.Fatal(err)
		}
		f.Unpin()
	}
}

func itoa(i int) string {
	s := []byte{'0', '0', '0', '0', '0'}
	for k := 4; k >= 0 && i > 0; k-- {
		s[k] = byte('0' + i%10)
		i /= 10
	}
	return string(s)
}

// BenchmarkStatFolder1k stats every entry of a 1,000-file folder, as the
// tracker's walk of a watched folder does at each rescan.
func BenchmarkStatFolder1k(b *testing.B) {
	img := mkfs(b, "ext4", "96M", seedTree(b, 1000))
	f := openImage(b, img, Options{})
	ino, err := f.Lookup("/many")
	if err != nil {
		b.Fatal(err)
	}
	ents, err := f.ReadDir(ino)
	if err != nil || len(ents) != 1000 {
		b.Fatalf("%d entries, %v", len(ents), err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := f.Refresh(); err != nil {
			b.Fatal(err)
		}
		for _, e := range ents {
			if _, err := f.Inode(e.Ino); err != nil {
				b.Fatal(err)
			}
		}
	}
}
