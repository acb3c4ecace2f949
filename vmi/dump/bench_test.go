package dump

import (
	"math/rand/v2"
	"testing"
)

// benchDump is an ELF core with 16 blocks of 1 MiB separated by holes, so
// reads go through the segment search, not just one slice.
func benchDump(b *testing.B) (*Dump, []uint64) {
	var segs []elfSeg
	for i := range 16 {
		pa := uint64(i) * 0x200000
		segs = append(segs, elfSeg{paddr: pa, data: pattern(pa, 1<<20, 1)})
	}
	d, err := Parse("bench", buildELF(64, emX86_64, segs, nil))
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	addrs := make([]uint64, 4096)
	for i := range addrs {
		addrs[i] = uint64(r.IntN(16))*0x200000 + uint64(r.IntN(255))*4096
	}
	return d, addrs
}

func BenchmarkReadPhys(b *testing.B) {
	for _, size := range []int{4, 4096} {
		b.Run(map[int]string{4: "4B", 4096: "4KiB"}[size]+"/random", func(b *testing.B) {
			d, addrs := benchDump(b)
			buf := make([]byte, size)
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if err := d.ReadPhys(buf, addrs[i&4095]+8); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(map[int]string{4: "4B", 4096: "4KiB"}[size]+"/sequential", func(b *testing.B) {
			d, _ := benchDump(b)
			buf := make([]byte, size)
			b.SetBytes(int64(size))
			pa := uint64(0)
			for b.Loop() {
				if err := d.ReadPhys(buf, pa); err != nil {
					b.Fatal(err)
				}
				pa = (pa + uint64(size)) % (1 << 20)
			}
		})
	}
}

// BenchmarkReadPhysReal reads the real QEMU core (decompressed once into the
// test process's cache, then mmapped): the page cache, not the parser, sets
// this figure.
func BenchmarkReadPhysReal(b *testing.B) {
	tg, err := Open(realImagesDir+"/x86_64-4level/mem.elf.zst", realOptions())
	if err != nil {
		b.Fatal("real image:", err)
	}
	defer tg.Close()
	r := rand.New(rand.NewPCG(1, 2))
	addrs := make([]uint64, 4096)
	for i := range addrs {
		addrs[i] = uint64(r.IntN(0x8000-1)) * 4096
	}
	for _, size := range []int{4, 4096} {
		b.Run(map[int]string{4: "4B", 4096: "4KiB"}[size], func(b *testing.B) {
			buf := make([]byte, size)
			b.SetBytes(int64(size))
			for i := 0; b.Loop(); i++ {
				if err := tg.ReadPhys(buf, addrs[i&4095]+8); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
