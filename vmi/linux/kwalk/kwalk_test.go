package kwalk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"sort"
	"testing"

	"github.com/xascript/xascript/vmi"
)

// mem is a sparse synthetic guest memory: 8-byte words at any address.
type mem map[uint64]byte

func (m mem) put(va, v uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	for i := range b {
		m[va+uint64(i)] = b[i]
	}
}

func (m mem) ReadUintVirt(va uint64, size int) (uint64, error) {
	var b [8]byte
	for i := 0; i < size; i++ {
		c, ok := m[va+uint64(i)]
		if !ok {
			return 0, fmt.Errorf("read %#x: %w", va+uint64(i), vmi.ErrNotPresent)
		}
		b[i] = c
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

func listNodes(l *List) []uint64 {
	var out []uint64
	for l.Next() {
		out = append(out, l.Node())
	}
	return out
}

func TestList(t *testing.T) {
	m := mem{}
	head, a, b, c := uint64(0x1000), uint64(0x2000), uint64(0x3000), uint64(0x4000)
	m.put(head, a)
	m.put(a, b)
	m.put(b, c)
	m.put(c, head)
	l := NewList(m, 8, head, 0)
	if got := listNodes(l); fmt.Sprint(got) != fmt.Sprint([]uint64{a, b, c}) || l.Err() != nil {
		t.Fatalf("got %x, %v", got, l.Err())
	}
	// Empty list: head points to itself.
	m.put(0x5000, 0x5000)
	if l := NewList(m, 8, 0x5000, 0); l.Next() || l.Err() != nil {
		t.Fatalf("empty list: %v", l.Err())
	}
	// Cycle that never returns to the head: c -> b.
	m.put(c, b)
	l = NewList(m, 8, head, 0)
	if got := listNodes(l); len(got) != 3 || !errors.Is(l.Err(), ErrCycle) {
		t.Fatalf("cycle: got %x, %v", got, l.Err())
	}
	// Limit.
	m.put(c, head)
	l = NewList(m, 8, head, 2)
	if got := listNodes(l); len(got) != 2 || !errors.Is(l.Err(), vmi.ErrLimit) {
		t.Fatalf("limit: got %x, %v", got, l.Err())
	}
	// Unreadable next pointer, then NULL.
	m.put(b, 0x9990000)
	l = NewList(m, 8, head, 0)
	if got := listNodes(l); len(got) != 2 || !errors.Is(l.Err(), vmi.ErrNotPresent) {
		t.Fatalf("fault: got %x, %v", got, l.Err())
	}
	m.put(b, 0)
	l = NewList(m, 8, head, 0)
	if got := listNodes(l); len(got) != 2 || !errors.Is(l.Err(), vmi.ErrFormat) {
		t.Fatalf("NULL: got %x, %v", got, l.Err())
	}
}

func TestList32(t *testing.T) {
	m := mem{}
	m.put(0x100, 0x200)
	m.put(0x200, 0xdead_0000_0000_0100) // high half is not the pointer's
	l := NewList(m, 4, 0x100, 0)
	if got := listNodes(l); fmt.Sprint(got) != fmt.Sprint([]uint64{0x200}) || l.Err() != nil {
		t.Fatalf("got %x, %v", got, l.Err())
	}
}

func TestHList(t *testing.T) {
	m := mem{}
	m.put(0x100, 0x200)
	m.put(0x200, 0x300)
	m.put(0x300, 0)
	h := NewHList(m, 8, 0x100, false, 0)
	var got []uint64
	for h.Next() {
		got = append(got, h.Node())
	}
	if fmt.Sprint(got) != fmt.Sprint([]uint64{0x200, 0x300}) || h.Err() != nil {
		t.Fatalf("hlist: %x %v", got, h.Err())
	}
	m.put(0x400, 0) // empty head
	if h := NewHList(m, 8, 0x400, false, 0); h.Next() || h.Err() != nil {
		t.Fatal("empty hlist")
	}
	m.put(0x300, 0x200) // cycle
	h = NewHList(m, 8, 0x100, false, 0)
	for h.Next() {
	}
	if !errors.Is(h.Err(), ErrCycle) {
		t.Fatalf("hlist cycle: %v", h.Err())
	}
	// hlist_nulls: ends at an odd marker whose value is the bucket's.
	m.put(0x300, 7<<1|1)
	h = NewHList(m, 8, 0x100, true, 0)
	n := 0
	for h.Next() {
		n++
	}
	if n != 2 || h.Err() != nil || h.End() != 7 {
		t.Fatalf("nulls: %d entries, end %d, %v", n, h.End(), h.Err())
	}
	m.put(0x300, 0) // NULL is not a valid end of an hlist_nulls chain
	h = NewHList(m, 8, 0x100, true, 0)
	for h.Next() {
	}
	if !errors.Is(h.Err(), vmi.ErrFormat) {
		t.Fatalf("nulls NULL: %v", h.Err())
	}
}

// bst builds a binary search tree of keys (node address = key*0x100) the
// way an rbtree lays out nodes, and returns the rb_root's address.
func bst(m mem, keys []uint64) uint64 {
	const root = 0x10
	m.put(root, 0)
	for _, k := range keys {
		n := k * 0x100
		m.put(n, 0)
		m.put(n+8, 0)
		m.put(n+16, 0)
		link := uint64(root)
		for {
			cur, _ := m.ReadUintVirt(link, 8)
			if cur == 0 {
				m.put(link, n)
				break
			}
			if n < cur {
				link = cur + 16
			} else {
				link = cur + 8
			}
		}
	}
	return root
}

func TestRBTreeInOrder(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	m := mem{}
	perm := rng.Perm(200)
	var keys []uint64
	for _, p := range perm {
		keys = append(keys, uint64(p+1))
	}
	root := bst(m, keys[:20]) // a random tree of 20 is shallow enough
	tr := NewRBTree(m, 8, root, 0)
	var got []uint64
	for tr.Next() {
		got = append(got, tr.Node()/0x100)
	}
	want := append([]uint64(nil), keys[:20]...)
	sort.Slice(want, func(i, j int) bool { return want[i] < want[j] })
	if fmt.Sprint(got) != fmt.Sprint(want) || tr.Err() != nil {
		t.Fatalf("in order: got %v want %v (%v)", got, want, tr.Err())
	}
	if tr := NewRBTree(m, 8, 0x8, 0); tr.Next() || tr.Err() == nil {
		t.Fatal("unreadable root gave no error")
	}
	m.put(0x20, 0)
	if tr := NewRBTree(m, 8, 0x20, 0); tr.Next() || tr.Err() != nil {
		t.Fatal("empty tree")
	}
}

func TestRBTreeHostile(t *testing.T) {
	m := mem{}
	root := bst(m, []uint64{5, 3, 8})
	// The right child of 8 points back at the root node 5: a cycle.
	m.put(8*0x100+8, 5*0x100)
	tr := NewRBTree(m, 8, root, 0)
	n := 0
	for tr.Next() {
		n++
	}
	if !errors.Is(tr.Err(), ErrCycle) || n > 3 {
		t.Fatalf("cycle: %d nodes, %v", n, tr.Err())
	}
	// A degenerate chain of 100 left children is deeper than a red-black
	// tree of at most 1000 nodes can be.
	m2 := mem{}
	var keys []uint64
	for k := uint64(100); k > 0; k-- {
		keys = append(keys, k)
	}
	tr = NewRBTree(m2, 8, bst(m2, keys), 1000)
	for tr.Next() {
	}
	if !errors.Is(tr.Err(), vmi.ErrFormat) {
		t.Fatalf("deep chain: %v", tr.Err())
	}
}

var testXA = XALayout{Head: 8, NodeShift: 0, NodeSlots: 0x28, Chunk: 64}

// xaNode writes an xa_node with shift at n and returns its internal entry.
func xaNode(m mem, n uint64, shift byte) uint64 {
	m[n] = shift
	for i := uint64(0); i < 64; i++ {
		m.put(n+0x28+i*8, 0)
	}
	return n | 2
}

func xaEntries(x *XArray) map[uint64]uint64 {
	out := map[uint64]uint64{}
	for x.Next() {
		out[x.Index()] = x.Entry()
	}
	return out
}

func TestXArray(t *testing.T) {
	m := mem{}
	const xa = 0x100
	top := xaNode(m, 0x10000, 6)
	m.put(xa+8, top)
	leaf0 := xaNode(m, 0x20000, 0)
	leaf2 := xaNode(m, 0x30000, 0)
	m.put(0x10000+0x28+0*8, leaf0)
	m.put(0x10000+0x28+2*8, leaf2)
	m.put(0x20000+0x28+1*8, 0xffff888000001000)  // index 1
	m.put(0x20000+0x28+5*8, 0xffff888000005000)  // index 5
	m.put(0x20000+0x28+6*8, 5<<2|2)              // sibling of 5: not an entry
	m.put(0x20000+0x28+7*8, 256<<2|2)            // retry entry
	m.put(0x30000+0x28+63*8, 0xffff888000009000) // index 2*64+63
	m.put(0x30000+0x28+3*8, 41<<1|1)             // a value entry, index 131
	x := NewXArray(m, 8, xa, testXA, 0)
	got := xaEntries(x)
	want := map[uint64]uint64{1: 0xffff888000001000, 5: 0xffff888000005000, 191: 0xffff888000009000, 131: 41<<1 | 1}
	if fmt.Sprint(got) != fmt.Sprint(want) || x.Err() != nil {
		t.Fatalf("got %x want %x (%v)", got, want, x.Err())
	}
	// In index order.
	x = NewXArray(m, 8, xa, testXA, 0)
	var last uint64
	for i := 0; x.Next(); i++ {
		if i > 0 && x.Index() <= last {
			t.Fatalf("index %d after %d", x.Index(), last)
		}
		last = x.Index()
	}
	// A lone entry in xa_head is index 0; an empty array has none.
	m.put(0x200+8, 0xffff888000007000)
	if got := xaEntries(NewXArray(m, 8, 0x200, testXA, 0)); fmt.Sprint(got) != fmt.Sprint(map[uint64]uint64{0: 0xffff888000007000}) {
		t.Fatalf("lone entry: %x", got)
	}
	m.put(0x300+8, 0)
	if got := xaEntries(NewXArray(m, 8, 0x300, testXA, 0)); len(got) != 0 {
		t.Fatalf("empty: %x", got)
	}
}

func TestXArrayHostile(t *testing.T) {
	m := mem{}
	top := xaNode(m, 0x10000, 6)
	m.put(0x108, top)
	// A child that claims the parent's shift (a loop in depth).
	m.put(0x10000+0x28, top)
	x := NewXArray(m, 8, 0x100, testXA, 0)
	xaEntries(x)
	if x.Err() == nil {
		t.Fatal("self-referencing node accepted")
	}
	// A leaf that points to a node.
	leaf := xaNode(m, 0x20000, 0)
	m.put(0x10000+0x28, leaf)
	m.put(0x20000+0x28, top)
	x = NewXArray(m, 8, 0x100, testXA, 0)
	xaEntries(x)
	if !errors.Is(x.Err(), vmi.ErrFormat) {
		t.Fatalf("leaf to node: %v", x.Err())
	}
	// A shift that is not a multiple of the chunk's bits, or too large.
	for _, s := range []byte{5, 66, 255} {
		m[0x10000] = s
		x = NewXArray(m, 8, 0x100, testXA, 0)
		xaEntries(x)
		if !errors.Is(x.Err(), vmi.ErrFormat) {
			t.Fatalf("shift %d: %v", s, x.Err())
		}
	}
	// Two parents sharing a child: seen twice.
	m[0x10000] = 6
	m.put(0x10000+0x28, leaf)
	m.put(0x10000+0x30, leaf)
	m.put(0x20000+0x28, 0xffff888000001000)
	x = NewXArray(m, 8, 0x100, testXA, 0)
	xaEntries(x)
	if !errors.Is(x.Err(), ErrCycle) {
		t.Fatalf("shared child: %v", x.Err())
	}
	// An entry limit.
	m.put(0x10000+0x30, 0)
	for i := uint64(0); i < 64; i++ {
		m.put(0x20000+0x28+i*8, 0xffff888000001000+i*8)
	}
	x = NewXArray(m, 8, 0x100, testXA, 10)
	if got := xaEntries(x); len(got) > 10 || !errors.Is(x.Err(), vmi.ErrLimit) {
		t.Fatalf("limit: %d, %v", len(got), x.Err())
	}
	if x := NewXArray(m, 8, 0x100, XALayout{Chunk: 48}, 0); x.Next() || !errors.Is(x.Err(), vmi.ErrUnsupported) {
		t.Fatalf("chunk 48: %v", x.Err())
	}
}

// TestChain: structs linked through a member at offset 0x10 that points
// to the next struct's start (vm_area_struct.vm_next), NULL-terminated;
// an empty chain, a cycle, an unreadable link and the bound.
func TestChain(t *testing.T) {
	m := mem{}
	m.put(0x1010, 0x2000)
	m.put(0x2010, 0x3000)
	m.put(0x3010, 0)
	nodes := func(c *Chain) []uint64 {
		var out []uint64
		for c.Next() {
			out = append(out, c.Node())
		}
		return out
	}
	c := NewChain(m, 8, 0x1000, 0x10, 0)
	if got := nodes(c); fmt.Sprint(got) != fmt.Sprint([]uint64{0x1000, 0x2000, 0x3000}) || c.Err() != nil {
		t.Fatalf("chain: %x %v", got, c.Err())
	}
	if c := NewChain(m, 8, 0, 0x10, 0); c.Next() || c.Err() != nil {
		t.Fatal("empty chain")
	}
	if c := NewChain(m, 8, 0x1000, 0x10, 2); len(nodes(c)) != 2 || !errors.Is(c.Err(), vmi.ErrLimit) {
		t.Fatalf("bound: %v", c.Err())
	}
	m.put(0x3010, 0x2000) // cycle
	if c := NewChain(m, 8, 0x1000, 0x10, 0); len(nodes(c)) != 3 || !errors.Is(c.Err(), ErrCycle) {
		t.Fatalf("cycle: %v", c.Err())
	}
	m.put(0x3010, 0x5000) // a struct whose link cannot be read is not yielded
	if c := NewChain(m, 8, 0x1000, 0x10, 0); len(nodes(c)) != 3 || !errors.Is(c.Err(), vmi.ErrNotPresent) {
		t.Fatalf("unreadable: %v", c.Err())
	}
	if c := NewChain(m, 8, ^uint64(0)-4, 0x10, 0); c.Next() || c.Err() == nil {
		t.Fatalf("overflow: %v", c.Err())
	}
}
