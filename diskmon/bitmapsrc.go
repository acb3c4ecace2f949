package diskmon

import (
	"context"
	"fmt"
	"time"

	"github.com/xascript/xascript/diskmon/qmpbitmap"
)

// openBitmapMonitor follows the drive o.Drive of the QEMU guest behind o.QMP
// (diskmon/qmpbitmap): the file system is read through QEMU's read-only NBD
// export, and each poll's dirty runs reach the tracker as writes.
func openBitmapMonitor(ctx context.Context, o MonitorOptions) (m *Monitor, err error) {
	if o.QMP == nil {
		return nil, fmt.Errorf("--drive %s needs --qemu QMP-SOCKET", o.Drive)
	}
	src, err := qmpbitmap.Open(ctx, o.QMP, qmpbitmap.Options{Drive: o.Drive, Interval: o.Interval, Logf: o.Logf})
	if err != nil {
		return nil, fmt.Errorf("drive %s: %w", o.Drive, err)
	}
	mon := &Monitor{opts: o, bitmap: src}
	defer func() {
		if err != nil {
			mon.Close()
		}
	}()
	name := "drive " + o.Drive
	part, err := FindFilesystem(src, src.Size(), o.Partition)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	view, part, kind, err := openFS(src, part, name)
	if err != nil {
		return nil, err
	}
	mon.view, mon.part, mon.kind = view, part, kind
	if o.Tracker.Logf == nil {
		o.Tracker.Logf = o.Logf
	}
	if o.Tracker.Quiet == 0 {
		o.Tracker.Quiet = pollQuiet
	}
	mon.tracker = NewTracker(view, NewFeed(0), o.Tracker)
	ctx, mon.cancel = context.WithCancel(ctx)
	pctx, pcancel := context.WithCancel(ctx)
	mon.pollCancel, mon.pollDone = pcancel, make(chan struct{})
	mon.wg.Add(1)
	go func() {
		defer mon.wg.Done()
		mon.tracker.Run(ctx)
	}()
	go func() {
		defer close(mon.pollDone)
		if src.Run(pctx, mon.feedBitmap) {
			// The drive's source has ended: the watches end with it.
			mon.tracker.Finish(time.Now())
		}
	}()
	return mon, nil
}

// pollQuiet is the tracker's Quiet for a polled drive. A tap sees each
// write as the guest makes it, so the tracker waits for the disk to go
// quiet (100 ms) before it reads a burst; a poll hands over everything of
// its interval at once, one change after another, so the burst is whole as
// soon as the poll's last change has arrived. Waiting longer only made
// events late: a poll whose writes came without their FLUSH (the guest's
// flush counted in the next poll) waited out the 100 ms, which took the
// event latency past one interval plus 50 ms. Journaled file systems only:
// without a journal the tracker waits for a FLUSH or UnjournaledQuiet.
const pollQuiet = 5 * time.Millisecond

// feedBitmap hands one poll's change to the tracker.
func (m *Monitor) feedBitmap(c qmpbitmap.Change) {
	kind := ChangeWrite
	if c.Flush {
		kind = ChangeFlush
	}
	m.tracker.Feed().Notify(Change{Kind: kind, Off: c.Off, Len: c.Len, At: c.At})
}

// stopPolling ends the bitmap polls and reads once more, so that what the
// guest wrote since the last poll reaches the tracker's last rescan.
func (m *Monitor) stopPolling() {
	if m.bitmap == nil || m.pollCancel == nil {
		return
	}
	m.pollCancel()
	<-m.pollDone
	if err := m.bitmap.Poll(context.Background(), m.feedBitmap); err != nil {
		m.logf("last dirty-bitmap poll: %v", err)
	}
}
