package kwalk

import (
	"fmt"
	"math/bits"

	"github.com/xascript/xascript/vmi"
)

// RBTree walks a struct rb_root's nodes in order (leftmost first), as
// rb_first/rb_next do. An rb_node is {__rb_parent_color, rb_right,
// rb_left}, pointer-sized each; the root's rb_node pointer is at offset 0
// of rb_root (and of rb_root_cached).
//
// A red-black tree of n nodes is at most 2*log2(n+1) deep, so a path deeper
// than that for the walk's limit is not a red-black tree: the walk stops
// there (a hostile guest cannot make the stack grow without bound).
type RBTree struct {
	walker
	stack    []uint64
	node     uint64
	maxDepth int
}

// NewRBTree starts an in-order walk of the tree whose rb_root is at root.
func NewRBTree(r Reader, ptrSize int, root uint64, limit int) *RBTree {
	t := &RBTree{walker: newWalker(r, ptrSize, limit, fmt.Sprintf("rbtree at %#x", root))}
	t.maxDepth = 2*bits.Len(uint(t.limit+1)) + 8
	if first, ok := t.readPtr(root, "rb_root.rb_node"); ok {
		t.pushLeft(first)
	}
	return t
}

// pushLeft stacks n and its chain of left children.
func (t *RBTree) pushLeft(n uint64) {
	for n != 0 && t.err == nil {
		if len(t.stack) >= t.maxDepth {
			t.fail(fmt.Errorf("%s: deeper than %d levels at node %#x: not a red-black tree: %w", t.what, t.maxDepth, n, vmi.ErrFormat))
			return
		}
		if !t.visit(n) {
			return
		}
		t.stack = append(t.stack, n)
		left, ok := t.readPtr(n+2*uint64(t.ptr), "rb_left")
		if !ok {
			return
		}
		n = left
	}
}

// Next advances to the next node in order; false at the end or on an error.
func (t *RBTree) Next() bool {
	if t.err != nil || len(t.stack) == 0 {
		return false
	}
	n := t.stack[len(t.stack)-1]
	t.stack = t.stack[:len(t.stack)-1]
	right, ok := t.readPtr(n+uint64(t.ptr), "rb_right")
	if !ok {
		return false
	}
	t.pushLeft(right)
	if t.err != nil {
		return false
	}
	t.node = n
	return true
}

// Node is the current rb_node's address.
func (t *RBTree) Node() uint64 { return t.node }
