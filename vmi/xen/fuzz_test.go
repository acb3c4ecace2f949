package xen

import (
	"testing"

	"github.com/xascript/xascript/vmi"
)

// FuzzPVP2M feeds hostile machine memory to the p2m reader: frame 0 is
// shared_info, the rest of the input fills frames 1..n. Whatever the guest
// wrote, the reader must return an error or a bounded frame list, never
// panic or run away.
func FuzzPVP2M(f *testing.F) {
	seed := make([]byte, 4*pageSize)
	le.PutUint64(seed[3088:], 3)         // max_pfn
	le.PutUint64(seed[3096:], 1)         // frame list list at mfn 1
	le.PutUint64(seed[pageSize:], 2)     // frame list at mfn 2
	le.PutUint64(seed[2*pageSize:], 3)   // p2m page at mfn 3
	le.PutUint64(seed[3*pageSize:], 1)   // pfn 0 -> mfn 1
	le.PutUint64(seed[3*pageSize+8:], 2) // pfn 1 -> mfn 2
	f.Add(seed, uint16(8))
	f.Fuzz(func(t *testing.T, data []byte, maxPages uint16) {
		if len(data) > 64*pageSize {
			return
		}
		mem := pageMem{}
		for i := 0; i*pageSize < len(data); i++ {
			p := new([pageSize]byte)
			copy(p[:], data[i*pageSize:])
			mem[uint64(i)] = p
		}
		if len(mem) == 0 {
			return
		}
		hv := &fakeHV{domain: 1, mem: mem, ranges: mem.ranges()}
		fc := newFrameCache(hv, 1, 4, new(vmi.Generation))
		p2m, err := readP2M(fc, abis[4<<16|17], 0, uint64(maxPages))
		if err == nil && uint64(len(p2m)) > uint64(maxPages)+maxPFNHeadroom {
			t.Fatalf("%d entries in a p2m bounded by %d pages", len(p2m), maxPages)
		}
		invertP2M(p2m)
		fc.flush()
		if len(hv.mapped) != 0 {
			t.Fatalf("%d mappings left after flush", len(hv.mapped))
		}
	})
}
