package diskmon

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xascript/xascript/diskmon/nbd"
	"github.com/xascript/xascript/diskmon/tapfifo"
)

// tapOutQueue bounds the records waiting for the FIFO's reader: 1024 records
// of 5009 bytes, 5 MiB.
const tapOutQueue = 1024

// tapOut writes a XenAccess tapfifo record of every request the NBD server
// changed the disk with (WRITE, TRIM, WRITE_ZEROES, FLUSH) to a FIFO or file,
// as XenAccess's modified tapdisk did: one record per request, its first
// 4 KiB of data included, so that another monitor (xascript --tapfifo) can
// follow the disk. The guest's disk never waits for the reader: records go
// through a bounded queue to a writer goroutine, and when the queue is full
// a record is dropped and counted. A reader that misses a write still sees
// the next FLUSH record, and a tracker rescans its watches at every FLUSH, so
// it catches up there.
type tapOut struct {
	path    string
	q       chan *tapfifo.Record
	pool    sync.Pool
	dropped atomic.Uint64
	closed  atomic.Bool
	mu      sync.RWMutex // closing q vs. senders
	done    chan struct{}
	cancel  context.CancelFunc
	logf    func(string, ...any)
}

func newTapOut(path string, logf func(string, ...any)) *tapOut {
	o := &tapOut{path: path, q: make(chan *tapfifo.Record, tapOutQueue), done: make(chan struct{}), logf: logf}
	o.pool.New = func() any { return new(tapfifo.Record) }
	return o
}

// start opens the FIFO (which waits for its reader, so it happens on the
// writer goroutine) and writes records until stop.
func (o *tapOut) start(ctx context.Context) {
	ctx, o.cancel = context.WithCancel(ctx)
	go func() {
		defer close(o.done)
		f, err := openFIFOWriter(ctx, o.path)
		if err != nil {
			o.logf("tapfifo out: %v", err)
			o.drain()
			return
		}
		defer f.Close()
		// A reader that stops reading must not hold stop forever: the
		// cancel at the end of stop's grace closes the FIFO under a
		// blocked write.
		defer context.AfterFunc(ctx, func() { f.Close() })()
		w := tapfifo.NewWriter(f)
		var failed bool
		for rec := range o.q {
			if !failed {
				if err := w.WriteRecord(rec); err != nil {
					// The reader went away: keep draining so the queue never
					// fills up with records nobody will read.
					o.logf("tapfifo out %s: %v; no more records are written", o.path, err)
					failed = true
				}
			}
			o.pool.Put(rec)
		}
		if n := o.dropped.Load(); n > 0 {
			o.logf("tapfifo out %s: %d records dropped (the reader fell behind)", o.path, n)
		}
	}()
}

func (o *tapOut) drain() {
	for rec := range o.q {
		o.pool.Put(rec)
	}
}

// openFIFOWriter opens path for writing; for a FIFO that blocks until a
// reader opens it, or until ctx ends.
func openFIFOWriter(ctx context.Context, path string) (*os.File, error) {
	type res struct {
		f   *os.File
		err error
	}
	ch := make(chan res, 1)
	go func() {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		ch <- res{f, err}
	}()
	select {
	case r := <-ch:
		return r.f, r.err
	case <-ctx.Done():
		// Let the blocked open finish (a reader may still come) and close it.
		go func() {
			if r := <-ch; r.f != nil {
				r.f.Close()
			}
		}()
		return nil, fmt.Errorf("open %s: %w", path, ctx.Err())
	}
}

// write queues the record of one request; data is a WRITE's payload (only
// its first 4 KiB is kept, as in XenAccess's records).
func (o *tapOut) write(op nbd.Op, off, length uint64, data []byte) {
	var top tapfifo.Op
	switch op {
	case nbd.OpWrite:
		top = tapfifo.OpWrite
	case nbd.OpFlush:
		top = tapfifo.OpFlush
	case nbd.OpTrim:
		top = tapfifo.OpDiscard
	case nbd.OpWriteZeroes:
		top = tapfifo.OpWriteZeroes
	default:
		return
	}
	rec := o.pool.Get().(*tapfifo.Record)
	*rec = tapfifo.Record{Op: top}
	if top != tapfifo.OpFlush {
		// Records count whole sectors: an unaligned range (no block device
		// sends one) is widened to the sectors it touches.
		first := off / tapfifo.SectorSize
		last := (off + length + tapfifo.SectorSize - 1) / tapfifo.SectorSize
		if last-first > 1<<31-1 || last <= first {
			o.pool.Put(rec)
			o.dropped.Add(1)
			return
		}
		rec.Sector, rec.Count = first, uint32(last-first)
		copy(rec.Data[:], data)
	}
	o.mu.RLock()
	defer o.mu.RUnlock()
	if o.closed.Load() {
		o.pool.Put(rec)
		return
	}
	select {
	case o.q <- rec:
	default:
		o.pool.Put(rec)
		o.dropped.Add(1)
	}
}

// stopGrace bounds how long stop waits for the records queued so far to
// reach the FIFO's reader (or for a reader to open it at all).
const stopGrace = 2 * time.Second

// stop ends the stream: the records queued so far are written, then the
// FIFO is closed (its reader sees the end of the stream). A FIFO that no
// reader opened within stopGrace is given up.
func (o *tapOut) stop() {
	o.mu.Lock()
	if !o.closed.Swap(true) {
		close(o.q)
	}
	o.mu.Unlock()
	if o.cancel == nil {
		return
	}
	select {
	case <-o.done:
	case <-time.After(stopGrace):
	}
	o.cancel()
	<-o.done
}
