package qmpbitmap

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/xascript/xascript/diskmon/nbd"
)

// deadPID is above Linux's largest pid_max (2^22): no process has it.
const deadPID = "4194399"

func TestOpenRemovesLeftoversAndCloseRestores(t *testing.T) {
	f := newFakeQEMU(t)
	// What a SIGKILLed xascript left: its server, data export and bitmap;
	// and a bitmap of someone else's that must stay.
	f.foreign = true
	f.exports["xascript-"+deadPID+"-data"] = ""
	f.bitmaps["xascript-"+deadPID+"-7"] = &fakeBitmap{recording: true}
	f.bitmaps["backup-0"] = &fakeBitmap{recording: true}
	var logs []string
	s, err := Open(context.Background(), f, Options{Drive: "data", TempDir: t.TempDir(),
		Logf: func(format string, args ...any) { logs = append(logs, format) }})
	if err != nil {
		t.Fatal(err)
	}
	if s.Node() != "#block100" || s.Size() != f.size {
		t.Errorf("node %s size %d", s.Node(), s.Size())
	}
	me := "xascript-" + itoa(os.Getpid())
	if got, want := f.state(), "bitmap backup-0,bitmap "+me+"-1,export "+me+"-data server=true"; got != want {
		t.Errorf("after Open: %s\nwant        %s", got, want)
	}
	if fi, err := os.Stat(s.dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("socket folder: %v %v", fi, err)
	}
	// The data export is read through QEMU's server (here ours).
	buf := make([]byte, 8192)
	if _, err := s.ReadAt(buf, 4096); err != nil {
		t.Fatalf("read through the data export: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := f.state(), "bitmap backup-0 server=false"; got != want {
		t.Errorf("after Close: %s, want %s", got, want)
	}
	if _, err := os.Stat(s.dir); !os.IsNotExist(err) {
		t.Errorf("socket folder left: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if len(logs) != 3 {
		t.Errorf("logged %q, want the removed export, bitmap and server", logs)
	}
}

func TestOpenRefusesAForeignServer(t *testing.T) {
	f := newFakeQEMU(t)
	f.foreign = true // running, and no xascript export says whose
	_, err := Open(context.Background(), f, Options{Drive: "data", TempDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "did not start") {
		t.Fatalf("Open with someone's NBD server running: %v", err)
	}
	if got, want := f.state(), " server=true"; got != want {
		t.Errorf("after the failed Open: %s, want %s (nothing of ours, their server kept)", got, want)
	}
}

func TestOpenFindsTheDrive(t *testing.T) {
	for _, name := range []string{"data", "vd0", "/machine/peripheral/vd0/virtio-backend", "#block100"} {
		f := newFakeQEMU(t)
		d, err := findDrive(f, name)
		if err != nil || d.node != "#block100" || d.size != f.size {
			t.Errorf("%s: %+v %v", name, d, err)
		}
	}
	f := newFakeQEMU(t)
	if _, err := findDrive(f, "nope"); err == nil || !strings.Contains(err.Error(), "no drive or node named") {
		t.Errorf("unknown drive: %v", err)
	}
}

func TestPoll(t *testing.T) {
	f := newFakeQEMU(t)
	s, err := Open(context.Background(), f, Options{Drive: "data", TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	me := "xascript-" + itoa(os.Getpid())
	var got []Change
	emit := func(c Change) { got = append(got, c) }

	// Nothing written: no swap, nothing reported.
	if err := s.Poll(context.Background(), emit); err != nil || len(got) != 0 {
		t.Fatalf("idle poll: %v %v", got, err)
	}
	// A flush alone is reported.
	f.mu.Lock()
	f.flushes++
	f.mu.Unlock()
	if err := s.Poll(context.Background(), emit); err != nil || len(got) != 1 || !got[0].Flush {
		t.Fatalf("flush poll: %v %v", got, err)
	}
	got = nil
	// A write swaps the bitmaps. This fake's server offers no dirty-bitmap
	// context, so the read fails: the poll then reports the whole drive.
	f.write(65536)
	err = s.Poll(context.Background(), emit)
	if err == nil {
		t.Fatal("poll with an unreadable bitmap gave no error")
	}
	if len(got) != 1 || got[0].Off != 0 || got[0].Len != uint64(f.size) || got[0].Flush {
		t.Errorf("unreadable bitmap: reported %+v, want one write over the drive", got)
	}
	if st, want := f.state(), "bitmap "+me+"-2,export "+me+"-data server=true"; st != want {
		t.Errorf("after the swap: %s, want %s (old bitmap and its export removed)", st, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Poll(context.Background(), emit); !errors.Is(err, ErrClosed) {
		t.Errorf("poll after Close: %v", err)
	}
}

// A transaction whose reply was lost but which QEMU did: the poll goes on
// with the new bitmap instead of failing for ever on "already exists".
func TestPollLostTransactionReply(t *testing.T) {
	f := newFakeQEMU(t)
	s, err := Open(context.Background(), f, Options{Drive: "data", TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	me := "xascript-" + itoa(os.Getpid())
	for gen := 2; gen <= 3; gen++ {
		f.write(4096)
		f.mu.Lock()
		f.loseReply = true
		f.mu.Unlock()
		var got []Change
		s.Poll(context.Background(), func(c Change) { got = append(got, c) })
		if len(got) != 1 {
			t.Errorf("poll %d reported %v", gen, got)
		}
		if st, want := f.state(), "bitmap "+me+"-"+itoa(gen)+",export "+me+"-data server=true"; st != want {
			t.Errorf("poll %d: %s, want %s", gen, st, want)
		}
	}
}

func TestLeftoverNames(t *testing.T) {
	for name, pid := range map[string]int{"xascript-12-data": 12, "xascript-7-3": 7, "xascript--1": 0, "xascript-x-1": 0,
		"backup-12-1": 0, "xascript-12": 0} {
		if got := leftoverPID(name); got != pid {
			t.Errorf("leftoverPID(%q) = %d, want %d", name, got, pid)
		}
	}
	if !deadOwner("xascript-" + deadPID + "-1") {
		t.Error("a pid no process has is not dead")
	}
	if !deadOwner("xascript-" + itoa(os.Getpid()) + "-1") {
		t.Error("our own pid (a reused one) is not dead")
	}
	if deadOwner("xascript-1-1") {
		t.Error("pid 1 is dead")
	}
	if deadOwner("backup-1") {
		t.Error("a foreign name is ours")
	}
}

// fakeStatus answers block status from a list of extents.
type fakeStatus struct {
	exts  []nbd.Extent
	calls int
}

func (f *fakeStatus) BlockStatus(off uint64, length uint32, reqOne bool) (map[string][]nbd.Extent, error) {
	f.calls++
	if f.calls > 100 {
		return nil, errors.New("too many calls")
	}
	// The extents from off on, as a server would answer.
	var out []nbd.Extent
	pos := uint64(0)
	for _, e := range f.exts {
		end := pos + uint64(e.Length)
		if end > off {
			start := max(pos, off)
			out = append(out, nbd.Extent{Length: uint32(end - start), Flags: e.Flags})
		}
		pos = end
	}
	return map[string][]nbd.Extent{"ctx": out}, nil
}

func TestDirtyRanges(t *testing.T) {
	d, c := uint32(nbd.StateDirty), uint32(0)
	f := &fakeStatus{exts: []nbd.Extent{{Length: 4096, Flags: d}, {Length: 4096, Flags: d}, {Length: 8192, Flags: c},
		{Length: 4096, Flags: d}, {Length: 1 << 20, Flags: d}}}
	got, err := dirtyRanges(f, "ctx", 20480+4096)
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]uint64{{0, 8192}, {16384, 8192}} // adjacent runs merged, the last cut at the drive's end
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := dirtyRanges(&fakeStatus{exts: []nbd.Extent{{Length: 0, Flags: d}}}, "ctx", 4096); err == nil {
		t.Error("an extent of length 0 was accepted")
	}
	if _, err := dirtyRanges(&fakeStatus{}, "ctx", 4096); err == nil {
		t.Error("a reply with no extents was accepted")
	}
}

// countingReader is a drive that counts the reads reaching it.
type countingReader struct {
	mu    sync.Mutex
	data  []byte
	reads int
	hook  func()
}

func (r *countingReader) ReadAt(p []byte, off int64) (int, error) {
	r.mu.Lock()
	r.reads++
	hook := r.hook
	n := copy(p, r.data[off:])
	r.mu.Unlock()
	if hook != nil {
		hook()
	}
	return n, nil
}

func TestBlockCache(t *testing.T) {
	r := &countingReader{data: bytes.Repeat([]byte{1}, 10*cacheBlock+100)}
	c := newBlockCache(r, int64(len(r.data)))
	buf := make([]byte, 3*cacheBlock)
	if _, err := c.ReadAt(buf, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadAt(buf, 200); err != nil || r.reads != 1 {
		t.Fatalf("cached read reached the drive: %d reads, %v", r.reads, err)
	}
	// A write the poll reports: the block is read again, with the new data.
	r.data[cacheBlock+5] = 9
	c.invalidate(cacheBlock+5, 1)
	if _, err := c.ReadAt(buf, 0); err != nil || buf[cacheBlock+5] != 9 || r.reads != 2 {
		t.Fatalf("after invalidate: byte %d, %d reads, %v", buf[cacheBlock+5], r.reads, err)
	}
	// The drive's end: a short read with io.EOF, and the cut last block.
	n, err := c.ReadAt(buf, int64(len(r.data))-50)
	if n != 50 || err == nil {
		t.Errorf("read over the end: %d, %v", n, err)
	}
	// An invalidation while a fill is under way: the filled data may
	// predate the write, so it must not be kept.
	r.hook = func() { c.invalidate(8*cacheBlock, 1); r.hook = nil }
	c.ReadAt(buf[:cacheBlock], 8*cacheBlock)
	before := r.reads
	c.ReadAt(buf[:cacheBlock], 8*cacheBlock)
	if r.reads != before+1 {
		t.Error("data read across an invalidation was kept")
	}
	if _, err := c.ReadAt(buf, -1); err == nil {
		t.Error("negative offset accepted")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
