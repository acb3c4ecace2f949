package kwalk

import (
	"fmt"

	"github.com/xascript/xascript/vmi"
)

// List walks a circular struct list_head chain from its head (which is not
// an entry) until it is back at the head. next is at offset 0 of a
// list_head in every kernel.
type List struct {
	walker
	head, node, next uint64
	done             bool
}

// NewList starts a walk of the list whose head is at head.
func NewList(r Reader, ptrSize int, head uint64, limit int) *List {
	l := &List{walker: newWalker(r, ptrSize, limit, fmt.Sprintf("list at %#x", head)), head: head, node: head}
	l.next, _ = l.readPtr(head, "head's next pointer")
	return l
}

// Next advances to the next entry's list_head; false at the end or on an
// error (Err). An entry is yielded only once its own next pointer has been
// read, so every entry yielded is readable.
func (l *List) Next() bool {
	if l.done || l.err != nil {
		return false
	}
	cand := l.next
	if cand == l.head {
		l.done = true
		return false
	}
	if cand == 0 {
		l.fail(fmt.Errorf("%s: NULL next pointer at %#x after %d entries: %w", l.what, l.node, l.count, vmi.ErrFormat))
		return false
	}
	if !l.visit(cand) {
		return false
	}
	next, ok := l.readPtr(cand, "next pointer")
	if !ok {
		return false
	}
	l.node, l.next = cand, next
	return true
}

// Node is the current entry's list_head address.
func (l *List) Node() uint64 { return l.node }

// HList walks a struct hlist_head chain (first, then each hlist_node's
// next, until NULL), or with Nulls an hlist_nulls_head chain, which ends at
// an odd pointer (a "nulls" marker whose value End gives).
type HList struct {
	walker
	node  uint64
	nulls bool
	end   uint64
	done  bool
}

// NewHList starts a walk of the hlist (nulls: hlist_nulls) whose head is
// at head.
func NewHList(r Reader, ptrSize int, head uint64, nulls bool, limit int) *HList {
	what := "hlist"
	if nulls {
		what = "hlist_nulls"
	}
	return &HList{walker: newWalker(r, ptrSize, limit, fmt.Sprintf("%s at %#x", what, head)), node: head, nulls: nulls}
}

// Next advances to the next hlist_node; false at the end or on an error.
func (h *HList) Next() bool {
	if h.done || h.err != nil {
		return false
	}
	// head->first and node->next are both at offset 0.
	next, ok := h.readPtr(h.node, "next pointer")
	if !ok {
		return false
	}
	if h.nulls {
		if next&1 == 1 {
			h.end, h.done = next>>1, true
			return false
		}
		if next == 0 {
			h.fail(fmt.Errorf("%s: NULL pointer at %#x after %d entries (an hlist_nulls chain ends at an odd marker): %w", h.what, h.node, h.count, vmi.ErrFormat))
			return false
		}
	} else if next == 0 {
		h.done = true
		return false
	}
	if !h.visit(next) {
		return false
	}
	h.node = next
	return true
}

// Node is the current hlist_node's address.
func (h *HList) Node() uint64 { return h.node }

// End is the nulls value that ended an hlist_nulls walk (the bucket's
// marker, often its index); 0 otherwise.
func (h *HList) End() uint64 { return h.end }
