package xen

import (
	"errors"
	"testing"

	"github.com/xascript/xascript/vmi"
)

// A frame Xen refused is asked for again once the generation moves (the
// domain may own it now), and a mapped frame is mapped afresh (the fake's
// mappings are copies, as a mapping of a frame the domain gave back is).
func TestFrameCacheFollowsGeneration(t *testing.T) {
	mem := pageMem{}
	for f := uint64(0); f < chunkFrames; f++ {
		if f != 3 {
			mem[f] = new([pageSize]byte)
			le.PutUint64(mem[f][:], f)
		}
	}
	hv := &fakeHV{domain: 1, mem: mem, ranges: mem.ranges()}
	var gen vmi.Generation
	fc := newFrameCache(hv, 1, 0, &gen)
	if _, err := fc.frame(3); !errors.Is(err, vmi.ErrNotPresent) {
		t.Fatalf("frame 3 before the balloon: %v, want not present", err)
	}
	// The balloon gives the domain frame 3, and frame 1 a new content.
	mem[3] = new([pageSize]byte)
	le.PutUint64(mem[3][:], 0x333)
	hv.ranges = mem.ranges()
	le.PutUint64(mem[1][:], 0x111)
	if _, err := fc.frame(3); err == nil {
		t.Fatal("the refusal was not cached: the test shows nothing")
	}
	gen.Bump()
	b, err := fc.frame(3)
	if err != nil || le.Uint64(b) != 0x333 {
		t.Fatalf("frame 3 after a generation bump: %v, want it mapped", err)
	}
	if b, err := fc.frame(1); err != nil || le.Uint64(b) != 0x111 {
		t.Errorf("frame 1 after a generation bump: %v, holds the old mapping's bytes", err)
	}
	if hv.unmapCalls != 1 || len(hv.mapped) != 1 {
		t.Errorf("%d unmaps, %d mappings left; want the old chunk unmapped", hv.unmapCalls, len(hv.mapped))
	}
}

// pvLeaf returns the machine frame of the p2m page that holds pfn's entry,
// following shared_info as the guest published it.
func pvLeaf(mem pageMem, si, pfn uint64) uint64 {
	fll := le.Uint64(mem[si][3096:])
	mid := le.Uint64(mem[fll][pfn/(entriesPerPage*entriesPerPage)*8:])
	return le.Uint64(mem[mid][pfn/entriesPerPage%entriesPerPage*8:])
}

// A PV guest that moves a frame (a balloon out and in) rewrites its p2m: the
// target reads it again once the generation moves, on demand or when the
// liveness check sees the domain's page count change.
func TestPVP2MFollowsGeneration(t *testing.T) {
	for _, how := range []string{"bump", "balloon", "pause"} {
		t.Run(how, func(t *testing.T) {
			p2m := []uint64{0x30000, 0x30001, 0x30002}
			hv, mem := newPVFake(t, p2m)
			tg, err := open(hv, 7, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			read := func() uint64 {
				t.Helper()
				var b [8]byte
				if err := tg.ReadPhys(b[:], 1*pageSize); err != nil {
					t.Fatal(err)
				}
				return le.Uint64(b[:])
			}
			if got := read(); got != 0x30001 {
				t.Fatalf("pfn 1 holds %#x, want machine frame 0x30001's", got)
			}
			// pfn 1 moves to machine frame 0x40001.
			mem[0x40001] = new([pageSize]byte)
			le.PutUint64(mem[0x40001][:], 0x40001)
			le.PutUint64(mem[pvLeaf(mem, hv.shared, 1)][1*8:], 0x40001)
			hv.ranges = mem.ranges()
			if got := read(); got != 0x30001 {
				t.Fatalf("the p2m was read again before the generation moved (%#x): the test shows nothing", got)
			}
			switch how {
			case "bump":
				tg.Generation().Bump()
			case "balloon":
				hv.pages++
				for i := 0; i < aliveEvery; i++ {
					read()
				}
			case "pause":
				if err := tg.Pause(); err != nil {
					t.Fatal(err)
				}
			}
			if got := read(); got != 0x40001 {
				t.Errorf("pfn 1 holds %#x after the p2m changed, want machine frame 0x40001's", got)
			}
			if pfn, ok := tg.PhysFrame(0x40001); !ok || pfn != 1 {
				t.Errorf("PhysFrame(0x40001) = %#x, %v; want pfn 1", pfn, ok)
			}
			if _, ok := tg.PhysFrame(0x30001); ok {
				t.Error("the machine frame the guest gave back still maps to a guest frame")
			}
		})
	}
}

// Pause and Resume move the generation; a Pause that takes no pause of ours
// (one is held) does not.
func TestXenPauseMovesGeneration(t *testing.T) {
	hv, _ := newPVFake(t, []uint64{0x30000, 0x30001})
	tg, err := open(hv, 7, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	g := tg.Generation().Load()
	tg.Pause()
	if tg.Generation().Load() == g {
		t.Error("Pause did not move the generation")
	}
	g = tg.Generation().Load()
	tg.Pause()
	if tg.Generation().Load() != g {
		t.Error("a second Pause moved the generation")
	}
	tg.Resume()
	if tg.Generation().Load() == g {
		t.Error("Resume did not move the generation")
	}
}

// BenchmarkPVGenerationRound is what a monitor pays per pause round on a
// PV guest of 128 MiB: the generation moves, so the first read maps afresh
// and reads the p2m again (64 p2m pages, unchanged, so not inverted again).
// The fake's mappings are copies; real Xen maps without copying.
func BenchmarkPVGenerationRound(b *testing.B) {
	const pages = 128 << 20 / pageSize
	p2m := make([]uint64, pages)
	for i := range p2m {
		p2m[i] = 0x100000 + uint64(i)
	}
	hv, _ := newPVFake(b, p2m)
	tg, err := open(hv, 7, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer tg.Close()
	var buf [8]byte
	for b.Loop() {
		tg.Generation().Bump()
		if err := tg.ReadPhys(buf[:], 0x1000); err != nil {
			b.Fatal(err)
		}
	}
}
