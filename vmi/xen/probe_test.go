package xen

import (
	"slices"
	"testing"

	"github.com/xascript/xascript/vmi"
)

// zeroMem is memory of zeros over some ranges, holes elsewhere.
type zeroMem []vmi.Range

func (z zeroMem) ReadPhys(buf []byte, pa uint64) error {
	for _, r := range z {
		if r.Contains(pa) && uint64(len(buf)) <= r.End-pa {
			clear(buf)
			return nil
		}
	}
	return &vmi.PhysError{Addr: pa, Err: vmi.ErrNotPresent}
}

// A PVH-like layout: low RAM with the legacy hole, RAM up to 128 MiB, and
// special pages just below 4 GiB. The probe finds exactly these ranges,
// with a few hundred mapping calls rather than one per frame.
func TestProbeMemoryMap(t *testing.T) {
	for _, want := range [][]vmi.Range{
		{{Start: 0, End: 0xa0000}, {Start: 0x100000, End: 0x8000000}, {Start: 0xfeff0000, End: 0xfeffb000}},
		{{Start: 0, End: 0x8000000}},
		{{Start: 0x1000, End: 0x2000}, {Start: 0x3ff000, End: 0x401000}},
	} {
		hv := &fakeHV{domain: 2, mem: zeroMem(want), ranges: want, hvm: true}
		got, err := probeMemoryMap(hv, 2, want[len(want)-1].End/pageSize-1)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("probed %v, want %v", got, want)
		}
		if len(hv.mapped) != 0 {
			t.Errorf("%d probe mappings left", len(hv.mapped))
		}
		if hv.mapCalls > 100 {
			t.Errorf("%d mapping calls to probe %v", hv.mapCalls, want)
		}
	}
}

// A span stretched to 2^40 frames (a guest can populate one frame that
// high) is probed with a bounded number of frames, not frame by frame.
func TestProbeHugeSpanIsBounded(t *testing.T) {
	want := []vmi.Range{{Start: 0, End: 0x8000000}, {Start: (1<<40 - 1) * pageSize, End: 1 << 40 * pageSize}}
	hv := &fakeHV{domain: 2, mem: zeroMem(want), ranges: want, hvm: true}
	counting := &countingHV{fakeHV: hv}
	got, err := probeMemoryMap(counting, 2, 1<<40-1)
	if err != nil {
		t.Fatal(err)
	}
	if counting.frames > 1<<16 {
		t.Errorf("probed %d frames for a 2^40-frame span", counting.frames)
	}
	if len(got) == 0 || got[0].Start != 0 {
		t.Errorf("probed %v", got)
	}
}

type countingHV struct {
	*fakeHV
	frames int
}

func (c *countingHV) MapFrames(d uint16, frames []uint64, writable bool) ([]byte, []int32, error) {
	c.frames += len(frames)
	return c.fakeHV.MapFrames(d, frames, writable)
}
