package qmpbitmap

import (
	"fmt"
	"io"
	"sync"
)

// cacheBlock is the unit the cache keeps (the file systems' block size).
const cacheBlock = 4096

// maxCacheBlocks bounds the cache (64 MiB); beyond it, blocks are dropped.
const maxCacheBlocks = 16384

// maxFetch bounds one read from the export when filling the cache.
const maxFetch = 1 << 20

// readAhead is the least one fill asks the export for. The file-system
// view reads a block at a time (an inode, a directory block, the next
// journal block), and what it reads next is mostly just after: each request
// is a round trip into QEMU's main loop, which the TCG guest's vCPU waits
// for, so a miss fetches the blocks after it too (up to the first one
// cached).
const readAhead = 128 << 10

// blockCache keeps blocks read from the export until a poll reports them
// dirty. Every read through QEMU's NBD server is a round trip into QEMU's
// main loop, which a TCG guest needs too: without it, a rescan of a folder
// of a thousand files (its blocks, inode tables, the journal window) costs
// the guest a large share of its time. Blocks the guest has not written
// since they were read are served from here; the poll that reports a block
// dirty drops it before the tracker hears of the change, so a rescan never
// reads a block older than the last poll that reported it.
type blockCache struct {
	r    io.ReaderAt
	size int64

	mu     sync.Mutex
	blocks map[int64][]byte
	gen    uint64 // moves at every invalidation
	reads  uint64 // requests sent to the export, and their bytes
	bytes  uint64
}

// stats are the requests the cache has sent to the export so far, and
// their bytes.
func (c *blockCache) stats() (reads, bytes uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads, c.bytes
}

func newBlockCache(r io.ReaderAt, size int64) *blockCache {
	return &blockCache{r: r, size: size, blocks: map[int64][]byte{}}
}

// ReadAt reads p at off, at most up to the end of the drive (io.EOF then).
func (c *blockCache) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > c.size {
		return 0, fmt.Errorf("read at %d: outside the drive (%d bytes)", off, c.size)
	}
	want := len(p)
	if int64(want) > c.size-off {
		want = int(c.size - off)
	}
	done := 0
	for done < want {
		pos := off + int64(done)
		b := pos / cacheBlock
		c.mu.Lock()
		data, ok := c.blocks[b]
		c.mu.Unlock()
		if !ok {
			var err error
			if data, err = c.fill(b, off+int64(want)); err != nil {
				return done, err
			}
		}
		done += copy(p[done:want], data[pos-b*cacheBlock:])
	}
	if want < len(p) {
		return done, io.EOF
	}
	return done, nil
}

// fill reads block b and the missing blocks after it up to end, or
// readAhead past b when that is further (at most maxFetch), in one request, keeps them unless an invalidation came
// meanwhile (the data may predate it), and returns block b.
func (c *blockCache) fill(b, end int64) ([]byte, error) {
	start := b * cacheBlock
	stop := min(max(end, start+readAhead), c.size, start+maxFetch)
	c.mu.Lock()
	gen := c.gen
	// Stop at the first block already cached: no need to read it again.
	for e := (start + cacheBlock) / cacheBlock * cacheBlock; e < stop; e += cacheBlock {
		if _, ok := c.blocks[e/cacheBlock]; ok {
			stop = e
			break
		}
	}
	c.mu.Unlock()
	// Whole blocks (the last one may be cut by the drive's end).
	stop = min((stop+cacheBlock-1)/cacheBlock*cacheBlock, c.size)
	buf := make([]byte, stop-start)
	c.mu.Lock()
	c.reads++
	c.bytes += uint64(len(buf))
	c.mu.Unlock()
	if _, err := c.r.ReadAt(buf, start); err != nil && err != io.EOF {
		return nil, err
	}
	first := buf[:min(cacheBlock, len(buf))]
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return first, nil // good for this read, too old to keep
	}
	for i := 0; i < len(buf); i += cacheBlock {
		if len(c.blocks) >= maxCacheBlocks {
			c.evict()
		}
		c.blocks[(start+int64(i))/cacheBlock] = buf[i:min(i+cacheBlock, len(buf)):min(i+cacheBlock, len(buf))]
	}
	return first, nil
}

// evict drops a quarter of the cache (whichever blocks the map gives
// first); c.mu is held.
func (c *blockCache) evict() {
	n := len(c.blocks) / 4
	for k := range c.blocks {
		if n <= 0 {
			break
		}
		delete(c.blocks, k)
		n--
	}
}

// invalidate drops the blocks overlapping [off, off+n).
func (c *blockCache) invalidate(off, n uint64) {
	if n == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	first, last := off/cacheBlock, (off+n-1)/cacheBlock
	if last-first >= uint64(len(c.blocks)) {
		for k := range c.blocks {
			if uint64(k) >= first && uint64(k) <= last {
				delete(c.blocks, k)
			}
		}
		return
	}
	for b := first; b <= last; b++ {
		delete(c.blocks, int64(b))
	}
}
