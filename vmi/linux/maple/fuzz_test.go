package maple

import "testing"

// FuzzWalk: any bytes as a few nodes of guest memory never make Walk panic
// or loop, and the entries it yields ascend, each within 0..ULONG_MAX of the
// pointer size, with non-empty ranges.
func FuzzWalk(f *testing.F) {
	seed := mem{}
	l := seed.node64(0x1000, typeLeaf64, []uint64{0xfff, 0x1fff}, []uint64{0, 0xa1, 0}, 2)
	r := seed.node64(0x1100, typeARange, []uint64{0x5fff}, []uint64{l, 0x1200 | typeLeaf64<<3 | 4}, 1)
	f.Add(append(append([]byte{}, seed[0x1000]...), seed[0x1100]...), r|rootNodeBit, false)
	f.Add(make([]byte, 3*NodeSize), uint64(0x1000|typeRange64<<3|6), true)
	f.Fuzz(func(t *testing.T, data []byte, root uint64, ptr4 bool) {
		m := mem{}
		for i := 0; i*NodeSize < len(data) && i < 8; i++ {
			b := make([]byte, NodeSize)
			copy(b, data[i*NodeSize:])
			m[0x1000+uint64(i)*NodeSize] = b
		}
		opt := Options{MaxNodes: 64, MaxEntries: 1000}
		max := ^uint64(0)
		if ptr4 {
			opt.PointerSize, max = 4, 0xffff_ffff
		}
		var prev *Entry
		_ = Walk(m, root, opt, func(e Entry) error {
			if e.First > e.Last || e.Last > max {
				t.Fatalf("bad range %#x-%#x", e.First, e.Last)
			}
			if prev != nil && e.First <= prev.Last {
				t.Fatalf("%#x-%#x after %#x-%#x", e.First, e.Last, prev.First, prev.Last)
			}
			prev = &e
			return nil
		})
	})
}
