package xen

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/xascript/xascript/vmi"
)

const pageSize = vmi.PageSize

// Frame-cache geometry: frames are mapped chunkFrames at a time (one
// MMAPBATCH per chunk, aligned so neighbours share a chunk), and at most
// maxChunks chunks stay mapped; the least recently used is unmapped first.
// 64 frames is 256 KiB: a page-table walk touches four scattered frames,
// so bigger batches map mostly what is never read.
const (
	chunkFrames      = 64
	defaultMaxChunks = 1024 // 256 MiB of mappings
)

// chunk is one mapped run of frames.
type chunk struct {
	first      uint64 // first frame number
	mem        []byte
	errs       [chunkFrames]int32 // 0, or Xen's -errno for a frame it would not map (never touched)
	prev, next *chunk             // LRU list, most recent at head
}

// FrameStats counts the frame cache's work, for benchmarks and `info`.
type FrameStats struct {
	Hits, Misses uint64 // chunk lookups
	FramesMapped uint64
	FramesFailed uint64 // frames Xen refused to map
	Unmaps       uint64
}

// HitRate is hits/(hits+misses), or 0 before any lookup.
func (s FrameStats) HitRate() float64 {
	if s.Hits+s.Misses == 0 {
		return 0
	}
	return float64(s.Hits) / float64(s.Hits+s.Misses)
}

// frameCache maps a domain's frames on demand. A mapping outlives the
// frame's place in the domain (after a balloon it holds a page the domain
// gave back), and a frame Xen refused may be the domain's later: so every
// chunk, mapped frames and refused ones alike, is dropped when the target's
// generation moves.
type frameCache struct {
	hv        hypervisor
	domain    uint16
	gen       *vmi.Generation
	seen      uint64 // the generation the cached chunks were mapped under
	maxChunks int
	chunks    map[uint64]*chunk // by first frame
	head      *chunk
	tail      *chunk
	last      *chunk // the chunk of the previous lookup: most reads stay in one
	stats     FrameStats
}

func newFrameCache(hv hypervisor, domain uint16, maxChunks int, gen *vmi.Generation) *frameCache {
	if maxChunks <= 0 {
		maxChunks = defaultMaxChunks
	}
	return &frameCache{hv: hv, domain: domain, maxChunks: maxChunks, chunks: make(map[uint64]*chunk),
		gen: gen, seen: gen.Load()}
}

// frame returns the bytes of frame fn, or an error naming the frame when
// Xen would not map it. The bytes are valid until the next call.
func (c *frameCache) frame(fn uint64) ([]byte, error) {
	if g := c.gen.Load(); g != c.seen {
		c.flush()
		c.seen = g
	}
	first := fn &^ (chunkFrames - 1)
	ch := c.last
	if ch == nil || ch.first != first {
		var err error
		if ch, err = c.lookup(first); err != nil {
			return nil, err
		}
		c.last = ch
	} else {
		c.stats.Hits++
	}
	i := fn - first
	if e := ch.errs[i]; e != 0 {
		return nil, fmt.Errorf("frame %#x of domain %d: %w (Xen refused to map it: %v)", fn, c.domain, vmi.ErrNotPresent, unix.Errno(-e))
	}
	return ch.mem[i*pageSize : (i+1)*pageSize : (i+1)*pageSize], nil
}

func (c *frameCache) lookup(first uint64) (*chunk, error) {
	if ch, ok := c.chunks[first]; ok {
		c.stats.Hits++
		c.touch(ch)
		return ch, nil
	}
	c.stats.Misses++
	frames := make([]uint64, chunkFrames)
	for i := range frames {
		frames[i] = first + uint64(i)
	}
	mem, errs, err := c.hv.MapFrames(c.domain, frames, false)
	if err != nil {
		return nil, err
	}
	ch := &chunk{first: first, mem: mem}
	for i, e := range errs {
		ch.errs[i] = e
		if e == 0 {
			c.stats.FramesMapped++
		} else {
			c.stats.FramesFailed++
		}
	}
	for len(c.chunks) >= c.maxChunks {
		c.evict()
	}
	c.chunks[first] = ch
	c.pushFront(ch)
	return ch, nil
}

func (c *frameCache) touch(ch *chunk) {
	if c.head == ch {
		return
	}
	c.unlink(ch)
	c.pushFront(ch)
}

func (c *frameCache) pushFront(ch *chunk) {
	ch.prev, ch.next = nil, c.head
	if c.head != nil {
		c.head.prev = ch
	}
	c.head = ch
	if c.tail == nil {
		c.tail = ch
	}
}

func (c *frameCache) unlink(ch *chunk) {
	if ch.prev != nil {
		ch.prev.next = ch.next
	} else {
		c.head = ch.next
	}
	if ch.next != nil {
		ch.next.prev = ch.prev
	} else {
		c.tail = ch.prev
	}
	ch.prev, ch.next = nil, nil
}

func (c *frameCache) evict() {
	ch := c.tail
	if ch == nil {
		return
	}
	c.unlink(ch)
	delete(c.chunks, ch.first)
	if c.last == ch {
		c.last = nil
	}
	c.hv.Unmap(ch.mem)
	c.stats.Unmaps++
}

// flush unmaps everything (Close, or a caller that wants fresh mappings).
func (c *frameCache) flush() {
	for c.tail != nil {
		c.evict()
	}
}

// read fills buf from the domain's frames starting at byte address pa.
func (c *frameCache) read(buf []byte, pa uint64) error {
	for len(buf) > 0 {
		f, err := c.frame(pa / pageSize)
		if err != nil {
			return &vmi.PhysError{Addr: pa, Err: err}
		}
		n := copy(buf, f[pa%pageSize:])
		buf = buf[n:]
		pa += uint64(n)
	}
	return nil
}
