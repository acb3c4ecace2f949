package paging

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/xascript/xascript/internal/testimages"
	"github.com/xascript/xascript/vmi/dump"
)

// TestRealPageSizes walks the kernel's direct map of every byte of System
// RAM (every 2 MiB, and every 4 KiB of the first 2 MiB) in real guests and
// requires the page sizes each kernel is known to use: 4 KiB and 2 MiB on
// x86-64 and PAE, 1 GiB on the highmem guest (its CPU has PDPE1GB and RAM
// spans whole aligned gigabytes), 4 MiB PSE pages on the non-PAE i386
// guest. Each translation must land on the physical address it maps: the
// direct map is linear, so a walk that took a wrong entry shows up here.
func TestRealPageSizes(t *testing.T) {
	const (
		kib = 1 << 10
		mib = 1 << 20
		gib = 1 << 30
	)
	for _, tc := range []struct {
		variant string
		want    []uint64
	}{
		{"x86_64-4level", []uint64{4 * kib, 2 * mib}},
		{"x86_64-5level", []uint64{4 * kib, 2 * mib}},
		{"x86_64-6.12", []uint64{4 * kib, 2 * mib}},
		{"x86_64-highmem", []uint64{4 * kib, 2 * mib, 1 * gib}},
		{"i386-pae", []uint64{4 * kib, 2 * mib}},
		{"i386-legacy", []uint64{4 * kib, 4 * mib}},
	} {
		t.Run(tc.variant, func(t *testing.T) {
			var tr struct {
				Arch    string            `json:"arch"`
				Symbols map[string]string `json:"symbols"`
				RAM     []struct{ Start, End string }
			}
			testimages.LoadTruth(t, tc.variant, &tr)
			tg, err := dump.Open(testimages.Path(t, tc.variant, "mem.elf.zst"), dump.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			mode, err := ModeFromCPU(tg.CPU())
			if err != nil {
				t.Fatal(err)
			}
			s := New(tg, mode, tg.CPU().CR3)

			// The direct map's base: page_offset_base (randomised) on
			// x86-64, PAGE_OFFSET on i386, whose lowmem (all of these
			// guests' RAM) is mapped linearly from there.
			base := uint64(0xc000_0000)
			if tr.Arch == "x86_64" {
				v, err := s.ReadUint(testimages.Hex(t, "page_offset_base", tr.Symbols["page_offset_base"]), 8)
				if err != nil {
					t.Fatalf("page_offset_base: %v", err)
				}
				base = v
			}
			seen := map[uint64]int{}
			check := func(pa uint64) {
				w, err := s.Walk(base + pa)
				if err != nil {
					t.Fatalf("direct map of pa %#x: %v\n%v", pa, err, w)
				}
				if w.PA != pa {
					t.Fatalf("direct map of pa %#x translates to %#x\n%v", pa, w.PA, w)
				}
				seen[w.PageSize]++
			}
			if len(tr.RAM) == 0 {
				t.Fatal("truth.json has no ram")
			}
			for _, r := range tr.RAM {
				start := testimages.Hex(t, "ram start", r.Start)
				end := testimages.Hex(t, "ram end", r.End) + 1
				for pa := start; pa < end; {
					check(pa)
					step := uint64(2 * mib)
					if pa < 2*mib {
						step = 4 * kib
					}
					pa = (pa + step) &^ (step - 1)
				}
			}
			var got []string
			sizes := make([]uint64, 0, len(seen))
			for size := range seen {
				sizes = append(sizes, size)
			}
			sort.Slice(sizes, func(i, j int) bool { return sizes[i] < sizes[j] })
			for _, size := range sizes {
				got = append(got, fmt.Sprintf("%s ×%d", sizeName(size), seen[size]))
			}
			t.Logf("%v direct map: %s", mode, strings.Join(got, ", "))
			for _, size := range tc.want {
				if seen[size] == 0 {
					t.Errorf("no %s page in the direct map (saw %s)", sizeName(size), strings.Join(got, ", "))
				}
			}
		})
	}
}
