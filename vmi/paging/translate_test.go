package paging

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/xascript/xascript/vmi"
)

const (
	kib = 1 << 10
	mib = 1 << 20
	gib = 1 << 30
)

// check translates va, expecting pa, and compares with the reference walker.
func check(t *testing.T, s *Space, va, want uint64) {
	t.Helper()
	got, err := s.Translate(va)
	if err != nil || got != want {
		t.Errorf("Translate(%#x) = %#x, %v; want %#x", va, got, err, want)
	}
	ref := refTranslate(s.phys, s.mode, s.root, va)
	if !ref.ok || ref.pa != want {
		t.Errorf("reference walker disagrees for %#x: %+v", va, ref)
	}
	// The second lookup comes from the cache and must agree.
	if got2, err := s.Translate(va); err != nil || got2 != want {
		t.Errorf("cached Translate(%#x) = %#x, %v; want %#x", va, got2, err, want)
	}
}

// checkFail translates va, expecting a *TranslateError at level, wrapping
// sentinel.
func checkFail(t *testing.T, s *Space, va uint64, level Level, sentinel error) *TranslateError {
	t.Helper()
	pa, err := s.Translate(va)
	var te *TranslateError
	if !errors.As(err, &te) {
		t.Fatalf("Translate(%#x) = %#x, %v; want *TranslateError", va, pa, err)
	}
	if te.Level != level || !errors.Is(err, sentinel) || te.VA != va {
		t.Errorf("Translate(%#x) error %q: level %v, VA %#x; want level %v wrapping %v", va, err, te.Level, te.VA, level, sentinel)
	}
	ref := refTranslate(s.phys, s.mode, s.root, va)
	if ref.ok || ref.level != level || ref.format != errors.Is(err, vmi.ErrFormat) {
		t.Errorf("reference walker disagrees for %#x: %+v", va, ref)
	}
	return te
}

func TestIA32e(t *testing.T) {
	b := newBuilder(IA32e, 1*mib)
	const (
		va4k = 0xffff_8880_03a4_b000
		va2m = 0xffff_ffff_8100_0000 // kernel text, 2 MiB page
		va1g = 0xffff_c900_0000_0000 // 1 GiB page
		pa4k = 0x0000_0123_4567_8000
		pa2m = 0x0000_0000_0120_0000
		pa1g = 0x000f_ffff_c000_0000 // highest 1 GiB frame of 52-bit space
	)
	b.mapPage(va4k, pa4k, 4*kib, 1<<63) // XD set: ignored for reads
	b.mapPage(va2m, pa2m, 2*mib, 0)
	b.mapPage(va1g, pa1g, 1*gib, 0x7ff<<52) // protection key and ignored bits
	s := b.space()
	check(t, s, va4k+0x129, pa4k+0x129)
	check(t, s, va4k, pa4k)
	check(t, s, va4k+0xfff, pa4k+0xfff)
	check(t, s, va2m+0x1234, pa2m+0x1234)
	check(t, s, va2m+0x1f_ffff, pa2m+0x1f_ffff)
	check(t, s, va1g+0x3fff_ffff, pa1g+0x3fff_ffff)
	check(t, s, va1g+0x1234_5678, pa1g+0x1234_5678)

	// Large-page entries keep PAT in bit 12 and have reserved bits below the
	// page size: none of them is an address bit.
	b.mapPage(0xffff_ffff_a000_0000, 0x40_0000, 2*mib, 1<<12|0x1_e000)
	check(t, s, 0xffff_ffff_a000_1234, 0x40_1234)
	b.mapPage(0xffff_ca00_0000_0000, 0x8000_0000, 1*gib, 1<<12|0x3fff_e000)
	check(t, s, 0xffff_ca00_0000_1234, 0x8000_1234)

	// Lower half, canonical.
	b.mapPage(0x7fff_ffff_f000, 0x5000, 4*kib, 0)
	check(t, s, 0x7fff_ffff_fabc, 0x5abc)

	w, err := s.Walk(va2m + 5)
	if err != nil || w.PageSize != 2*mib || w.PA != pa2m+5 || len(w.Steps) != 3 {
		t.Fatalf("Walk = %+v, %v", w, err)
	}
	for i, l := range []Level{LevelPML4, LevelPDPT, LevelPD} {
		if w.Steps[i].Level != l {
			t.Errorf("step %d level %v, want %v", i, w.Steps[i].Level, l)
		}
	}
	if w.Steps[2].Entry != pa2m|0x83 {
		t.Errorf("PD entry %#x", w.Steps[2].Entry)
	}
	if str := w.String(); !strings.Contains(str, "PDPT entry at pa") || !strings.Contains(str, "2 MiB page") {
		t.Errorf("Walk.String:\n%s", str)
	}
	if w, _ := s.Walk(va1g); w.PageSize != 1*gib || !strings.Contains(w.String(), "1 GiB page") {
		t.Errorf("1 GiB walk: %v", w)
	}
	if w, _ := s.Walk(va4k); w.PageSize != 4*kib || len(w.Steps) != 4 || !strings.Contains(w.String(), "4 KiB page") {
		t.Errorf("4 KiB walk: %v", w)
	}
}

func TestIA32eFaults(t *testing.T) {
	b := newBuilder(IA32e, 1*mib)
	const va = 0xffff_8880_03a4_b129
	s := b.space()

	// Empty PML4.
	te := checkFail(t, s, va, LevelPML4, vmi.ErrNotPresent)
	wantAddr := b.root + (va>>39&0x1ff)*8
	if te.EntryAddr != wantAddr || te.Entry != 0 {
		t.Errorf("entry at %#x = %#x, want at %#x", te.EntryAddr, te.Entry, wantAddr)
	}

	// PT present but its entry not: make the chain, then clear the PTE
	// leaving other bits in it.
	pte := b.mapPage(va&^0xfff, 0x9000, 4*kib, 0)
	check(t, s, va, 0x9129)
	b.mem.put(pte, 8, 0x9002) // not present, address bits left over
	s.Flush()
	te = checkFail(t, s, va, LevelPT, vmi.ErrNotPresent)
	if te.Entry != 0x9002 || te.EntryAddr != pte {
		t.Errorf("PT fault entry at %#x = %#x", te.EntryAddr, te.Entry)
	}

	// Not present at PD and PDPT.
	pde := b.entryAddr(va, 21)
	b.mem.put(pde, 8, 0)
	te = checkFail(t, s, va, LevelPD, vmi.ErrNotPresent)
	want := "translate 0xffff888003a4b129: PD entry at pa " + hex(pde) + " = 0x0 not present"
	if te.Error() != want {
		t.Errorf("message\n got %q\nwant %q", te.Error(), want)
	}
	pdpte := b.entryAddr(va, 30)
	saved := b.mem.get(pdpte, 8)
	b.mem.put(pdpte, 8, 0)
	checkFail(t, s, va, LevelPDPT, vmi.ErrNotPresent)
	b.mem.put(pdpte, 8, saved)

	// PS set in a PML4 entry is a reserved-bit violation.
	pml4e := b.entryAddr(va, 39)
	saved = b.mem.get(pml4e, 8)
	b.mem.put(pml4e, 8, saved|0x80)
	te = checkFail(t, s, va, LevelPML4, vmi.ErrFormat)
	if !strings.Contains(te.Error(), "PML4 entry at pa") || !strings.Contains(te.Error(), "reserved") {
		t.Errorf("message %q", te.Error())
	}

	// A table pointer into a hole: the read error is wrapped.
	b.mem.put(pml4e, 8, 0x0000_0040_0000_0003)
	te = checkFail(t, s, va, LevelPDPT, vmi.ErrNotPresent)
	var pe *vmi.PhysError
	if !errors.As(te, &pe) || pe.Addr != 0x40_0000_0000+(va>>30&0x1ff)*8 {
		t.Errorf("want the PhysError inside, got %q", te.Error())
	}
	if !strings.Contains(te.Error(), "reading PDPT entry at pa 0x4000000") {
		t.Errorf("message %q", te.Error())
	}

	// CR3 itself in a hole.
	s2 := New(b.mem, IA32e, 0x7000_0000)
	checkFail(t, s2, va, LevelPML4, vmi.ErrNotPresent)
}

func hex(v uint64) string { return fmt.Sprintf("%#x", v) }

func TestNonCanonical(t *testing.T) {
	b4 := newBuilder(IA32e, 64*kib)
	b5 := newBuilder(LA57, 64*kib)
	s4, s5 := b4.space(), b5.space()
	for _, va := range []uint64{0x0000_8000_0000_0000, 0xffff_7fff_ffff_ffff, 0x1234_5678_9abc_def0, 0x8000_0000_0000_0000} {
		te := checkFail(t, s4, va, LevelAddress, ErrNonCanonical)
		if !errors.Is(te, vmi.ErrNotPresent) || !strings.Contains(te.Error(), "non-canonical") {
			t.Errorf("%#x: %q", va, te.Error())
		}
	}
	// 57-bit canonical, not 48-bit: LA57 walks it (and finds nothing).
	for _, va := range []uint64{0x00ff_ffff_ffff_f000, 0xff00_0000_0000_0000, 0x0000_8000_0000_0000} {
		checkFail(t, s4, va, LevelAddress, ErrNonCanonical)
		checkFail(t, s5, va, LevelPML5, vmi.ErrNotPresent)
	}
	for _, va := range []uint64{0x0100_0000_0000_0000, 0xfeff_ffff_ffff_ffff} {
		checkFail(t, s5, va, LevelAddress, ErrNonCanonical)
	}
	for _, m := range []Mode{PAE, Legacy32, Legacy32NoPSE} {
		s := newBuilder(m, 64*kib).space()
		checkFail(t, s, 1<<32, LevelAddress, ErrNonCanonical)
		checkFail(t, s, 0xffff_ffff_c000_0000, LevelAddress, ErrNonCanonical)
	}
}

func TestLA57(t *testing.T) {
	b := newBuilder(LA57, 1*mib)
	const (
		va4k = 0xff11_0000_03a4_b000 // LA57 direct map
		va2m = 0xffff_ffff_8100_0000
		va1g = 0x00ff_8000_4000_0000 // needs 57 bits
	)
	b.mapPage(va4k, 0x3a4b000, 4*kib, 0)
	b.mapPage(va2m, 0x0100_0000, 2*mib, 0)
	b.mapPage(va1g, 0x0008_0000_0000_0000, 1*gib, 0)
	s := b.space()
	check(t, s, va4k+0x129, 0x3a4b129)
	check(t, s, va2m+0xabcde, 0x010a_bcde)
	check(t, s, va1g+0x1234_5678, 0x0008_0000_1234_5678)
	if w, err := s.Walk(va4k); err != nil || len(w.Steps) != 5 || w.Steps[0].Level != LevelPML5 {
		t.Errorf("Walk = %v, %v", w, err)
	}

	// Non-present at each level, top down.
	checkFail(t, s, 0xff00_0000_0000_0000, LevelPML5, vmi.ErrNotPresent)
	checkFail(t, s, va4k^1<<40, LevelPML4, vmi.ErrNotPresent)
	checkFail(t, s, va4k^1<<35, LevelPDPT, vmi.ErrNotPresent)
	checkFail(t, s, va4k^1<<25, LevelPD, vmi.ErrNotPresent)
	checkFail(t, s, va4k^1<<15, LevelPT, vmi.ErrNotPresent)

	// PS in a PML5 entry is reserved.
	e := b.entryAddr(va4k, 48)
	b.mem.put(e, 8, b.mem.get(e, 8)|0x80)
	s.Flush()
	checkFail(t, s, va4k, LevelPML5, vmi.ErrFormat)
}

func TestPAE(t *testing.T) {
	b := newBuilder(PAE, 1*mib)
	const (
		va4k = 0xc1a0_3000
		va2m = 0xc200_0000
	)
	b.mapPage(va4k, 0x000f_ffff_ffff_f000, 4*kib, 1<<63) // 52-bit physical, XD
	b.mapPage(va2m, 0x0000_0012_3440_0000, 2*mib, 0)
	b.mapPage(0x0040_0000, 0x7000, 4*kib, 0) // low PDPT slot
	// CR3 carries PWT/PCD in bits 4:3 and junk above bit 31 (never set by
	// a 32-bit CPU; dropped).
	cr3 := b.root | 0x18 | 0xabc<<32
	s := New(b.mem, PAE, cr3)
	if s.Root() != b.root {
		t.Fatalf("Root = %#x, want %#x", s.Root(), b.root)
	}
	check(t, s, va4k+0x5a5, 0x000f_ffff_ffff_f5a5)
	check(t, s, va2m+0x1f_fffc, 0x0000_0012_345f_fffc)
	check(t, s, 0x0040_0010, 0x7010)
	b.mapPage(0xc240_0000, 0x80_0000, 2*mib, 1<<12) // PAT
	check(t, s, 0xc240_0123, 0x80_0123)
	if w, err := s.Walk(va2m); err != nil || w.PageSize != 2*mib || len(w.Steps) != 2 || w.Steps[0].Level != LevelPDPT {
		t.Errorf("Walk = %v, %v", w, err)
	}

	checkFail(t, s, 0x8000_0000, LevelPDPT, vmi.ErrNotPresent)
	checkFail(t, s, 0xc000_0000, LevelPD, vmi.ErrNotPresent)
	checkFail(t, s, va4k+0x1000, LevelPT, vmi.ErrNotPresent)
}

func TestLegacy32(t *testing.T) {
	b := newBuilder(Legacy32, 1*mib)
	const (
		va4k  = 0xc100_5000
		va4m  = 0xc040_0000
		vaP36 = 0xd000_0000
	)
	b.mapPage(va4k, 0xabcd_e000, 4*kib, 0)
	b.mapPage(va4m, 0x0080_0000, 4*mib, 0)
	b.mapPage(vaP36, 0xa5_ffc0_0000, 4*mib, 0) // PSE-36: above 4 GiB
	cr3 := b.root | 0x18 | 1<<40               // PWT/PCD, and high junk
	s := New(b.mem, Legacy32, cr3)
	check(t, s, va4k+0x123, 0xabcd_e123)
	check(t, s, va4m+0x3f_ffff, 0x00bf_ffff)
	check(t, s, vaP36+0x12_3456, 0xa5_ffd2_3456)
	b.mapPage(0xd040_0000, 0x0100_0000, 4*mib, 1<<12) // PAT
	check(t, s, 0xd040_0123, 0x0100_0123)
	if w, err := s.Walk(vaP36); err != nil || w.PageSize != 4*mib || !strings.Contains(w.String(), "4 MiB page") {
		t.Errorf("Walk = %v, %v", w, err)
	}
	if w, err := s.Walk(va4k); err != nil || len(w.Steps) != 2 || w.Steps[1].Level != LevelPT {
		t.Errorf("Walk = %v, %v", w, err)
	}
	checkFail(t, s, 0x0800_0000, LevelPD, vmi.ErrNotPresent)
	checkFail(t, s, va4k+0x1000, LevelPT, vmi.ErrNotPresent)

	// Without CR4.PSE the PS bit means nothing: the 4 MiB PDE is read as a
	// page-table pointer (here to 0x800000, a hole in this 1 MiB memory).
	s = New(b.mem, Legacy32NoPSE, cr3)
	check(t, s, va4k+0x123, 0xabcd_e123)
	te := checkFail(t, s, va4m, LevelPT, vmi.ErrNotPresent)
	if te.EntryAddr != 0x0080_0000 {
		t.Errorf("PT entry read at %#x, want 0x800000", te.EntryAddr)
	}
}

func TestPCIDBitsIgnored(t *testing.T) {
	for _, m := range []Mode{IA32e, LA57} {
		b := newBuilder(m, 256*kib)
		b.mapPage(0xffff_ffff_8100_0000, 0x20_0000, 2*mib, 0)
		// PCID 0x123, the no-flush bit 63, and LAM bits 62:61.
		s := New(b.mem, m, b.root|0x123|0xe000_0000_0000_0000)
		if s.Root() != b.root {
			t.Errorf("%v: Root = %#x, want %#x", m, s.Root(), b.root)
		}
		check(t, s, 0xffff_ffff_8100_0042, 0x20_0042)
	}
}

func TestInvalidMode(t *testing.T) {
	s := New(&flatMem{b: make([]byte, 4096)}, Mode(0), 0)
	_, err := s.Translate(0x1000)
	if !errors.Is(err, vmi.ErrUnsupported) {
		t.Errorf("Translate with mode 0: %v", err)
	}
	if err := s.Read(make([]byte, 4), 0x1000); !errors.Is(err, vmi.ErrUnsupported) {
		t.Errorf("Read with mode 0: %v", err)
	}
	if _, err := s.Walk(0); err == nil {
		t.Error("Walk with mode 0 succeeded")
	}
}

func TestRead(t *testing.T) {
	b := newBuilder(IA32e, 5*mib)
	const va = 0xffff_8880_0000_0000
	// Two adjacent virtual pages on physical frames in the wrong order.
	b.mapPage(va, 0x8_0000, 4*kib, 0)
	b.mapPage(va+0x1000, 0x7_0000, 4*kib, 0)
	copy(b.mem.b[0x8_0ffc:], "abcd")
	copy(b.mem.b[0x7_0000:], "efgh")
	s := b.space()

	buf := make([]byte, 8)
	if err := s.Read(buf, va+0xffc); err != nil || string(buf) != "abcdefgh" {
		t.Fatalf("cross-page Read = %q, %v", buf, err)
	}

	// A read within one page, once cached: one translation (a hit), one
	// physical read.
	st := s.Stats()
	b.mem.reads = 0
	if err := s.Read(buf[:4], va+0xffc); err != nil || string(buf[:4]) != "abcd" {
		t.Fatalf("Read = %q, %v", buf[:4], err)
	}
	if b.mem.reads != 1 || s.Stats().Hits != st.Hits+1 || s.Stats().Misses != st.Misses {
		t.Errorf("Read of 4 cached bytes: %d physical reads, stats %+v -> %+v", b.mem.reads, st, s.Stats())
	}

	// Running off the end of the mapping fails naming the page that failed.
	big := make([]byte, 0x1010)
	err := s.Read(big, va+0x0ff8)
	var te *TranslateError
	if !errors.As(err, &te) || te.VA != va+0x2000 || !errors.Is(err, vmi.ErrNotPresent) {
		t.Errorf("Read past mapping: %v", err)
	}
	// Mapped to a physical hole: the physical error is wrapped with the va.
	b.mapPage(va+0x3000, 0x7000_0000, 4*kib, 0)
	err = s.Read(buf, va+0x3000)
	if !errors.Is(err, vmi.ErrNotPresent) || !strings.Contains(err.Error(), "va 0xffff888000003000") {
		t.Errorf("Read of hole: %v", err)
	}
	if err := s.Read(nil, 0xdead_0000_0000_0000); err != nil {
		t.Errorf("empty Read: %v", err)
	}

	// A large read across a 2 MiB page boundary into a 4 KiB page.
	b.mapPage(0xffff_ffff_8000_0000, 0x20_0000, 2*mib, 0)
	b.mapPage(0xffff_ffff_8020_0000, 0x1_0000, 4*kib, 0)
	want := make([]byte, 3*4096)
	for i := range want {
		want[i] = byte(i * 7)
	}
	copy(b.mem.b[0x3f_e000:], want[:8192])
	copy(b.mem.b[0x1_0000:], want[8192:])
	got := make([]byte, len(want))
	if err := s.Read(got, 0xffff_ffff_801f_e000); err != nil || !bytes.Equal(got, want) {
		t.Errorf("Read across 2 MiB boundary: %v", err)
	}
}

func TestCache(t *testing.T) {
	b := newBuilder(IA32e, 1*mib)
	const va = 0xffff_ffff_8100_0000
	b.mapPage(va, 0x40_0000, 2*mib, 0)
	s := b.space()
	check(t, s, va+0x10, 0x40_0010) // miss, then hit
	if st := s.Stats(); st.Misses != 1 || st.Hits != 1 {
		t.Errorf("stats %+v", st)
	}
	// Another 4 KiB piece of the same 2 MiB page is its own cache entry.
	check(t, s, va+0x1f_f010, 0x5f_f010)
	if st := s.Stats(); st.Misses != 2 || st.Hits != 2 {
		t.Errorf("stats %+v", st)
	}
	// The cache is what it says: stale until flushed.
	pde := b.entryAddr(va, 21)
	b.mem.put(pde, 8, 0x80_0083)
	if pa, _ := s.Translate(va + 0x10); pa != 0x40_0010 {
		t.Errorf("cached translation changed without a flush: %#x", pa)
	}
	s.Flush()
	if st := s.Stats(); st.Flushes != 1 {
		t.Errorf("stats %+v", st)
	}
	check(t, s, va+0x10, 0x80_0010)
	// Failures are not cached.
	b.mem.put(pde, 8, 0)
	s.Flush()
	checkFail(t, s, va, LevelPD, vmi.ErrNotPresent)
	b.mem.put(pde, 8, 0x80_0083)
	check(t, s, va, 0x80_0000)

	// Pages that collide in the direct-mapped cache evict each other and
	// stay correct.
	b.mapPage(va+cacheSize*4096, 0xc0_0000, 2*mib, 0)
	for i := 0; i < 3; i++ {
		check(t, s, va+0x123, 0x80_0123)
		check(t, s, va+cacheSize*4096+0x123, 0xc0_0123)
	}
	// Walk bypasses the cache: it sees the tables as they are now.
	b.mem.put(pde, 8, 0)
	if _, err := s.Walk(va); !errors.Is(err, vmi.ErrNotPresent) {
		t.Errorf("Walk used the cache: %v", err)
	}
}

func TestNoAllocations(t *testing.T) {
	b := newBuilder(IA32e, 1*mib)
	const va = 0xffff_8880_0000_0000
	b.mapPage(va, 0x8_0000, 4*kib, 0)
	s := b.space()
	buf := make([]byte, 4)
	if err := s.Read(buf, va); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = s.Translate(va + 8) }); n != 0 {
		t.Errorf("cached Translate allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = s.Read(buf, va+16) }); n != 0 {
		t.Errorf("cached Read allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { s.Flush(); _, _ = s.Translate(va + 8) }); n != 0 {
		t.Errorf("Translate after a miss allocates %v times", n)
	}
}
