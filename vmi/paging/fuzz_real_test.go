package paging

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/xascript/xascript/internal/testimages"
	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/dump"
)

// realFuzzSeeds returns walks taken from the committed guests' own page
// tables, one per paging mode and page size the kernels use: every table a
// walk visits is copied whole (the other entries keep their real flags and
// frames, which foldMem turns into further walks), packed one page after
// the other, and the entries that chain them are re-pointed at the copies.
// Each seed must translate as the real walk did, which the reference walker
// checks here.
func realFuzzSeeds(tb testing.TB) []fuzzSeed {
	type pick struct {
		variant string
		what    string // a truth.json symbol, or "direct+OFFSET" into the direct map
		off     uint64
	}
	picks := []pick{
		{"x86_64-4level", "linux_banner", 0},
		{"x86_64-4level", "direct", 0x10_0000}, // 4 KiB
		{"x86_64-4level", "direct", 0x40_0000}, // 2 MiB
		{"x86_64-5level", "linux_banner", 0},
		{"x86_64-5level", "direct", 0x10_0000},
		{"x86_64-highmem", "direct", 0x4000_0000}, // 1 GiB
		{"i386-pae", "linux_banner", 0},
		{"i386-pae", "direct", 0x10_0000},
		{"i386-legacy", "linux_banner", 0}, // 4 MiB
		{"i386-legacy", "direct", 0x10_0000},
	}
	var out []fuzzSeed
	for _, p := range picks {
		var tr struct {
			Arch    string            `json:"arch"`
			Symbols map[string]string `json:"symbols"`
		}
		testimages.LoadTruth(tb, p.variant, &tr)
		tg, err := dump.Open(testimages.Path(tb, p.variant, "mem.elf.zst"), dump.Options{})
		if err != nil {
			tb.Fatal(err)
		}
		mode, err := ModeFromCPU(tg.CPU())
		if err != nil {
			tb.Fatal(err)
		}
		cr3 := tg.CPU().CR3
		s := New(tg, mode, cr3)
		va := p.off
		switch {
		case p.what != "direct":
			va += testimages.Hex(tb, p.what, tr.Symbols[p.what])
		case tr.Arch == "i386":
			va += 0xc000_0000
		default:
			base, err := s.ReadUint(testimages.Hex(tb, "page_offset_base", tr.Symbols["page_offset_base"]), 8)
			if err != nil {
				tb.Fatal(err)
			}
			va += base
		}
		w, err := s.Walk(va)
		if err != nil {
			tb.Fatalf("%s %s: %v", p.variant, p.what, err)
		}
		seed, err := packWalk(tg, w, cr3)
		tg.Close()
		if err != nil {
			tb.Fatalf("%s %s: %v", p.variant, p.what, err)
		}
		if r := refTranslate(foldMem{data: seed.mem}, mode, seed.cr3, va); !r.ok || r.pa != w.PA || r.size != w.PageSize {
			tb.Fatalf("%s %s: packed walk gives %+v, the guest's tables %#x in a %s page", p.variant, p.what, r, w.PA, sizeName(w.PageSize))
		}
		out = append(out, seed)
	}
	return out
}

// packWalk copies the tables of a successful walk into consecutive pages
// (the first at physical 0) and re-points each non-leaf entry at the next.
func packWalk(phys vmi.PhysReader, w Walk, cr3 uint64) (fuzzSeed, error) {
	es, frame := 8, uint64(frame64)
	if w.Mode == Legacy32 || w.Mode == Legacy32NoPSE {
		es, frame = 4, frame32
	}
	mem := make([]byte, len(w.Steps)*pageSize)
	for i, st := range w.Steps {
		page := mem[i*pageSize : (i+1)*pageSize]
		if err := phys.ReadPhys(page, st.EntryAddr&^pageMask); err != nil {
			return fuzzSeed{}, fmt.Errorf("table at %#x: %w", st.EntryAddr&^pageMask, err)
		}
		if i == len(w.Steps)-1 {
			break // the leaf keeps its real frame
		}
		e := st.Entry&^frame | uint64(i+1)*pageSize
		at := page[st.EntryAddr&pageMask:]
		if es == 4 {
			binary.LittleEndian.PutUint32(at, uint32(e))
		} else {
			binary.LittleEndian.PutUint64(at, e)
		}
	}
	return fuzzSeed{mem: mem, mode: w.Mode, cr3: cr3 & pageMask, va: w.VA}, nil
}

// TestRealFuzzSeeds runs the packed real walks through the fuzz body's
// checks outside fuzzing too (FuzzTranslate's seed corpus does the same,
// this names the failure).
func TestRealFuzzSeeds(t *testing.T) {
	for _, s := range realFuzzSeeds(t) {
		sp := New(foldMem{data: s.mem}, s.mode, s.cr3)
		w, err := sp.Walk(s.va)
		if err != nil {
			t.Fatalf("%v va %#x: %v", s.mode, s.va, err)
		}
		t.Logf("%v va %#x -> %#x in a %s page (%d tables)", s.mode, s.va, w.PA, sizeName(w.PageSize), len(s.mem)/pageSize)
	}
}
