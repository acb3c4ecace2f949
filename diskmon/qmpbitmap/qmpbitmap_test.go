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

// TestPollExportLingers: QEMU still lists the bitmap's export (and finds
// the bitmap busy) after block-export-del: the poll waits for the export
// to go before it removes the bitmap, and leaves neither behind. Without
// the lingering, a poll with changes is add+disable, export, del, remove:
// no query-block-exports.
func TestPollExportLingers(t *testing.T) {
	f := newFakeQEMU(t)
	s, err := Open(context.Background(), f, Options{Drive: "data", TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	me := "xascript-" + itoa(os.Getpid())
	for i, linger := range []int{0, 2, 0} {
		f.mu.Lock()
		f.linger = linger
		f.log = nil
		f.mu.Unlock()
		f.write(4096)
		s.Poll(context.Background(), func(Change) {}) // the fake has no bitmap context: an error, handled the same
		f.mu.Lock()
		log := strings.Join(f.log, " ")
		f.mu.Unlock()
		gen := itoa(i + 2)
		if st, want := f.state(), "bitmap "+me+"-"+gen+",export "+me+"-data server=true"; st != want {
			t.Errorf("poll %d (linger %d): %s, want %s", i, linger, st, want)
		}
		want := "query-named-block-nodes query-blockstats transaction block-export-add block-export-del block-dirty-bitmap-remove"
		if linger > 0 {
			want += " block-export-del query-block-exports query-block-exports query-block-exports block-dirty-bitmap-remove"
		}
		if log != want {
			t.Errorf("poll %d (linger %d) sent\n%s\nwant\n%s", i, linger, log, want)
		}
	}
	f.mu.Lock()
	var g float64 // no panic while f.mu is held: the deferred Close needs it
	if b := f.bitmaps[me+"-4"]; b != nil {
		g = b.granularity
	}
	f.mu.Unlock()
	if g != 4096 {
		t.Errorf("bitmap granularity %v, want 4096", g)
	}
}

func TestGranularity(t *testing.T) {
	for _, c := range []struct{ size, want int64 }{
		{4 << 20, 4096}, {1 << 30, 4096}, {64 << 30, 4096}, {64<<30 + 1, 8192}, {1 << 40, 64 << 10}, {1 << 62, 1 << 30},
	} {
		if g := granularity(c.size); g != c.want {
			t.Errorf("granularity(%d) = %d, want %d", c.size, g, c.want)
		}
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
	c.invalidate(8*cacheBlock, 1)
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

// TestBlockCacheReadAhead: a miss fetches the blocks after it in the same
// request, up to readAhead and not past a cached block or the drive's end;
// the view's next reads of those blocks cost no round trip.
func TestBlockCacheReadAhead(t *testing.T) {
	const blocks = 3 * readAhead / cacheBlock
	r := &countingReader{data: make([]byte, blocks*cacheBlock)}
	for i := range r.data {
		r.data[i] = byte(i / cacheBlock)
	}
	c := newBlockCache(r, int64(len(r.data)))
	buf := make([]byte, 256) // an inode's worth
	for b := 0; b < readAhead/cacheBlock; b++ {
		if _, err := c.ReadAt(buf, int64(b)*cacheBlock+512); err != nil || buf[0] != byte(b) {
			t.Fatalf("block %d: %v, byte %d", b, err, buf[0])
		}
	}
	if reads, bytes := c.stats(); r.reads != 1 || reads != 1 || bytes != readAhead {
		t.Fatalf("%d blocks read one by one: %d requests (%d counted, %d bytes), want one of %d bytes",
			readAhead/cacheBlock, r.reads, reads, bytes, readAhead)
	}
	// A cached block ends the read-ahead: block next is cached, so a miss
	// just before it reads one block.
	next := int64(readAhead/cacheBlock + 2)
	c.ReadAt(buf, next*cacheBlock)
	before := r.reads
	if _, err := c.ReadAt(buf, (next-1)*cacheBlock); err != nil || buf[0] != byte(next-1) {
		t.Fatalf("block %d: %v, byte %d", next-1, err, buf[0])
	}
	if _, bytes := c.stats(); r.reads != before+1 || bytes != readAhead+readAhead+cacheBlock {
		t.Errorf("miss before a cached block: %d requests, %d bytes in all", r.reads-before, bytes)
	}
	// The drive's end bounds it: the last block, cut short, is read alone.
	c.invalidate(uint64(len(r.data))-cacheBlock, cacheBlock)
	if _, err := c.ReadAt(buf[:10], int64(len(r.data))-10); err != nil || buf[0] != byte(blocks-1) {
		t.Errorf("last block: %v, byte %d", err, buf[0])
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
