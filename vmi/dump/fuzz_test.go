package dump

import (
	"errors"
	"io"
	"os"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/xascript/xascript/vmi"
)

// realSeedVariants are the committed guests whose cores seed the fuzzers:
// a 64-bit core, a 64-bit one with RAM above 4 GiB (three PT_LOADs) and a
// 32-bit one (ELFCLASS32, i386 notes).
var realSeedVariants = []string{"x86_64-4level", "x86_64-highmem", "i386-pae"}

// realHeader returns the first 64 KiB of a real QEMU core (ELF header,
// program headers, notes), decompressing only that much, or nil.
func realHeader(variant string) []byte {
	f, err := os.Open(realImagesDir + "/" + variant + "/mem.elf.zst")
	if err != nil {
		return nil
	}
	defer f.Close()
	z, err := zstd.NewReader(f)
	if err != nil {
		return nil
	}
	defer z.Close()
	b := make([]byte, 64<<10)
	n, _ := io.ReadFull(z, b)
	b = b[:n]
	// Keep headers and notes only (a small seed keeps the fuzzer's
	// minimisation short), and set every PT_LOAD's p_filesz to 0 so that the
	// seed parses: its real notes are then reached by every mutation.
	h, err := parseELFHeader("seed", b)
	if err != nil {
		return b
	}
	phdrs, err := readProgHeaders("seed", b, h)
	if err != nil {
		return b
	}
	for i, p := range phdrs {
		if p.typ == ptLoad {
			if p.off > 0 && p.off < uint64(len(b)) {
				b = b[:p.off]
			}
			ph := b[h.phoff+uint64(i)*h.phentsize:]
			if h.class == 64 {
				le.PutUint64(ph[32:], 0) // p_filesz
			} else {
				le.PutUint32(ph[16:], 0)
			}
		}
	}
	return b
}

// realLiME returns a LiME file with two ranges per RAM block (PT_LOAD) of
// a real guest, at the block's real addresses, holding the block's first and
// last 64 bytes, or nil when the image is missing. Blocks, not the merged memory
// map: highmem's RAM above 4 GiB adjoins the BIOS ROM below it and would
// merge away. It decompresses the whole image, so FuzzOpenLiME does not
// call it (every fuzz worker would pay for that): its output is committed
// as seeds (builtSeeds).
func realLiME(variant string) []byte {
	tg, err := Open(realImagesDir+"/"+variant+"/mem.elf.zst", realOptions())
	if err != nil {
		return nil
	}
	defer tg.Close()
	d := tg.(*Dump)
	var ranges []limeRange
	for _, s := range d.mem.segs {
		starts := []uint64{s.start}
		if s.end-s.start >= 128 {
			starts = append(starts, s.end-64) // and the block's last 64 bytes
		}
		for _, pa := range starts {
			b := make([]byte, min(64, s.end-pa))
			if d.ReadPhys(b, pa) != nil {
				return nil
			}
			ranges = append(ranges, limeRange{pa, b})
		}
	}
	return buildLiME(ranges)
}

// smallELF64 is qemuELF64's layout with tiny segments: fuzz seeds must be
// small, or the fuzzer spends its time minimising them.
func smallELF64() []byte {
	return buildELF(64, emX86_64, []elfSeg{
		{paddr: 0, data: pattern(0, 0x30, testSeed)},
		{paddr: 0x30, data: pattern(0x30, 0x20, testSeed)},
		{paddr: 0x1000, memsz: 0x30, data: pattern(0x1000, 0x10, testSeed)},
		{paddr: gib4, data: pattern(gib4, 0x20, testSeed)},
	}, []elfNote{
		prstatus64(1, 0xffffffff81000000, 0xffffc90000003e00),
		qemuNote(0x100, testCR0, testCR3, testCR4),
		{"VMCOREINFO", 0, []byte("OSRELEASE=6.1.0-test\n")},
	})
}

// fuzzDump parses data and then checks what the fuzzer found against the
// Target contract: the map is sorted, merged and non-empty; a read succeeds
// exactly when it lies inside the map; failed reads are PhysErrors.
func fuzzDump(t *testing.T, data []byte, pa uint64, n uint16) {
	d, err := Parse("fuzz", data)
	if err != nil {
		if d != nil || err.Error() == "" {
			t.Fatalf("error %v with non-nil dump or empty message", err)
		}
		return
	}
	defer d.Close()
	rs := d.MemoryMap()
	if len(rs) == 0 {
		t.Fatal("empty memory map")
	}
	for i, r := range rs {
		if r.Start >= r.End || (i > 0 && rs[i-1].End >= r.Start) {
			t.Fatalf("memory map not sorted and merged: %v", rs)
		}
	}
	inMap := func(pa uint64, n int) bool {
		if n == 0 {
			return true
		}
		for _, r := range rs {
			if r.Contains(pa) {
				return uint64(n) <= r.End-pa
			}
		}
		return false
	}
	try := func(pa uint64, n int) {
		err := d.ReadPhys(make([]byte, n), pa)
		if want := inMap(pa, n); (err == nil) != want {
			t.Fatalf("ReadPhys(%#x, %d) = %v, but in map = %v (map %v)", pa, n, err, want, rs)
		}
		var pe *vmi.PhysError
		if err != nil && (!errors.As(err, &pe) || !errors.Is(err, vmi.ErrNotPresent)) {
			t.Fatalf("ReadPhys(%#x, %d): %v is not a PhysError wrapping ErrNotPresent", pa, n, err)
		}
	}
	try(pa, int(n)%8193)
	for i, r := range rs {
		if i == 32 {
			break
		}
		try(r.Start, 1)
		try(r.End-1, 1)
		try(r.End-1, 2)
		if r.Start > 0 {
			try(r.Start-1, 2)
		}
		try(r.Start, int(min(r.Len(), 1<<16)))
	}
	_ = d.CPU()
	_ = d.Kind()
	_, _ = d.VMCoreInfo()
	for _, v := range d.VCPUs() {
		_ = v.Regs
	}
}

func FuzzOpenELF(f *testing.F) {
	elf32 := buildELF(32, em386, []elfSeg{{paddr: 0x1000, data: pattern(0x1000, 0x20, 1)}},
		[]elfNote{prstatus32(1, 0xc1000000, 0), qemuNote(0, 0x80000011, 0x1000, 0x20)})
	kdump := buildELF(64, emX86_64, []elfSeg{{paddr: 0x1010, data: pattern(0x1010, 0x10, 1)}, {paddr: 0x1000, data: pattern(0x1000, 0x40, 1)}},
		[]elfNote{prstatus64(7, 0, 0), {"VMCOREINFO", 0, []byte("PAGESIZE=4096\n")}})
	for _, s := range [][]byte{smallELF64(), elf32, kdump} {
		f.Add(s, uint64(0x2ff8), uint16(16))
	}
	for _, v := range realSeedVariants {
		f.Add(realHeader(v), uint64(0x2ff8), uint16(16))
	}
	f.Fuzz(fuzzDump)
}

func FuzzOpenLiME(f *testing.F) {
	small := buildLiME([]limeRange{{0, pattern(0, 0x100, 1)}, {0x100, pattern(0x100, 0x20, 1)}, {gib4, pattern(gib4, 0x40, 1)}})
	f.Add(small, uint64(0xf8), uint16(16))
	f.Add(buildLiME([]limeRange{{0x1000, pattern(0x1000, 0x10, 2)}}), uint64(0x1000), uint16(4))
	// The real guests' memory maps as LiME files are committed seeds
	// (testdata/fuzz/FuzzOpenLiME/real-*).
	f.Fuzz(fuzzDump)
}

// TestRealSeeds: the fuzz seeds cut from the real cores parse, so the
// fuzzers start from the real notes and memory maps. A missing image fails
// here.
func TestRealSeeds(t *testing.T) {
	for _, v := range realSeedVariants {
		t.Run(v, func(t *testing.T) {
			b := realHeader(v)
			if b == nil {
				t.Fatal("real image missing")
			}
			d, err := Parse("seed", b)
			if err != nil {
				t.Fatal(err)
			}
			if !d.CPU().Known || d.Kind() != "ELF core (QEMU)" {
				t.Errorf("ELF seed: %s %+v", d.Kind(), d.CPU())
			}
			t.Logf("ELF seed: %d bytes, %s, map %v", len(b), d.Kind(), d.MemoryMap())

			l := realLiME(v)
			if l == nil {
				t.Fatal("real image missing")
			}
			d, err = Parse("seed", l)
			if err != nil {
				t.Fatal(err)
			}
			if d.Kind() != "LiME" || len(d.MemoryMap()) < 2 {
				t.Errorf("LiME seed: %s, map %v", d.Kind(), d.MemoryMap())
			}
			t.Logf("LiME seed: %d bytes, map %v", len(l), d.MemoryMap())
		})
	}
}
