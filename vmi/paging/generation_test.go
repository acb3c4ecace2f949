package paging

import (
	"testing"

	"github.com/xascript/xascript/vmi"
)

// liveMem is mappedMem with a generation, like a live target: it hands out
// host pages, and counts how many it handed out.
type liveMem struct {
	mappedMem
	gen    vmi.Generation
	handed int
}

func (m *liveMem) Generation() *vmi.Generation { return &m.gen }

func (m *liveMem) PhysPage(pa uint64) *[vmi.PageSize]byte {
	m.handed++
	return m.mappedMem.PhysPage(pa)
}

// Every cached translation, and the host page cached with it, is dropped
// when the target's generation moves: the guest's new page tables are
// walked and its new page is read, by Translate, Read and ReadUint alike.
func TestGenerationFlushes(t *testing.T) {
	const va = 0xffff_8880_0000_0000
	reads := map[string]func(s *Space) (uint64, error){
		"Translate": func(s *Space) (uint64, error) { return s.Translate(va + 8) },
		"Read": func(s *Space) (uint64, error) {
			var b [4]byte
			err := s.Read(b[:], va+8)
			return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24, err
		},
		"ReadUint": func(s *Space) (uint64, error) { return s.ReadUint(va+8, 4) },
	}
	for name, read := range reads {
		t.Run(name, func(t *testing.T) {
			b := newBuilder(IA32e, 5*mib)
			pte := b.mapPage(va, 0x8_0000, 4*kib, 0)
			b.mem.put(0x8_0008, 4, 0x8888)
			b.mem.put(0x9_0008, 4, 0x9999)
			m := &liveMem{mappedMem: mappedMem{flatMem: b.mem}}
			s := New(m, IA32e, b.root)
			want := func(v uint64) {
				t.Helper()
				got, err := read(s)
				if err != nil {
					t.Fatal(err)
				}
				if name == "Translate" { // the page's address, not its value
					v = map[uint64]uint64{0x8888: 0x8_0008, 0x9999: 0x9_0008}[v]
				}
				if got != v {
					t.Errorf("got %#x, want %#x", got, v)
				}
			}
			want(0x8888)
			want(0x8888)
			// The guest remaps va without the generation moving: the
			// cache still answers (that is what a cache is for).
			b.mem.put(pte, 8, 0x9_0000|3)
			want(0x8888)
			flushes, handed := s.Stats().Flushes, m.handed
			m.gen.Bump()
			want(0x9999)
			if s.Stats().Flushes != flushes+1 {
				t.Errorf("flushes %d -> %d after a generation bump, want one more", flushes, s.Stats().Flushes)
			}
			if name != "Translate" && m.handed != handed+1 {
				t.Errorf("host pages handed out %d -> %d: the page cached before the bump was kept", handed, m.handed)
			}
			want(0x9999) // and cached again under the new generation
			if s.Stats().Flushes != flushes+1 {
				t.Error("flushed again without a bump")
			}
		})
	}
}

// A bump during a walk (an event on another goroutine) leaves the new entry
// under the old generation: the next lookup drops it.
func TestGenerationBumpDuringWalk(t *testing.T) {
	const va = 0xffff_8880_0000_0000
	b := newBuilder(IA32e, 5*mib)
	pte := b.mapPage(va, 0x8_0000, 4*kib, 0)
	m := &bumpingMem{flatMem: b.mem}
	s := New(m, IA32e, b.root)
	m.bumpAt = 2 // the second table read of the walk
	if pa, err := s.Translate(va); err != nil || pa != 0x8_0000 {
		t.Fatalf("Translate = %#x, %v", pa, err)
	}
	b.mem.put(pte, 8, 0x9_0000|3)
	if pa, err := s.Translate(va); err != nil || pa != 0x9_0000 {
		t.Errorf("after a bump mid-walk: Translate = %#x, %v; want 0x90000", pa, err)
	}
}

type bumpingMem struct {
	*flatMem
	gen    vmi.Generation
	n      int
	bumpAt int
}

func (m *bumpingMem) Generation() *vmi.Generation { return &m.gen }

func (m *bumpingMem) ReadPhys(buf []byte, pa uint64) error {
	m.n++
	if m.n == m.bumpAt {
		m.gen.Bump()
	}
	return m.flatMem.ReadPhys(buf, pa)
}

// A target that is not a Generationer never flushes by itself, and Flush
// still works on demand.
func TestNoGenerationFlushOnDemand(t *testing.T) {
	const va = 0xffff_8880_0000_0000
	b := newBuilder(IA32e, 5*mib)
	pte := b.mapPage(va, 0x8_0000, 4*kib, 0)
	s := b.space()
	s.Translate(va)
	b.mem.put(pte, 8, 0x9_0000|3)
	if pa, _ := s.Translate(va); pa != 0x8_0000 {
		t.Fatalf("uncached: %#x", pa)
	}
	s.Flush()
	if pa, _ := s.Translate(va); pa != 0x9_0000 {
		t.Errorf("after Flush: %#x, want 0x90000", pa)
	}
}
