package kwalk

import (
	"fmt"
	"math/bits"

	"github.com/xascript/xascript/vmi"
)

// XALayout is where struct xarray and struct xa_node keep what a walk
// reads; it differs between kernel configurations (spinlock debugging,
// CONFIG_BASE_SMALL), so callers take it from the kernel's types.
type XALayout struct {
	Head      uint64 // offsetof(struct xarray, xa_head)
	NodeShift uint64 // offsetof(struct xa_node, shift): an unsigned char
	NodeSlots uint64 // offsetof(struct xa_node, slots)
	Chunk     int    // number of slots: XA_CHUNK_SIZE, a power of two (64)
}

// XArray walks the present entries of a struct xarray in index order.
// Internal entries (lib/xarray.c: low bits 10) are node pointers (above
// 4096), sibling entries (below the chunk size), or retry and zero entries;
// only node pointers are followed, and siblings, retry and zero entries are
// not entries of the array. Each node's shift must be its parent's less
// the chunk's bits, so the depth is bounded by the index width.
type XArray struct {
	walker
	lay       XALayout
	chunkBits uint
	frames    []xaFrame
	index     uint64
	entry     uint64
}

type xaFrame struct {
	node  uint64
	base  uint64
	shift uint
	slot  int
}

// NewXArray starts a walk of the xarray at xa.
func NewXArray(r Reader, ptrSize int, xa uint64, lay XALayout, limit int) *XArray {
	x := &XArray{walker: newWalker(r, ptrSize, limit, fmt.Sprintf("xarray at %#x", xa)), lay: lay}
	if lay.Chunk < 2 || lay.Chunk > 1024 || lay.Chunk&(lay.Chunk-1) != 0 {
		x.fail(fmt.Errorf("%s: xa_node has %d slots, not a power of two: %w", x.what, lay.Chunk, vmi.ErrUnsupported))
		return x
	}
	x.chunkBits = uint(bits.TrailingZeros(uint(lay.Chunk)))
	head, ok := x.readPtr(xa+lay.Head, "xa_head")
	if !ok || head == 0 {
		return x
	}
	if node, isNode := x.nodeOf(head); isNode {
		x.pushNode(node, 0, -1)
		return x
	}
	if !isInternal(head) {
		// A lone entry at index 0 lives in xa_head itself.
		x.frames = append(x.frames, xaFrame{node: 0, slot: -1})
		x.entry = head
	}
	return x
}

func isInternal(e uint64) bool { return e&3 == 2 }

// nodeOf tells whether entry e points to an xa_node, and where.
func (x *XArray) nodeOf(e uint64) (uint64, bool) {
	if isInternal(e) && e > 4096 {
		return e - 2, true
	}
	return 0, false
}

// pushNode enters node, whose entries start at index base; want is the
// shift its parent implies (-1 for the top node).
func (x *XArray) pushNode(node, base uint64, want int) {
	if !x.visit(node) {
		return
	}
	s, err := x.r.ReadUintVirt(node+x.lay.NodeShift, 1)
	if err != nil {
		x.fail(fmt.Errorf("%s: read xa_node.shift at %#x: %w", x.what, node, err))
		return
	}
	shift := uint(s)
	switch {
	case shift%x.chunkBits != 0 || shift >= 64:
		x.fail(fmt.Errorf("%s: xa_node %#x has shift %d: %w", x.what, node, shift, vmi.ErrFormat))
		return
	case want >= 0 && int(shift) != want:
		x.fail(fmt.Errorf("%s: xa_node %#x has shift %d under a node that implies %d: %w", x.what, node, shift, want, vmi.ErrFormat))
		return
	}
	x.frames = append(x.frames, xaFrame{node: node, base: base, shift: shift, slot: -1})
}

// Next advances to the next present entry; false at the end or on an error.
func (x *XArray) Next() bool {
	for x.err == nil && len(x.frames) > 0 {
		f := &x.frames[len(x.frames)-1]
		if f.node == 0 { // the lone entry in xa_head
			x.frames = x.frames[:0]
			x.index = 0
			return true
		}
		f.slot++
		if f.slot >= x.lay.Chunk {
			x.frames = x.frames[:len(x.frames)-1]
			continue
		}
		slotAddr := f.node + x.lay.NodeSlots + uint64(f.slot)*uint64(x.ptr)
		e, ok := x.readPtr(slotAddr, "xa_node slot")
		if !ok {
			return false
		}
		if e == 0 {
			continue
		}
		hi, idx := bits.Mul64(uint64(f.slot), uint64(1)<<f.shift)
		if hi != 0 || idx+f.base < f.base {
			x.fail(fmt.Errorf("%s: slot %d of xa_node %#x is beyond the index range: %w", x.what, f.slot, f.node, vmi.ErrFormat))
			return false
		}
		idx += f.base
		if node, isNode := x.nodeOf(e); isNode {
			if f.shift == 0 {
				x.fail(fmt.Errorf("%s: leaf xa_node %#x points to another node %#x: %w", x.what, f.node, node, vmi.ErrFormat))
				return false
			}
			x.pushNode(node, idx, int(f.shift-x.chunkBits))
			continue
		}
		if isInternal(e) {
			continue // sibling, retry or zero entry
		}
		if x.count >= x.limit {
			x.fail(fmt.Errorf("%s has more than %d entries: %w", x.what, x.limit, vmi.ErrLimit))
			return false
		}
		x.count++
		x.index, x.entry = idx, e
		return true
	}
	return false
}

// Index is the current entry's index.
func (x *XArray) Index() uint64 { return x.index }

// Entry is the current entry: a pointer, or a value entry (odd: the value
// is Entry>>1).
func (x *XArray) Entry() uint64 { return x.entry }
