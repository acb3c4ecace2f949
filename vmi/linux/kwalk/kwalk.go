package kwalk

import (
	"errors"
	"fmt"

	"github.com/xascript/xascript/vmi"
)

// Reader reads little-endian integers of 1, 2, 4 or 8 bytes at kernel
// virtual addresses (bindings.Guest and linux.Kernel have it).
type Reader interface {
	ReadUintVirt(va uint64, size int) (uint64, error)
}

// ErrCycle: a walk came back to a node it had visited.
var ErrCycle = errors.New("cycle")

// DefaultLimit bounds a walk whose caller gives no limit.
const DefaultLimit = 100000

// walker holds what every walk shares: the reader, the pointer width, the
// bound, the nodes seen and the error that ended the walk.
type walker struct {
	r     Reader
	ptr   int
	limit int
	count int
	seen  map[uint64]struct{}
	err   error
	what  string // "list at 0x…", for errors
}

func newWalker(r Reader, ptr, limit int, what string) walker {
	if limit <= 0 {
		limit = DefaultLimit
	}
	if ptr != 4 {
		ptr = 8
	}
	return walker{r: r, ptr: ptr, limit: limit, seen: make(map[uint64]struct{}, 64), what: what}
}

// readPtr reads a guest pointer at va.
func (w *walker) readPtr(va uint64, role string) (uint64, bool) {
	v, err := w.r.ReadUintVirt(va, w.ptr)
	if err != nil {
		w.fail(fmt.Errorf("%s: read %s at %#x (node %d of the walk): %w", w.what, role, va, w.count, err))
		return 0, false
	}
	return v, true
}

// visit counts node and checks it against the bound and the nodes seen.
func (w *walker) visit(node uint64) bool {
	if w.count >= w.limit {
		w.fail(fmt.Errorf("%s has more than %d entries (stopped at node %#x): %w", w.what, w.limit, node, vmi.ErrLimit))
		return false
	}
	if _, dup := w.seen[node]; dup {
		w.fail(fmt.Errorf("%s is cyclic: node %#x seen again after %d entries: %w", w.what, node, w.count, ErrCycle))
		return false
	}
	w.seen[node] = struct{}{}
	w.count++
	return true
}

func (w *walker) fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

// Err is the reason the walk ended early, nil when it reached the end.
func (w *walker) Err() error { return w.err }
