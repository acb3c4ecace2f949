package maple

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/xascript/xascript/vmi"
)

// mem is guest memory made of 256-byte nodes; a read elsewhere fails with
// vmi.ErrNotPresent, as a read of an unmapped kernel address does.
type mem map[uint64][]byte

func (m mem) Read(buf []byte, va uint64) error {
	n, ok := m[va&^nodeMask]
	if !ok || int(va&nodeMask)+len(buf) > NodeSize {
		return fmt.Errorf("va %#x: %w", va, vmi.ErrNotPresent)
	}
	copy(buf, n[va&nodeMask:])
	return nil
}

// node64 writes a 64-bit node at addr with the literal layout of
// include/linux/maple_tree.h (written out here, not taken from walk.go):
// maple_range_64 = parent @0, pivot[15] @8, slot[16] @128, meta.end @248;
// maple_arange_64 = parent @0, pivot[9] @8, slot[10] @80, gap[10] @160,
// meta.end @240. It returns the encoded pointer of a child (mt_mk_node:
// type in bits 3..6, MAPLE_ENODE_NULL); a root adds rootNodeBit.
func (m mem) node64(addr uint64, typ int, pivots, slots []uint64, metaEnd int) uint64 {
	b := make([]byte, NodeSize)
	slotOff, metaOff := 128, 248
	if typ == typeARange {
		slotOff, metaOff = 80, 240
	}
	for i, p := range pivots {
		binary.LittleEndian.PutUint64(b[8+8*i:], p)
	}
	for i, s := range slots {
		binary.LittleEndian.PutUint64(b[slotOff+8*i:], s)
	}
	if metaEnd >= 0 {
		b[metaOff] = byte(metaEnd)
	}
	m[addr] = b
	return addr | uint64(typ)<<3 | 4
}

func collect(t *testing.T, r Reader, root uint64, opt Options) ([]Entry, error) {
	t.Helper()
	var got []Entry
	err := Walk(r, root, opt, func(e Entry) error { got = append(got, e); return nil })
	return got, err
}

func entries(es []Entry) string {
	var s []string
	for _, e := range es {
		s = append(s, fmt.Sprintf("%#x-%#x:%#x", e.First, e.Last, e.Value))
	}
	return strings.Join(s, " ")
}

const max64 = ^uint64(0)

func TestRootEntry(t *testing.T) {
	for root, want := range map[uint64]string{0: "", 0xffff888000001000: "0x0-0x0:0xffff888000001000", 0x406: ""} {
		got, err := collect(t, mem{}, root, Options{})
		if err != nil || entries(got) != want {
			t.Errorf("root %#x: %q, %v; want %q", root, entries(got), err, want)
		}
	}
}

// A one-leaf tree as an mm's tree of three VMAs looks: gaps are NULL slots,
// the last range runs to ULONG_MAX, the end comes from the metadata.
func TestLeafRoot(t *testing.T) {
	m := mem{}
	root := m.node64(0xffff888001000000, typeLeaf64,
		[]uint64{0x3fffff, 0x400fff, 0x401fff, 0x7ffdfff, 0x7fffffff},
		[]uint64{0, 0xa0, 0xa8, 0, 0xb0, 0}, 5)
	got, err := collect(t, m, root|rootNodeBit, Options{})
	want := "0x400000-0x400fff:0xa0 0x401000-0x401fff:0xa8 0x7ffe000-0x7fffffff:0xb0"
	if err != nil || entries(got) != want {
		t.Fatalf("got %q, %v\nwant %q", entries(got), err, want)
	}
}

// Two levels: an arange root over two leaves, one full (its last pivot is
// its max: data end 14) and one whose every pivot is set below its max
// (data end 15, the last slot runs to max).
func TestTwoLevels(t *testing.T) {
	m := mem{}
	var p1, s1, p2, s2 []uint64
	var want []string
	for i := uint64(0); i < 15; i++ { // leaf 1: 0..0x14fff, 15 ranges of 0x1000, last pivot = max
		p1 = append(p1, (i+1)*0x1000-1)
		s1 = append(s1, 0x100+8*i)
		want = append(want, fmt.Sprintf("%#x-%#x:%#x", i*0x1000, (i+1)*0x1000-1, 0x100+8*i))
	}
	s1 = append(s1, 0xdead)           // slot 15 beyond data end: never read
	for i := uint64(0); i < 15; i++ { // leaf 2: from 0xf000, every pivot below max
		p2 = append(p2, 0xf000+(i+1)*0x1000-1)
		s2 = append(s2, 0x200+8*i)
		want = append(want, fmt.Sprintf("%#x-%#x:%#x", 0xf000+i*0x1000, 0xf000+(i+1)*0x1000-1, 0x200+8*i))
	}
	s2 = append(s2, 0x2f8)
	want = append(want, fmt.Sprintf("%#x-%#x:%#x", 0xf000+15*0x1000, max64, 0x2f8))
	l1 := m.node64(0xffff888002000000, typeLeaf64, p1, s1, -1)
	l2 := m.node64(0xffff888002000100, typeLeaf64, p2, s2, -1)
	root := m.node64(0xffff888002000200, typeARange, []uint64{0xefff}, []uint64{l1, l2}, 1)
	got, err := collect(t, m, root|rootNodeBit, Options{})
	if err != nil || entries(got) != strings.Join(want, " ") {
		t.Fatalf("got %q, %v\nwant %q", entries(got), err, strings.Join(want, " "))
	}
	// Stopping early returns fn's error.
	stop := errors.New("stop")
	n := 0
	if err := Walk(m, root|rootNodeBit, Options{}, func(Entry) error { n++; return stop }); err != stop || n != 1 {
		t.Errorf("fn's error: %v after %d entries", err, n)
	}
	// Bounds.
	if _, err := collect(t, m, root|rootNodeBit, Options{MaxNodes: 2}); !errors.Is(err, vmi.ErrLimit) {
		t.Errorf("MaxNodes 2 of 3: %v", err)
	}
	if got, err := collect(t, m, root|rootNodeBit, Options{MaxEntries: 20}); !errors.Is(err, vmi.ErrLimit) || len(got) != 20 {
		t.Errorf("MaxEntries 20: %d entries, %v", len(got), err)
	}
}

func TestMalformed(t *testing.T) {
	const base = 0xffff888003000000
	for _, c := range []struct {
		name  string
		build func(m mem) uint64
		is    error
		says  string
	}{
		{"cycle", func(m mem) uint64 {
			enc := uint64(base) | typeRange64<<3 | 4
			return m.node64(base, typeRange64, []uint64{0xfff}, []uint64{enc, enc}, 1)
		}, vmi.ErrFormat, "reached twice"},
		{"too deep", func(m mem) uint64 {
			var child uint64 = m.node64(base+100*NodeSize, typeLeaf64, nil, []uint64{0x10}, 0)
			for i := 99; i >= 0; i-- {
				child = m.node64(base+uint64(i)*NodeSize, typeRange64, nil, []uint64{child}, 0)
			}
			return child
		}, vmi.ErrLimit, "deeper than 31"},
		{"child not readable", func(m mem) uint64 {
			return m.node64(base, typeARange, []uint64{0xfff}, []uint64{0xffff8880dead0000 | typeLeaf64<<3 | 4, 0xffff8880dead0100 | typeLeaf64<<3 | 4}, 1)
		}, vmi.ErrNotPresent, "read node 0xffff8880dead0000"},
		{"child not a node", func(m mem) uint64 {
			return m.node64(base, typeRange64, []uint64{0xfff}, []uint64{0xffff888000001000, 0xffff888000001100 | typeLeaf64<<3 | 2}, 1)
		}, vmi.ErrFormat, "not a node"},
		{"pivots descend", func(m mem) uint64 {
			return m.node64(base, typeLeaf64, []uint64{0x2fff, 0x1fff}, []uint64{1, 2, 3}, 2)
		}, vmi.ErrFormat, "slot 1 ends at 0x1fff"},
		{"child outside its range", func(m mem) uint64 {
			leaf := m.node64(base+NodeSize, typeLeaf64, []uint64{0x5fff}, []uint64{0x10, 0x20}, 1)
			leaf2 := m.node64(base+2*NodeSize, typeLeaf64, nil, []uint64{0x30}, 0)
			return m.node64(base, typeRange64, []uint64{0xfff}, []uint64{leaf, leaf2}, 1)
		}, vmi.ErrFormat, "outside 0x0..0xfff"},
		{"end beyond the slots", func(m mem) uint64 {
			return m.node64(base, typeARange, nil, []uint64{1}, 200)
		}, vmi.ErrFormat, "201 slots are in use"},
		{"dense", func(m mem) uint64 { return m.node64(base, typeDense, nil, nil, 0) }, vmi.ErrUnsupported, "dense"},
		{"unknown type", func(m mem) uint64 { return m.node64(base, 9, nil, nil, 0) }, vmi.ErrFormat, "unknown type 9"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := mem{}
			_, err := collect(t, m, c.build(m)|rootNodeBit, Options{})
			if !errors.Is(err, c.is) || !strings.Contains(fmt.Sprint(err), c.says) {
				t.Errorf("err = %v; want %v saying %q", err, c.is, c.says)
			}
		})
	}
}

// The 32-bit layout: maple_range_64 of 4-byte words, pivot[31] @4, slot[32]
// @128, meta.end @252.
func TestLeaf32(t *testing.T) {
	m := mem{}
	b := make([]byte, NodeSize)
	put := func(off int, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }
	put(4, 0x0804_7fff)
	put(8, 0x0804_8fff)
	put(12, 0xbfff_efff)
	put(128+4, 0xc100_0000)
	put(128+12, 0xc100_0100)
	b[252] = 3
	m[0xc200_0000] = b
	got, err := collect(t, m, 0xc200_0000|typeLeaf64<<3|4|rootNodeBit, Options{PointerSize: 4})
	want := "0x8048000-0x8048fff:0xc1000000 0xbfffefff+1-0xffffffff:0xc1000100"
	want = strings.Replace(want, "0xbfffefff+1", "0xbffff000", 1)
	if err != nil || entries(got) != want {
		t.Fatalf("got %q, %v; want %q", entries(got), err, want)
	}
	if _, err := collect(t, m, 1<<40|2, Options{PointerSize: 4}); !errors.Is(err, vmi.ErrFormat) {
		t.Errorf("a 64-bit root on a 32-bit tree: %v", err)
	}
	if _, err := collect(t, m, 0, Options{PointerSize: 2}); !errors.Is(err, vmi.ErrUnsupported) {
		t.Errorf("pointer size 2: %v", err)
	}
}
