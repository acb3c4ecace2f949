package xen

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xascript/xascript/vmi"
)

// pvGuest builds a PV domain's machine memory: a shared_info page whose
// p2m (frame list list -> frame list -> p2m pages) lists the frames in
// p2m order, with holes where an entry is invalid.
func pvGuest(t testing.TB, p2m []uint64) (pageMem, uint64) {
	t.Helper()
	mem := pageMem{}
	next := uint64(0x90000) // machine frames for the bookkeeping pages
	alloc := func() (uint64, *[pageSize]byte) {
		next++
		p := new([pageSize]byte)
		mem[next] = p
		return next, p
	}
	for _, e := range p2m {
		if e != p2mInvalid {
			mem[e] = new([pageSize]byte)
			le.PutUint64(mem[e][:], e) // each frame holds its own number
		}
	}
	fllMFN, fll := alloc()
	for i := 0; i*entriesPerPage*entriesPerPage < len(p2m); i++ {
		midMFN, mid := alloc()
		le.PutUint64(fll[i*8:], midMFN)
		for j := 0; j < entriesPerPage; j++ {
			base := (i*entriesPerPage + j) * entriesPerPage
			if base >= len(p2m) {
				break
			}
			leafMFN, leaf := alloc()
			le.PutUint64(mid[j*8:], leafMFN)
			for k := 0; k < entriesPerPage && base+k < len(p2m); k++ {
				le.PutUint64(leaf[k*8:], p2m[base+k])
			}
		}
	}
	siMFN, si := alloc()
	le.PutUint64(si[3088:], uint64(len(p2m))) // arch.max_pfn
	le.PutUint64(si[3096:], fllMFN)           // arch.pfn_to_mfn_frame_list_list
	return mem, siMFN
}

func newPVFake(t testing.TB, p2m []uint64) (*fakeHV, pageMem) {
	mem, si := pvGuest(t, p2m)
	cr3 := uint64(0)
	for _, m := range p2m {
		if m != p2mInvalid && m&p2mFlagBits == 0 {
			cr3 = m * pageSize // some frame of the guest's
			break
		}
	}
	return &fakeHV{domain: 7, version: 4<<16 | 17, mem: mem, ranges: mem.ranges(), shared: si,
		pages: uint64(len(p2m)), cpu: vmi.CPUState{CR0: 0x80050033, CR3: cr3, CR4: 0x2660}}, mem
}

func TestPVMemoryMapFromP2M(t *testing.T) {
	// 1100 pfns: more than two p2m pages, backed by scattered machine
	// frames, with invalid entries and a foreign-flagged one.
	var p2m, wantPFNs []uint64
	for pfn := 0; pfn < 1100; pfn++ {
		switch {
		case pfn%97 == 5:
			p2m = append(p2m, p2mInvalid)
		case pfn == 300:
			p2m = append(p2m, 1<<63|0x5555)
		default:
			p2m = append(p2m, uint64(0x20000+(pfn*7919)%5003))
			wantPFNs = append(wantPFNs, uint64(pfn))
		}
	}
	// The guest's CR3 names the machine frame of pfn 7.
	hv, _ := newPVFake(t, p2m)
	hv.cpu.CR3 = p2m[7]*pageSize | 0x18 // with PCID-ish low bits
	tg, err := open(hv, 7, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	var got []uint64
	for _, r := range tg.MemoryMap() {
		for a := r.Start; a < r.End; a += pageSize {
			got = append(got, a/pageSize)
		}
	}
	if !slices.Equal(got, wantPFNs) {
		t.Fatalf("memory map lists %d guest frames, want %d", len(got), len(wantPFNs))
	}
	// Reads of guest frames go to their machine frames, each of which
	// holds its own number.
	for _, pfn := range []uint64{0, 6, 299, 1099} {
		var b [8]byte
		if err := tg.ReadPhys(b[:], pfn*pageSize); err != nil || le.Uint64(b[:]) != p2m[pfn] {
			t.Errorf("read guest frame %#x: %v, holds %#x, want machine frame %#x", pfn, err, le.Uint64(b[:]), p2m[pfn])
		}
		if m, ok := tg.MachineFrame(pfn); !ok || m != p2m[pfn] {
			t.Errorf("MachineFrame(%#x) = %#x, %v", pfn, m, ok)
		}
		if p, ok := tg.PhysFrame(p2m[pfn]); !ok || p != pfn {
			t.Errorf("PhysFrame(%#x) = %#x, %v; want %#x", p2m[pfn], p, ok, pfn)
		}
	}
	for _, pfn := range []uint64{5, 300, 1100} { // invalid, foreign, beyond max_pfn
		if err := tg.ReadPhys(make([]byte, 4), pfn*pageSize); !errors.Is(err, vmi.ErrNotPresent) {
			t.Errorf("read of guest frame %#x: %v, want not present", pfn, err)
		}
	}
	if _, ok := tg.PhysFrame(0x5555); ok {
		t.Error("a foreign-flagged machine frame maps to a guest frame")
	}
	cpu := tg.CPU()
	if !cpu.Known || cpu.CR3 != 7*pageSize|0x18 || cpu.EFER&vmi.EFERLMA == 0 || cpu.CR4&vmi.CR4PAE == 0 {
		t.Errorf("PV CPU state %+v: want CR3 in guest frames (pfn 7) and long mode", cpu)
	}
	if !tg.PV() || !tg.MachineFrames() || !strings.Contains(tg.Kind(), "PV") {
		t.Errorf("Kind %q, PV %v", tg.Kind(), tg.PV())
	}
}

func TestPVHostileP2M(t *testing.T) {
	p2m := []uint64{0x30000, 0x30001}
	t.Run("huge max_pfn", func(t *testing.T) {
		hv, mem := newPVFake(t, p2m)
		le.PutUint64(mem[hv.shared][3088:], 1<<40)
		if _, err := open(hv, 7, Options{}); !errors.Is(err, vmi.ErrLimit) {
			t.Fatalf("err = %v, want ErrLimit", err)
		}
	})
	t.Run("frame list list not mapped", func(t *testing.T) {
		hv, mem := newPVFake(t, p2m)
		le.PutUint64(mem[hv.shared][3096:], 0xdead)
		_, err := open(hv, 7, Options{})
		if !errors.Is(err, vmi.ErrNotPresent) || !strings.Contains(err.Error(), "0xdead") {
			t.Fatalf("err = %v, want not present naming mfn 0xdead", err)
		}
	})
	t.Run("no frame list", func(t *testing.T) {
		hv, mem := newPVFake(t, p2m)
		le.PutUint64(mem[hv.shared][3096:], 0)
		if _, err := open(hv, 7, Options{}); !errors.Is(err, vmi.ErrUnsupported) {
			t.Fatalf("err = %v, want ErrUnsupported", err)
		}
	})
}

func TestOpenErrors(t *testing.T) {
	hv, _ := newPVFake(t, []uint64{0x30000})
	hv.version = 4<<16 | 99
	if _, err := open(hv, 7, Options{}); err == nil || !strings.Contains(err.Error(), "Xen 4.99 is not supported") {
		t.Errorf("unknown version: %v", err)
	}
	hv.version = 4<<16 | 17
	if _, err := open(hv, 8, Options{}); !errors.Is(err, ErrNoDomain) {
		t.Errorf("missing domain: %v", err)
	}
	hv.dying = true
	if _, err := open(hv, 7, Options{}); err == nil || !strings.Contains(err.Error(), "dying") {
		t.Errorf("dying domain: %v", err)
	}
	hv.dying = false
	good := hv.cpu.CR3
	hv.cpu.CR3 = 0xdead000
	if _, err := open(hv, 7, Options{}); err == nil || !strings.Contains(err.Error(), "CR3 0xdead000 is not a frame of the guest's p2m") {
		t.Errorf("CR3 outside the p2m: %v", err)
	}
	hv.cpu.CR3 = good
	if _, err := open(hv, 7, Options{VCPU: 3}); err == nil || !strings.Contains(err.Error(), "no vCPU 3") {
		t.Errorf("missing vCPU: %v", err)
	}
}

func TestPauseResumeAndClose(t *testing.T) {
	hv, _ := newPVFake(t, []uint64{0x30000, 0x30001})
	tg, err := open(hv, 7, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if tg.Paused() {
		t.Fatal("paused before Pause")
	}
	if err := tg.Pause(); err != nil {
		t.Fatal(err)
	}
	tg.Pause() // idempotent: one pause held
	if hv.paused != 1 || !tg.Paused() {
		t.Fatalf("pause count %d, Paused %v", hv.paused, tg.Paused())
	}
	if err := tg.Resume(); err != nil || hv.paused != 0 {
		t.Fatalf("Resume: %v, count %d", err, hv.paused)
	}
	// An operator's pause is seen but not undone by us.
	hv.paused = 1
	if !tg.Paused() {
		t.Error("operator's pause not seen")
	}
	tg.Resume()
	if hv.paused != 1 {
		t.Error("Resume undid a pause it did not take")
	}
	hv.paused = 0
	tg.Pause()
	if err := tg.Close(); err != nil {
		t.Fatal(err)
	}
	if hv.paused != 0 || len(hv.mapped) != 0 || !hv.closeCalled {
		t.Errorf("after Close: pause count %d, %d mappings left, closed %v", hv.paused, len(hv.mapped), hv.closeCalled)
	}
	if err := tg.ReadPhys(make([]byte, 4), 0x30000*pageSize); err == nil {
		t.Error("read after Close succeeded")
	}
}

func TestFrameCacheLRU(t *testing.T) {
	mem := pageMem{}
	for f := uint64(0); f < 8*chunkFrames; f++ {
		if f%chunkFrames == 3 {
			continue // a frame Xen refuses in every chunk
		}
		mem[f] = new([pageSize]byte)
		le.PutUint64(mem[f][:], f)
	}
	hv := &fakeHV{domain: 1, mem: mem, ranges: mem.ranges()}
	fc := newFrameCache(hv, 1, 2, new(vmi.Generation))
	read := func(f uint64) error {
		b, err := fc.frame(f)
		if err == nil && le.Uint64(b) != f {
			t.Fatalf("frame %#x holds %#x", f, le.Uint64(b))
		}
		return err
	}
	for _, f := range []uint64{0, 1, chunkFrames, 2, 2 * chunkFrames, 5} {
		if err := read(f); err != nil {
			t.Fatal(err)
		}
	}
	// chunk 0 was used last before chunk 2 came in, so chunk 1 was evicted;
	// reading 5 again hits.
	if len(hv.mapped) != 2 || hv.unmapCalls != 1 {
		t.Errorf("%d chunks mapped, %d unmaps; want 2 and 1", len(hv.mapped), hv.unmapCalls)
	}
	s := fc.stats
	if s.Misses != 3 || s.Hits != 3 || s.FramesFailed != 3 {
		t.Errorf("stats %+v", s)
	}
	if err := read(3); !errors.Is(err, vmi.ErrNotPresent) {
		t.Errorf("refused frame: %v", err)
	}
	err := fc.read(make([]byte, 2*pageSize), 2*pageSize+100) // spans into refused frame 3
	var pe *vmi.PhysError
	if !errors.As(err, &pe) || pe.Addr != 3*pageSize {
		t.Errorf("read across a refused frame: %v", err)
	}
	fc.flush()
	if len(hv.mapped) != 0 {
		t.Errorf("%d mappings after flush", len(hv.mapped))
	}
}

func TestDomctlBatchFailure(t *testing.T) {
	hv := &failingHV{fakeHV{domain: 1, mem: pageMem{}, ranges: []vmi.Range{{Start: 0, End: pageSize}}}}
	fc := newFrameCache(hv, 1, 0, new(vmi.Generation))
	if _, err := fc.frame(0); !errors.Is(err, unix.EFAULT) {
		t.Fatalf("err = %v, want the batch's error", err)
	}
}

type failingHV struct{ fakeHV }

func (f *failingHV) MapFrames(uint16, []uint64, bool) ([]byte, []int32, error) {
	return nil, nil, unix.EFAULT
}

// A domain that dies or is destroyed under a script: reads fail with
// ErrGone within aliveEvery reads, even of frames still mapped.
func TestGoneMidScript(t *testing.T) {
	for _, how := range []string{"dying", "destroyed"} {
		t.Run(how, func(t *testing.T) {
			hv, _ := newPVFake(t, []uint64{0x30000, 0x30001})
			tg, err := open(hv, 7, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			b := make([]byte, 8)
			if err := tg.ReadPhys(b, 0); err != nil {
				t.Fatal(err)
			}
			if how == "dying" {
				hv.dying = true
			} else {
				hv.domain = 99 // getdomaininfo of 7 now fails with ESRCH
			}
			var rerr error
			for i := 0; i < 2*aliveEvery && rerr == nil; i++ {
				rerr = tg.ReadPhys(b, 0)
			}
			if !errors.Is(rerr, ErrGone) || !strings.Contains(rerr.Error(), how) {
				t.Fatalf("read after the domain was %s: %v", how, rerr)
			}
			if err := tg.ReadPhys(b, pageSize); !errors.Is(err, ErrGone) {
				t.Errorf("later read: %v", err)
			}
			if err := tg.Pause(); !errors.Is(err, ErrGone) {
				t.Errorf("pause: %v", err)
			}
		})
	}
}

// `xl destroy` pauses the domain before it marks it dying: a monitor that
// finds it paused must not take that for a pause it may read under. Once
// the domain is dying (or gone) Paused says no, so with_paused pauses, and
// that Pause fails with ErrGone naming the domain; reads fail with it too.
func TestPausedDomainBeingDestroyed(t *testing.T) {
	for _, how := range []string{"dying", "destroyed"} {
		t.Run(how, func(t *testing.T) {
			hv, _ := newPVFake(t, []uint64{0x30000, 0x30001})
			tg, err := open(hv, 7, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			hv.paused = 1 // the toolstack's pause, before the kill
			if !tg.Paused() {
				t.Fatal("a domain paused by the toolstack reads as running")
			}
			if how == "dying" {
				hv.dying = true
			} else {
				hv.domain = 99
			}
			if tg.Paused() {
				t.Errorf("a %s domain reads as paused", how)
			}
			perr := tg.Pause()
			if !errors.Is(perr, ErrGone) || !strings.Contains(perr.Error(), "domain 7") || !strings.Contains(perr.Error(), how) {
				t.Errorf("pause of a %s domain: %v", how, perr)
			}
			if err := tg.ReadPhys(make([]byte, 8), 0); !errors.Is(err, ErrGone) {
				t.Errorf("read of a %s domain: %v", how, err)
			}
		})
	}
}

// A script that reads little at a time (a few dozen reads a round, a round
// every fraction of a second) meets the domain's end within about
// aliveAfter of it, not only after aliveEvery reads.
func TestGoneFoundInTime(t *testing.T) {
	hv, _ := newPVFake(t, []uint64{0x30000, 0x30001})
	tg, err := open(hv, 7, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	b := make([]byte, 8)
	hv.dying = true
	start, reads := time.Now(), 0
	var rerr error
	for rerr == nil && reads < aliveEvery/2 {
		for i := 0; i < aliveClockEvery && rerr == nil; i++ {
			rerr = tg.ReadPhys(b, 0)
			reads++
		}
		time.Sleep(aliveAfter / 5)
	}
	if !errors.Is(rerr, ErrGone) {
		t.Fatalf("%d reads over %v of a dying domain, the last: %v", reads, time.Since(start), rerr)
	}
	if took := time.Since(start); took > 4*aliveAfter {
		t.Errorf("the end was found %v (%d reads) after it", took, reads)
	}
}
