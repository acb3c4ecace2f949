package kwalk

import "fmt"

// Chain walks a NULL-terminated chain of structs each of which points to
// the next struct's start through a member at offset off: the list of a
// process's mappings before Linux 6.1 (mm->mmap, then each
// vm_area_struct's vm_next), and the kernel's other singly linked lists
// of whole structs.
type Chain struct {
	walker
	off        uint64
	node, next uint64
	done       bool
}

// NewChain starts a walk at first, the first struct's address (0: the
// chain is empty), following the pointer at offset off of each struct.
func NewChain(r Reader, ptrSize int, first, off uint64, limit int) *Chain {
	return &Chain{walker: newWalker(r, ptrSize, limit, fmt.Sprintf("chain from %#x", first)), off: off, next: first}
}

// Next advances to the next struct; false at the end (a NULL pointer) or
// on an error (Err). A struct is yielded only once its own next pointer
// has been read.
func (c *Chain) Next() bool {
	if c.done || c.err != nil {
		return false
	}
	cand := c.next
	if cand == 0 {
		c.done = true
		return false
	}
	if cand+c.off < cand {
		c.fail(fmt.Errorf("%s: struct at %#x plus the link's offset %#x overflows", c.what, cand, c.off))
		return false
	}
	if !c.visit(cand) {
		return false
	}
	next, ok := c.readPtr(cand+c.off, "next pointer")
	if !ok {
		return false
	}
	c.node, c.next = cand, next
	return true
}

// Node is the current struct's address.
func (c *Chain) Node() uint64 { return c.node }
