package diskmon

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/xascript/xascript/diskmon/nbd"
)

// Each FLUSH's state stays readable until released, whatever the guest
// wrote after it; the guest's own reads see the live disk.
func TestFlushEpochs(t *testing.T) {
	img := filepath.Join(t.TempDir(), "d.img")
	if err := os.WriteFile(img, make([]byte, 64<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := nbd.OpenFile(img, false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	s := newFlushSnapshot(b)
	view := snapshotView{s}
	fill := func(c byte, n int) []byte { return bytes.Repeat([]byte{c}, n) }
	read := func(r interface {
		ReadAt([]byte, int64) (int, error)
	}, off int64, n int) []byte {
		p := make([]byte, n)
		if _, err := r.ReadAt(p, off); err != nil {
			t.Fatal(err)
		}
		return p
	}
	s.WriteAt(fill('A', 6000), 1000) // spans blocks 0 and 1
	s.Sync()                         // epoch 1: A
	s.WriteAt(fill('B', 100), 5000)  // block 1 only
	s.Sync()                         // epoch 2
	s.WriteAt(fill('C', 100), 5000)
	s.WriteAt(fill('D', 10), 0)
	if !s.pin(1) || !bytes.Equal(read(view, 5000, 100), fill('A', 100)) || !bytes.Equal(read(view, 0, 10), make([]byte, 10)) {
		t.Fatal("epoch 1 does not read as at its FLUSH")
	}
	if !s.pin(2) || !bytes.Equal(read(view, 5000, 100), fill('B', 100)) || !bytes.Equal(read(view, 1000, 10), fill('A', 10)) {
		t.Fatal("epoch 2 does not read as at its FLUSH")
	}
	if !bytes.Equal(read(b, 5000, 100), fill('C', 100)) {
		t.Fatal("the guest does not read the live disk")
	}
	if s.release() {
		t.Fatal("overflow reported")
	}
	if s.pin(1) || !s.pin(2) || !bytes.Equal(read(view, 5000, 100), fill('B', 100)) {
		t.Fatal("release kept the wrong epoch")
	}
	// Past the bound everything is dropped and reported.
	s.Sync()
	for off := int64(0); off < snapshotLimit+2*snapBlock; off += 64 << 10 {
		s.mu.Lock()
		s.epochs[len(s.epochs)-1].saved = map[int64][]byte{} // make every write a first one
		s.preserve(0, 64<<10)
		s.mu.Unlock()
		if len(s.epochs) == 0 {
			break
		}
	}
	if len(s.epochs) != 0 || !s.release() {
		t.Fatal("the bound did not drop the epochs")
	}
}
