package paging

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/xascript/xascript/vmi"
)

// mappedMem is flatMem that also hands out its pages (vmi.PageMapper), like
// a mapped dump, except for pages listed in unmapped.
type mappedMem struct {
	*flatMem
	unmapped map[uint64]bool
}

func (m mappedMem) PhysPage(pa uint64) *[vmi.PageSize]byte {
	pa &^= vmi.PageSize - 1
	if m.unmapped[pa] || pa+vmi.PageSize > uint64(len(m.b)) {
		return nil
	}
	return (*[vmi.PageSize]byte)(m.b[pa : pa+vmi.PageSize])
}

// ReadUint agrees with Read for every size and offset, through host pages,
// through ReadPhys, across pages, and fails like Read.
func TestReadUintMatchesRead(t *testing.T) {
	b := newBuilder(IA32e, 5*mib)
	const va = 0xffff_8880_0000_0000
	b.mapPage(va, 0x8_0000, 4*kib, 0)
	b.mapPage(va+0x1000, 0x7_0000, 4*kib, 0)
	b.mapPage(va+0x2000, 0x6_0000, 4*kib, 0)
	for i := 0; i < 0x1000; i++ {
		b.mem.b[0x8_0000+i] = byte(i * 7)
		b.mem.b[0x7_0000+i] = byte(i*13 + 1)
		b.mem.b[0x6_0000+i] = byte(i*3 + 5)
	}
	for _, mapped := range []bool{false, true} {
		var phys vmi.PhysReader = b.mem
		if mapped {
			phys = mappedMem{b.mem, map[uint64]bool{0x6_0000: true}}
		}
		s := New(phys, IA32e, b.root)
		if (s.mapper != nil) != mapped {
			t.Fatalf("mapper detection: %v", s.mapper)
		}
		for _, size := range []int{1, 2, 4, 8} {
			for _, off := range []uint64{0, 1, 0xff8, 0xffc, 0xffd, 0xfff, 0x1ffe, 0x2004} {
				buf := make([]byte, 8)
				want := readRef(t, s, buf[:size], va+off)
				for pass := 0; pass < 2; pass++ { // miss, then hit
					got, err := s.ReadUint(va+off, size)
					if err != nil || got != want {
						t.Fatalf("mapped=%v size %d off %#x pass %d: ReadUint = %#x, %v; Read = %#x", mapped, size, off, pass, got, err, want)
					}
				}
			}
		}
		if _, err := s.ReadUint(va+0x3000, 4); !errors.Is(err, vmi.ErrNotPresent) {
			t.Errorf("unmapped va: %v", err)
		}
		if _, err := s.ReadUint(va+0xffe, 4); err != nil { // crosses into the second page
			t.Errorf("cross-page: %v", err)
		}
		if _, err := s.ReadUint(va, 3); err == nil {
			t.Error("size 3 accepted")
		}
	}
}

// readRef reads through Read, the reference for ReadUint.
func readRef(t *testing.T, s *Space, buf []byte, va uint64) uint64 {
	t.Helper()
	if err := s.Read(buf, va); err != nil {
		t.Fatal(err)
	}
	full := make([]byte, 8)
	copy(full, buf)
	return binary.LittleEndian.Uint64(full)
}
