package paging

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/xascript/xascript/vmi"
)

// foldMem is physical memory in which every address reads
// data[pa % len(data)], so that walks through arbitrary entries go deep
// instead of stopping at the first wild pointer; addresses with a bit of
// holes set are holes.
type foldMem struct {
	data  []byte
	holes uint64
}

func (m foldMem) ReadPhys(buf []byte, pa uint64) error {
	for i := range buf {
		a := pa + uint64(i)
		if a&m.holes != 0 || len(m.data) == 0 {
			return &vmi.PhysError{Addr: a, Err: vmi.ErrNotPresent}
		}
		buf[i] = m.data[a%uint64(len(m.data))]
	}
	return nil
}

// fuzzSeed is well-formed page-table memory for one mode and page size.
type fuzzSeed struct {
	mem  []byte
	mode Mode
	cr3  uint64
	va   uint64
}

// fuzzSeeds returns a mapping per mode and page size, kept to one 4 KiB
// page so the fuzzer mutates (and minimises) it quickly: under foldMem
// every table address folds onto that page, so each level's table is the
// page itself and the va is chosen to use a different index per level.
func fuzzSeeds() []fuzzSeed {
	var out []fuzzSeed
	add := func(mode Mode, cr3, va, pa, size uint64) {
		mem := make([]byte, 4096)
		var shifts []uint
		es := 8
		switch mode {
		case Legacy32, Legacy32NoPSE:
			shifts, es = []uint{22, 12}, 4
		case PAE:
			shifts = []uint{30, 21, 12}
		case IA32e:
			shifts = []uint{39, 30, 21, 12}
		case LA57:
			shifts = []uint{48, 39, 30, 21, 12}
		}
		m := &flatMem{b: mem}
		for i, sh := range shifts {
			idx := va >> sh & 0x1ff
			if es == 4 {
				idx = va >> sh & 0x3ff
			}
			at := idx * uint64(es)
			if i == 0 && mode == PAE {
				at = cr3&0xfe0 + (va>>30&3)*8
			}
			e := uint64(0x1000 | 0x1) // next table: the page again, via folding
			if (size == 1<<sh) || sh == 12 {
				e = pa | 0x1
				if sh != 12 {
					e |= 0x80
				}
				if size == 4*mib {
					e = pa&0xffc0_0000 | (pa>>32&0xff)<<13 | 0x81
				}
				m.put(at, es, e)
				break
			}
			m.put(at, es, e)
		}
		want := pa | va&(size-1)
		if r := refTranslate(foldMem{data: mem}, mode, cr3, va); !r.ok || r.pa != want {
			panic(fmt.Sprintf("bad fuzz seed %v va %#x: %+v, want %#x", mode, va, r, want))
		}
		out = append(out, fuzzSeed{mem, mode, cr3, va})
	}
	add(Legacy32, 0x1000, 0xc100_5123, 0x7000, 4*kib)
	add(Legacy32, 0x1000, 0xc040_0123, 0x12_0040_0000, 4*mib)
	add(Legacy32NoPSE, 0x1000, 0xc100_5123, 0x7000, 4*kib)
	add(PAE, 0x17e0, 0xc1a0_3123, 0x6000, 4*kib)
	add(PAE, 0x17e0, 0xc200_0123, 0x0040_0000, 2*mib)
	add(IA32e, 0x1000, 0xffff_8880_03a4_b129, 0x7000, 4*kib)
	add(IA32e, 0x1000, 0xffff_ffff_8100_0123, 0x20_0000, 2*mib)
	add(IA32e, 0x1000, 0xffff_c900_4000_0123, 0x4000_0000, 1*gib)
	add(LA57, 0x1000, 0xff11_0000_03a4_b129, 0x7000, 4*kib)
	add(LA57, 0x1000, 0xffff_ffff_8100_0123, 0x20_0000, 2*mib)
	add(LA57, 0x1000, 0x00ff_8000_4000_0123, 0x4000_0000, 1*gib)
	return out
}

// FuzzTranslate checks the walker against the reference walker on
// arbitrary page-table memory, and the cache, Walk and Read against the
// walker. Seeds: a hand-made mapping per mode and page size, and walks
// packed from the committed guests' own page tables.
func FuzzTranslate(f *testing.F) {
	for _, s := range append(fuzzSeeds(), realFuzzSeeds(f)...) {
		f.Add(s.mem, uint8(s.mode), s.cr3, s.va, uint64(0))
		f.Add(s.mem, uint8(s.mode), s.cr3|0xfff, s.va, uint64(1)<<40)
	}
	ones := bytes.Repeat([]byte{0xff}, 64)
	for m := uint8(0); m <= 6; m++ {
		f.Add([]byte{}, m, uint64(0), uint64(0), uint64(0))
		f.Add(ones, m, ^uint64(0), ^uint64(0), uint64(0))
		f.Add(ones, m, uint64(0x1000), uint64(0xffff_8000_0000_0000), uint64(0x1000))
		f.Add([]byte{0x83, 0, 0, 0, 0, 0, 0, 0}, m, uint64(0), uint64(0x7fff_ffff_ffff), uint64(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, modeNum uint8, cr3, va, holes uint64) {
		mem := foldMem{data: data, holes: holes}
		mode := Mode(modeNum)
		s := New(mem, mode, cr3)
		pa, err := s.Translate(va)
		var te *TranslateError
		if err != nil {
			if !errors.As(err, &te) {
				t.Fatalf("error is not a *TranslateError: %v", err)
			}
			if te.VA != va || te.Error() == "" {
				t.Fatalf("bad error %#v", te)
			}
		}
		if mode < Legacy32 || mode > Legacy32NoPSE {
			if !errors.Is(err, vmi.ErrUnsupported) {
				t.Fatalf("mode %d: %v", modeNum, err)
			}
			return
		}

		ref := refTranslate(mem, mode, cr3, va)
		if ref.ok != (err == nil) || ref.pa != pa {
			t.Fatalf("%v cr3 %#x va %#x: Translate = %#x, %v; reference %+v", mode, cr3, va, pa, err, ref)
		}
		if err != nil {
			if te.Level != ref.level || ref.format != errors.Is(err, vmi.ErrFormat) || ref.format == errors.Is(err, vmi.ErrNotPresent) {
				t.Fatalf("%v cr3 %#x va %#x: error %v; reference %+v", mode, cr3, va, err, ref)
			}
		}

		// Cached, and the other bytes of the same page through the cache.
		pa2, err2 := s.Translate(va)
		if pa2 != pa || (err2 == nil) != (err == nil) {
			t.Fatalf("second Translate = %#x, %v; first %#x, %v", pa2, err2, pa, err)
		}
		for _, off := range []uint64{0, 0xfff, holes & 0xfff} {
			v := va&^0xfff | off
			got, gerr := s.Translate(v)
			r := refTranslate(mem, mode, cr3, v)
			if r.ok != (gerr == nil) || r.pa != got {
				t.Fatalf("Translate(%#x) = %#x, %v after %#x; reference %+v", v, got, gerr, va, r)
			}
		}

		w, werr := s.Walk(va)
		if (werr == nil) != (err == nil) || w.PA != ref.pa || w.PageSize != ref.size || len(w.Steps) > 5 {
			t.Fatalf("Walk = %+v, %v; reference %+v", w, werr, ref)
		}
		if werr != nil && ref.level != LevelAddress && w.Steps[len(w.Steps)-1].Level != ref.level {
			t.Fatalf("Walk ends at %v, reference failed at %v", w.Steps[len(w.Steps)-1].Level, ref.level)
		}
		_ = w.String()

		// Read across the page boundary before va's page, byte by byte
		// against the reference.
		start := va&^0xfff - 8
		buf := make([]byte, 16)
		rerr := s.Read(buf, start)
		want := make([]byte, 16)
		wantOK := true
		for i := range want {
			r := refTranslate(mem, mode, cr3, start+uint64(i))
			if !r.ok || mem.ReadPhys(want[i:i+1], r.pa) != nil {
				wantOK = false
				break
			}
		}
		if wantOK != (rerr == nil) || (wantOK && !bytes.Equal(buf, want)) {
			t.Fatalf("Read(%#x) = %x, %v; reference %x (ok %v)", start, buf, rerr, want, wantOK)
		}
	})
}
