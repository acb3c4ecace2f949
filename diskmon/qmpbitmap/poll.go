package qmpbitmap

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/xascript/xascript/diskmon/nbd"
)

// ErrClosed is returned by Poll after Close.
var ErrClosed = errors.New("qmpbitmap: source closed")

// maxExtents bounds the extents one poll collects (QEMU merges adjacent
// dirty clusters, so a drive has at most size/granularity/2 runs; this is a
// guard against a lying server, not a limit a real drive reaches).
const maxExtents = 1 << 22

// Run polls every Interval until ctx ends or QEMU goes away (a QMP client
// with a Gone method says so, as vmi/qemu's does), handing each poll's
// changes to emit; it reports whether QEMU went away. A failed poll is
// logged and reported as a write over the whole drive (the tracker then
// re-reads everything it watches): nothing is lost, only precision.
func (s *Source) Run(ctx context.Context, emit func(Change)) (gone bool) {
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
		if err := s.Poll(ctx, emit); err != nil {
			if errors.Is(err, ErrClosed) {
				return false
			}
			if g, ok := s.q.QMP.(interface{ Gone() bool }); ok && g.Gone() {
				s.logf("QEMU has gone away: %v", err)
				return true
			}
			s.logf("dirty bitmap: %v", err)
		}
	}
}

// Poll reads what the guest wrote since the last poll, in one atomic step
// of QEMU's: a transaction adds the next bitmap (recording) and disables the
// current one, so every write lands in exactly one of them. The disabled
// bitmap is exported read-only, its dirty extents read with
// NBD_CMD_BLOCK_STATUS, and then it is removed. A poll finds nothing to do
// when the recording bitmap is empty (query-named-block-nodes and
// query-blockstats only).
func (s *Source) Poll(ctx context.Context, emit func(Change)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	t0, calls0 := time.Now(), s.q.calls
	defer func() {
		if s.opts.Logf == nil || s.q.calls <= calls0+s.idleCalls {
			return // nothing new: no line
		}
		reads, bytes := s.cache.stats()
		s.logf("poll %d: %d QMP commands, %v; since the last poll with a line the view read the export %d times (%d KiB)",
			s.gen, s.q.calls-calls0, time.Since(t0).Round(time.Microsecond), reads-s.logReads, (bytes-s.logBytes)>>10)
		s.logReads, s.logBytes = reads, bytes
	}()
	count, err := s.count()
	if err != nil {
		return err
	}
	// Flushes counted before the swap follow writes that are in the bitmap
	// being swapped out, so the flush is reported after them.
	flushed := false
	if st, err := s.stats(); err == nil {
		flushed = s.haveStat && st.Stats.FlushOps != s.flushes
		s.flushes, s.haveStat = st.Stats.FlushOps, true
	}
	at := time.Now()
	if count == 0 {
		if flushed {
			emit(Change{Flush: true, At: at})
		}
		return nil
	}
	old, next := s.bitmap(s.gen), s.bitmap(s.gen+1)
	err = call(s.q, "transaction", map[string]any{"actions": []any{
		map[string]any{"type": "block-dirty-bitmap-add", "data": s.addArgs(next)},
		map[string]any{"type": "block-dirty-bitmap-disable", "data": map[string]any{"node": s.drv.node, "name": old}},
	}}, nil)
	if err != nil && !s.hasBitmap(next) {
		// Transactions are all or nothing; a reply lost to a timeout is
		// told apart by whether the new bitmap exists.
		return fmt.Errorf("swap bitmaps %s -> %s: %w", old, next, err)
	}
	at = time.Now()
	s.gen++
	s.bitmaps = append(s.bitmaps, next)
	ranges, rerr := s.readBitmap(ctx, old)
	if rerr != nil {
		ranges = [][2]uint64{{0, uint64(s.drv.size)}}
	}
	if err := s.dropBitmap(old); err != nil && rerr == nil {
		rerr = err
	}
	// The cache lets go of the blocks before the tracker hears of them.
	for _, r := range ranges {
		s.cache.invalidate(r[0], r[1])
	}
	for _, r := range ranges {
		emit(Change{Off: r[0], Len: r[1], At: at})
	}
	if flushed {
		emit(Change{Flush: true, At: at})
	}
	return rerr
}

// dropBitmap removes the swapped-out bitmap old once its export is gone.
// QEMU lets go of an exported bitmap in the same step that it unlists the
// export (blk_exp_delete_bh, in its main loop), which is mostly done by the
// time block-export-del has returned: so the bitmap is removed at once, and
// only when QEMU still finds it busy does the poll wait for the export to
// leave query-block-exports (one command less, and no sleep, per poll).
func (s *Source) dropBitmap(old string) error {
	dirty := s.name("dirty")
	if err := s.removeBitmap(s.drv.node, old); err == nil {
		s.exports = remove(s.exports, dirty)
		return nil
	}
	if err := s.removeExport(dirty); err != nil {
		return fmt.Errorf("remove export %s: %w", dirty, err)
	}
	if err := s.removeBitmap(s.drv.node, old); err != nil {
		return fmt.Errorf("remove %s: %w", old, err)
	}
	return nil
}

// hasBitmap tells whether QEMU lists bitmap name on the drive's node.
func (s *Source) hasBitmap(name string) bool {
	var nodes []nodeInfo
	if call(s.q, "query-named-block-nodes", map[string]any{"flat": true}, &nodes) != nil {
		return false
	}
	for _, n := range nodes {
		for _, b := range n.DirtyBitmaps {
			if n.NodeName == s.drv.node && b.Name == name {
				return true
			}
		}
	}
	return false
}

// count is how many bytes the recording bitmap has dirty.
func (s *Source) count() (uint64, error) {
	var nodes []nodeInfo
	if err := call(s.q, "query-named-block-nodes", map[string]any{"flat": true}, &nodes); err != nil {
		return 0, err
	}
	want := s.bitmap(s.gen)
	for _, n := range nodes {
		if n.NodeName != s.drv.node {
			continue
		}
		for _, b := range n.DirtyBitmaps {
			if b.Name == want {
				return b.Count, nil
			}
		}
		return 0, fmt.Errorf("dirty bitmap %s is gone from node %s (removed by someone else?)", want, s.drv.node)
	}
	return 0, fmt.Errorf("node %s is gone from QEMU (drive removed or replaced?)", s.drv.node)
}

// stats are the drive's I/O counters (query-blockstats), for its flushes.
func (s *Source) stats() (blockStats, error) {
	var all []blockStats
	if err := call(s.q, "query-blockstats", nil, &all); err != nil {
		return blockStats{}, err
	}
	for _, st := range all {
		if st.NodeName == s.drv.node || (s.drv.device != "" && st.Device == s.drv.device) || (s.drv.qdev != "" && st.QDev == s.drv.qdev) {
			return st, nil
		}
	}
	return blockStats{}, fmt.Errorf("no block stats for node %s", s.drv.node)
}

// readBitmap exports the disabled bitmap name, reads its dirty extents and
// removes the export; it returns [offset, length] pairs.
func (s *Source) readBitmap(ctx context.Context, name string) ([][2]uint64, error) {
	id := s.name("dirty")
	cl, err := s.export(ctx, id, name)
	if err != nil {
		if derr := s.delExport(id); derr != nil {
			err = errors.Join(err, derr)
		}
		return nil, err
	}
	ranges, err := dirtyRanges(cl, "qemu:dirty-bitmap:"+name, uint64(s.drv.size))
	cl.Close()
	if derr := s.delExport(id); derr != nil {
		err = errors.Join(err, fmt.Errorf("remove export %s: %w", id, derr))
	}
	return ranges, err
}

// blockStatusSpan is the most one NBD_CMD_BLOCK_STATUS asks about (its
// length is 32 bits).
const blockStatusSpan = 1 << 30

// blockStatuser is the part of nbd.Client dirtyRanges uses.
type blockStatuser interface {
	BlockStatus(off uint64, length uint32, reqOne bool) (map[string][]nbd.Extent, error)
}

// dirtyRanges walks the whole export with block status queries and returns
// its dirty runs, adjacent ones merged. Every reply is from QEMU, but it is
// bounded all the same: an extent of length 0 or a reply with no extents
// ends the walk with an error instead of looping.
func dirtyRanges(cl blockStatuser, context string, size uint64) ([][2]uint64, error) {
	var out [][2]uint64
	n := 0
	for off := uint64(0); off < size; {
		span := min(size-off, blockStatusSpan)
		m, err := cl.BlockStatus(off, uint32(span), false)
		if err != nil {
			return nil, fmt.Errorf("block status at %d: %w", off, err)
		}
		exts := m[context]
		if len(exts) == 0 {
			return nil, fmt.Errorf("block status at %d: no extents for %s", off, context)
		}
		for _, e := range exts {
			if e.Length == 0 {
				return nil, fmt.Errorf("block status at %d: extent of length 0", off)
			}
			l := min(uint64(e.Length), size-off)
			if e.Flags&nbd.StateDirty != 0 {
				if k := len(out); k > 0 && out[k-1][0]+out[k-1][1] == off {
					out[k-1][1] += l
				} else {
					out = append(out, [2]uint64{off, l})
				}
			}
			off += l
			if n++; n > maxExtents {
				return nil, fmt.Errorf("block status: more than %d extents", maxExtents)
			}
			if off >= size {
				break
			}
		}
	}
	return out, nil
}
