package paging

import "testing"

// benchSpace maps n consecutive 4 KiB pages from a kernel address in
// 4-level paging, each onto one of 256 physical frames.
func benchSpace(b *testing.B, n int) (*Space, uint64) {
	b.Helper()
	const va = 0xffff_8880_0000_0000
	bl := newBuilder(IA32e, 2*mib+n/512*4*kib+8*kib)
	for i := 0; i < n; i++ {
		bl.mapPage(va+uint64(i)*4096, 1*mib+uint64(i%256)*4096, 4*kib, 0)
	}
	return bl.space(), va
}

func BenchmarkTranslateCached(b *testing.B) {
	s, va := benchSpace(b, 1)
	if _, err := s.Translate(va); err != nil {
		b.Fatal(err)
	}
	var sink uint64
	for i := 0; b.Loop(); i++ {
		pa, _ := s.Translate(va + uint64(i&0xff8))
		sink += pa
	}
	if st := s.Stats(); st.Misses != 1 {
		b.Fatalf("hit benchmark missed: %+v", st)
	}
	_ = sink
}

// BenchmarkTranslateMiss rotates through twice as many pages as the cache
// has entries, so that every lookup misses and walks four levels.
func BenchmarkTranslateMiss(b *testing.B) {
	const n = 2 * cacheSize
	s, va := benchSpace(b, n)
	var sink uint64
	for i := 0; b.Loop(); i++ {
		pa, err := s.Translate(va + uint64(i%n)*4096)
		if err != nil {
			b.Fatal(err)
		}
		sink += pa
	}
	if st := s.Stats(); st.Hits != 0 {
		b.Fatalf("miss benchmark hit: %+v", st)
	}
	_ = sink
}

func BenchmarkRead4(b *testing.B) {
	s, va := benchSpace(b, 1)
	buf := make([]byte, 4)
	for i := 0; b.Loop(); i++ {
		if err := s.Read(buf, va+uint64(i&0xff8)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFlush(b *testing.B) {
	s, _ := benchSpace(b, 1)
	for b.Loop() {
		s.Flush()
	}
}
