package maple

import (
	"encoding/binary"
	"fmt"

	"github.com/xascript/xascript/vmi"
)

// Node types (enum maple_type).
const (
	typeDense   = 0
	typeLeaf64  = 1
	typeRange64 = 2
	typeARange  = 3
)

const (
	// NodeSize is sizeof(struct maple_node): every node is one 256-byte,
	// 256-byte-aligned block.
	NodeSize = 256
	nodeMask = NodeSize - 1
	// MaxHeight is MAPLE_HEIGHT_MAX: the kernel never builds a deeper tree.
	MaxHeight = 31
	// DefaultMaxNodes bounds the nodes one walk reads. A process with
	// 65,530 mappings (vm.max_map_count's default) needs about 6,000
	// leaves of at least 10 entries each, plus the inner nodes.
	DefaultMaxNodes = 1 << 16
	// DefaultMaxEntries bounds the entries one walk yields.
	DefaultMaxEntries = 1 << 20
	// reservedRange is MAPLE_RESERVED_RANGE: internal entries below it are
	// reserved values (XA_ZERO_ENTRY and the like), not node pointers.
	reservedRange = 4096
	rootNodeBit   = 0x02 // MAPLE_ROOT_NODE, set in ma_root when it is a node
)

// encodedNull is MAPLE_ENODE_NULL, set in every encoded node pointer.
const encodedNull = 0x04

// Reader reads guest (kernel virtual) memory.
type Reader interface {
	Read(buf []byte, va uint64) error
}

// Options bound a walk. Zero values take the defaults.
type Options struct {
	PointerSize int // 8 (64-bit kernels, the default) or 4
	MaxNodes    int
	MaxEntries  int
}

// Entry is one stored range: indexes First through Last (inclusive) hold
// Value, a non-NULL pointer that is not a reserved internal entry.
type Entry struct {
	First, Last uint64
	Value       uint64
}

// layout is the node format for one pointer size.
type layout struct {
	ptr                   int
	rangeSlots, arSlots   int // MAPLE_RANGE64_SLOTS, MAPLE_ARANGE64_SLOTS
	rangeMeta, arangeMeta int // offset of struct maple_metadata in each
	max                   uint64
}

func layoutFor(ptr int) (layout, error) {
	switch ptr {
	case 8, 0:
		// maple_range_64: parent, pivot[15], slot[16] (meta in the last slot);
		// maple_arange_64: parent, pivot[9], slot[10], gap[10], meta.
		return layout{ptr: 8, rangeSlots: 16, arSlots: 10, rangeMeta: 8 + 15*8 + 15*8, arangeMeta: 8 + 9*8 + 10*8 + 10*8, max: ^uint64(0)}, nil
	case 4:
		return layout{ptr: 4, rangeSlots: 32, arSlots: 21, rangeMeta: 4 + 31*4 + 31*4, arangeMeta: 4 + 20*4 + 21*4 + 21*4, max: 0xffff_ffff}, nil
	}
	return layout{}, fmt.Errorf("maple tree: pointer size %d: %w", ptr, vmi.ErrUnsupported)
}

// IsNode tells whether a slot or root value is an encoded node pointer
// (xa_is_node): an internal entry (low bits 0b10) above the reserved range.
func IsNode(v uint64) bool { return v&3 == 2 && v > reservedRange }

// isInternal: low bits 0b10 (xa_is_internal). Leaves may hold reserved
// internal entries such as XA_ZERO_ENTRY, which are not values.
func isInternal(v uint64) bool { return v&3 == 2 }

// frame is a node still to be walked, with the index range it covers.
type frame struct {
	enode    uint64
	min, max uint64
	depth    int
}

// Walk calls fn for every entry of the tree whose ma_root holds root, in
// ascending index order. A root that is not a node is the single entry of
// index 0 (or none when NULL). fn's error stops the walk and is returned.
// Malformed trees give an error wrapping vmi.ErrFormat, bounds hit one
// wrapping vmi.ErrLimit, both naming the node; entries yielded before such
// an error were read from nodes that passed every check.
func Walk(r Reader, root uint64, opt Options, fn func(Entry) error) error {
	l, err := layoutFor(opt.PointerSize)
	if err != nil {
		return err
	}
	if l.ptr == 4 && root > 0xffff_ffff {
		return fmt.Errorf("maple tree: root %#x does not fit a 32-bit pointer: %w", root, vmi.ErrFormat)
	}
	maxNodes, maxEntries := opt.MaxNodes, opt.MaxEntries
	if maxNodes <= 0 {
		maxNodes = DefaultMaxNodes
	}
	if maxEntries <= 0 {
		maxEntries = DefaultMaxEntries
	}
	if !IsNode(root) {
		if root == 0 || isInternal(root) {
			return nil
		}
		return fn(Entry{First: 0, Last: 0, Value: root})
	}
	w := walker{r: r, l: l, fn: fn, maxNodes: maxNodes, maxEntries: maxEntries, seen: map[uint64]bool{}}
	// A stack of frames, children pushed last-first, gives ascending order.
	stack := []frame{{enode: root &^ rootNodeBit, min: 0, max: l.max, depth: 1}}
	for len(stack) > 0 {
		f := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		children, err := w.node(f)
		if err != nil {
			return err
		}
		for i := len(children) - 1; i >= 0; i-- {
			stack = append(stack, children[i])
		}
	}
	return nil
}

type walker struct {
	r                    Reader
	l                    layout
	fn                   func(Entry) error
	maxNodes, maxEntries int
	nodes, entries       int
	seen                 map[uint64]bool
	buf                  [NodeSize]byte
	next                 uint64 // the least index the next entry may start at
	started              bool
}

func (w *walker) word(i int) uint64 {
	if w.l.ptr == 4 {
		return uint64(binary.LittleEndian.Uint32(w.buf[i*4:]))
	}
	return binary.LittleEndian.Uint64(w.buf[i*8:])
}

// node reads one node and either yields its entries (a leaf) or returns its
// children in order.
func (w *walker) node(f frame) ([]frame, error) {
	addr := f.enode &^ nodeMask
	typ := (f.enode >> 3) & 0xf
	if f.depth > MaxHeight {
		return nil, fmt.Errorf("maple tree: node %#x is deeper than %d levels: %w", addr, MaxHeight, vmi.ErrLimit)
	}
	if w.seen[addr] {
		return nil, fmt.Errorf("maple tree: node %#x reached twice (a cycle): %w", addr, vmi.ErrFormat)
	}
	if w.nodes >= w.maxNodes {
		return nil, fmt.Errorf("maple tree: more than %d nodes (at node %#x): %w", w.maxNodes, addr, vmi.ErrLimit)
	}
	w.seen[addr] = true
	w.nodes++
	var slots int
	switch typ {
	case typeLeaf64, typeRange64:
		slots = w.l.rangeSlots
	case typeARange:
		slots = w.l.arSlots
	case typeDense:
		// The kernel defines dense nodes but never builds them.
		return nil, fmt.Errorf("maple tree: node %#x is a dense node, which no kernel tree uses: %w", addr, vmi.ErrUnsupported)
	default:
		return nil, fmt.Errorf("maple tree: node %#x has unknown type %d: %w", addr, typ, vmi.ErrFormat)
	}
	if err := w.r.Read(w.buf[:], addr); err != nil {
		return nil, fmt.Errorf("maple tree: read node %#x: %w", addr, err)
	}
	pivots := slots - 1
	pivot := func(i int) uint64 { return w.word(1 + i) }
	slot := func(i int) uint64 { return w.word(1 + pivots + i) }

	// ma_data_end: the offset of the last slot in use.
	var end int
	switch {
	case typ == typeARange:
		end = int(w.buf[w.l.arangeMeta])
	case pivot(pivots-1) == 0:
		end = int(w.buf[w.l.rangeMeta])
	case pivot(pivots-1) == f.max:
		end = pivots - 1
	default:
		end = pivots
	}
	if end >= slots {
		return nil, fmt.Errorf("maple tree: node %#x says %d slots are in use; a %s node has %d: %w",
			addr, end+1, typeName(typ), slots, vmi.ErrFormat)
	}
	leaf := typ == typeLeaf64
	var children []frame
	prev := f.min
	for i := 0; i <= end; i++ {
		last := f.max
		if i < end {
			last = pivot(i)
		}
		if last < prev || last > f.max {
			return nil, fmt.Errorf("maple tree: node %#x slot %d ends at %#x, outside %#x..%#x: %w",
				addr, i, last, prev, f.max, vmi.ErrFormat)
		}
		v := slot(i)
		if leaf {
			if v != 0 && !isInternal(v) {
				if err := w.yield(Entry{First: prev, Last: last, Value: v}, addr); err != nil {
					return nil, err
				}
			}
		} else {
			// A child is an encoded node: its address, its type in bits
			// 3..6 and MAPLE_ENODE_NULL (bit 2); only the root carries
			// MAPLE_ROOT_NODE (bit 1), so a child is no "internal entry".
			if v&^nodeMask == 0 || v&7 != encodedNull {
				return nil, fmt.Errorf("maple tree: node %#x slot %d holds %#x, not a node: %w", addr, i, v, vmi.ErrFormat)
			}
			children = append(children, frame{enode: v, min: prev, max: last, depth: f.depth + 1})
		}
		if last == f.max {
			break // the rest of the node is unused
		}
		prev = last + 1
	}
	return children, nil
}

func (w *walker) yield(e Entry, node uint64) error {
	if w.started && e.First < w.next {
		return fmt.Errorf("maple tree: node %#x has a range from %#x after one that ended at %#x: %w",
			node, e.First, w.next-1, vmi.ErrFormat)
	}
	if w.entries >= w.maxEntries {
		return fmt.Errorf("maple tree: more than %d entries (at node %#x): %w", w.maxEntries, node, vmi.ErrLimit)
	}
	w.entries++
	w.started = true
	w.next = e.Last + 1 // wraps only for the very last index, after which nothing may follow
	if e.Last == w.l.max {
		w.next = w.l.max
	}
	return w.fn(e)
}

func typeName(t uint64) string {
	switch t {
	case typeLeaf64:
		return "leaf"
	case typeRange64:
		return "range"
	case typeARange:
		return "arange"
	}
	return fmt.Sprintf("type-%d", t)
}
