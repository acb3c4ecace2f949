package kwalk

import (
	"encoding/binary"
	"testing"
)

// fuzzMem is memory the fuzzer writes: 64 words at 0x1000.. (and their
// aligned pointers point back into it), everything else unreadable.
type fuzzMem []byte

func (f fuzzMem) ReadUintVirt(va uint64, size int) (uint64, error) {
	if va < 0x1000 || va-0x1000 > uint64(len(f)) || va-0x1000+uint64(size) > uint64(len(f)) {
		return mem{}.ReadUintVirt(va, size) // not present
	}
	var b [8]byte
	copy(b[:], f[va-0x1000:va-0x1000+uint64(size)])
	return binary.LittleEndian.Uint64(b[:]), nil
}

// FuzzWalks runs every walk over guest-chosen bytes: each must end, within
// its limit, without a panic.
func FuzzWalks(f *testing.F) {
	seed := make([]byte, 512)
	for i := 0; i < 64; i++ {
		binary.LittleEndian.PutUint64(seed[i*8:], 0x1000+uint64((i*5+8)%512)&^7)
	}
	f.Add(seed)
	f.Add([]byte{0x08, 0x10, 0, 0, 0, 0, 0, 0, 0x00, 0x10, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			data = data[:4096]
		}
		m := fuzzMem(data)
		const limit = 50
		for _, start := range []uint64{0x1000, 0x1008, 0x1010} {
			for _, ptr := range []int{4, 8} {
				n := 0
				for l := NewList(m, ptr, start, limit); l.Next(); n++ {
				}
				for _, nulls := range []bool{false, true} {
					for h := NewHList(m, ptr, start, nulls, limit); h.Next(); n++ {
					}
				}
				for r := NewRBTree(m, ptr, start, limit); r.Next(); n++ {
				}
				lay := XALayout{Head: 0, NodeShift: 0, NodeSlots: 0x10, Chunk: 4}
				for x := NewXArray(m, ptr, start, lay, limit); x.Next(); n++ {
				}
				for c := NewChain(m, ptr, start, 8, limit); c.Next(); n++ {
				}
				if n > 5*limit+limit {
					t.Fatalf("%d steps over a limit of %d each", n, limit)
				}
			}
		}
	})
}
