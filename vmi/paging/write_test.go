package paging

import (
	"bytes"
	"errors"
	"testing"

	"github.com/xascript/xascript/vmi"
)

// writableMem is liveMem that can be written, like a writable target: a
// write copies into memory and moves the generation.
type writableMem struct {
	liveMem
	readOnly error
	writes   int
}

func (m *writableMem) Writable() error { return m.readOnly }

func (m *writableMem) WritePhys(buf []byte, pa uint64) error {
	if m.readOnly != nil {
		return m.readOnly
	}
	if pa > uint64(len(m.b)) || uint64(len(buf)) > uint64(len(m.b))-pa {
		return &vmi.PhysError{Addr: pa, Err: vmi.ErrNotPresent}
	}
	m.writes++
	copy(m.b[pa:], buf)
	m.gen.Bump()
	return nil
}

func TestWriteSplitsAcrossPages(t *testing.T) {
	const va = 0xffff_8880_0010_0000
	b := newBuilder(IA32e, 5*mib)
	// Two neighbouring virtual pages on frames far apart, in the wrong
	// order: a write that did not split per page would land in between.
	b.mapPage(va, 0x9_0000, 4*kib, 0)
	b.mapPage(va+0x1000, 0x8_0000, 4*kib, 0)
	m := &writableMem{liveMem: liveMem{mappedMem: mappedMem{flatMem: b.mem}}}
	s := New(m, IA32e, b.root)
	// Cache both pages (host pointers included) before the write.
	if v, err := s.ReadUint(va+0xffc, 4); err != nil || v != 0 {
		t.Fatalf("read before write: %#x, %v", v, err)
	}
	s.ReadUint(va+0x1000, 4)
	data := []byte("0123456789abcdef")
	if err := s.Write(data, va+0x1000-8); err != nil {
		t.Fatal(err)
	}
	if m.writes != 2 {
		t.Errorf("%d physical writes for one write across two pages, want 2", m.writes)
	}
	if !bytes.Equal(b.mem.b[0x9_1000-8:0x9_1000], data[:8]) || !bytes.Equal(b.mem.b[0x8_0000:0x8_0008], data[8:]) {
		t.Error("the write did not land at the two pages' frames")
	}
	got := make([]byte, len(data))
	if err := s.Read(got, va+0x1000-8); err != nil || !bytes.Equal(got, data) {
		t.Errorf("read after write: %q, %v", got, err)
	}
	if v, err := s.ReadUint(va+0x1000, 4); err != nil || v != 0x62613938 { // "89ab"
		t.Errorf("ReadUint after write: %#x, %v", v, err)
	}

	// A write that runs into an unmapped page stores nothing.
	m.writes = 0
	err := s.Write(bytes.Repeat([]byte{0xee}, 16), va+0x2000-8)
	var te *TranslateError
	if !errors.As(err, &te) || !errors.Is(err, vmi.ErrNotPresent) {
		t.Errorf("write into an unmapped page: %v, want a translation error", err)
	}
	if m.writes != 0 || !bytes.Equal(b.mem.b[0x8_1000-8:0x8_1000], make([]byte, 8)) {
		t.Error("a write that failed to translate stored bytes")
	}
}

// A write to a page table changes translations at once: the target's
// generation moves, so the cached translation is walked again.
func TestWriteToPageTableIsSeen(t *testing.T) {
	const va = 0xffff_8880_0010_0000
	const ptVA = 0xffff_8880_0020_0000
	b := newBuilder(IA32e, 5*mib)
	pte := b.mapPage(va, 0x8_0000, 4*kib, 0)
	b.mapPage(ptVA, pte&^0xfff, 4*kib, 0) // the page table itself, mapped
	b.mem.put(0x8_0000, 4, 0x8888)
	b.mem.put(0x9_0000, 4, 0x9999)
	m := &writableMem{liveMem: liveMem{mappedMem: mappedMem{flatMem: b.mem}}}
	s := New(m, IA32e, b.root)
	if v, _ := s.ReadUint(va, 4); v != 0x8888 {
		t.Fatalf("before: %#x", v)
	}
	var e [8]byte
	e[0], e[1], e[2] = 0x03, 0x00, 0x09 // 0x9_0000 | present | writable
	if err := s.Write(e[:], ptVA+pte&0xfff); err != nil {
		t.Fatal(err)
	}
	if v, err := s.ReadUint(va, 4); err != nil || v != 0x9999 {
		t.Errorf("after rewriting the PTE: %#x, %v; want the new frame's 0x9999", v, err)
	}
}

func TestWriteRefused(t *testing.T) {
	const va = 0xffff_8880_0010_0000
	b := newBuilder(IA32e, 5*mib)
	b.mapPage(va, 0x8_0000, 4*kib, 0)
	// A target that is no vmi.Writer.
	if err := b.space().Write([]byte{1}, va); !errors.Is(err, vmi.ErrReadOnly) {
		t.Errorf("write to a reader: %v", err)
	}
	// A writer opened read-only.
	ro := errors.New("opened read-only")
	m := &writableMem{liveMem: liveMem{mappedMem: mappedMem{flatMem: b.mem}}, readOnly: ro}
	if err := New(m, IA32e, b.root).Write([]byte{1}, va); !errors.Is(err, ro) {
		t.Errorf("write to a read-only writer: %v", err)
	}
	if b.mem.b[0x8_0000] != 0 {
		t.Error("a refused write stored a byte")
	}
}
