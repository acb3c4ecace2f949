package paging

import (
	"errors"
	"testing"

	"github.com/xascript/xascript/vmi"
)

// machineFrames is guest memory whose page tables were written with
// machine frame numbers, as a Xen PV guest's are: machine frame = guest
// frame + offset.
type machineFrames struct {
	*flatMem
	offset uint64 // in frames
}

func (m machineFrames) MachineFrames() bool { return true }

func (m machineFrames) PhysFrame(mfn uint64) (uint64, bool) {
	if mfn < m.offset || mfn-m.offset >= uint64(len(m.b))/pageSize {
		return 0, false
	}
	return mfn - m.offset, true
}

// toMachine rewrites every present entry of the builder's tables to name
// machine frames.
func toMachine(b *builder, offset uint64) {
	for pa := uint64(0x1000); pa < b.next; pa += 8 {
		e := b.mem.get(pa, 8)
		if e&1 != 0 {
			b.mem.put(pa, 8, e+offset*pageSize)
		}
	}
}

func TestMachineFramePageTables(t *testing.T) {
	const off = 0x40000
	b := newBuilder(IA32e, 1*mib)
	const (
		va1 = 0xffff_8880_03a4_b000
		va2 = 0xffff_ffff_8100_0000
	)
	b.mapPage(va1, 0x5000, 4*kib, 0)
	b.mapPage(va2, 0x7000, 4*kib, 0)
	foreign := b.mapPage(0xffff_ffff_8200_0000, 0x9000, 4*kib, 0)
	b.mapPage(0xffff_ffff_a000_0000, 0x20_0000, 2*mib, 0)
	toMachine(b, off)
	s := New(machineFrames{b.mem, off}, IA32e, b.root)
	// (check's reference walker knows no machine frames: compare directly)
	for va, want := range map[uint64]uint64{va1 + 0x129: 0x5129, va2 + 0xfff: 0x7fff} {
		if pa, err := s.Translate(va); err != nil || pa != want {
			t.Errorf("Translate(%#x) = %#x, %v; want %#x", va, pa, err, want)
		}
	}

	// A frame the guest does not own: not present.
	b.mem.put(foreign, 8, 0x7777_7000|1) // machine frame 0x77777, not in the p2m
	_, err := s.Translate(0xffff_ffff_8200_0000)
	var te *TranslateError
	if !errors.As(err, &te) || te.Level != LevelPT || !errors.Is(err, vmi.ErrNotPresent) {
		t.Errorf("foreign machine frame: %v, want not present at the PT", err)
	}

	// Large pages have no meaning in machine frames.
	if _, err := s.Translate(0xffff_ffff_a000_0000); !errors.Is(err, vmi.ErrUnsupported) {
		t.Errorf("large page over machine frames: %v, want ErrUnsupported", err)
	}
}
