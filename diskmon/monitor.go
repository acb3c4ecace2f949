package diskmon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xascript/xascript/diskmon/ext4"
	"github.com/xascript/xascript/diskmon/kernelnbd"
	"github.com/xascript/xascript/diskmon/nbd"
	"github.com/xascript/xascript/diskmon/qmpbitmap"
	"github.com/xascript/xascript/diskmon/tapfifo"
)

// MonitorOptions say which disk to watch and how its writes are seen.
type MonitorOptions struct {
	// Image is the guest's disk image (raw): a whole file system or a
	// partitioned disk.
	Image string
	// Partition picks the partition holding the file system (1-based); 0
	// finds it (the whole image, else the first ext2/3/4 partition).
	Partition int
	// NBDSocket serves Image to the guest over NBD on this unix socket: the
	// tap sees every write.
	NBDSocket string
	// NBDDevice serves Image through this kernel NBD device (/dev/nbdN),
	// configured by ioctls (diskmon/kernelnbd): the host's block device that
	// Xen's blkback exports to a domU. With NBDSocket, both are served.
	NBDDevice string
	// TapFIFOOut, with NBDSocket or NBDDevice, writes a XenAccess tapfifo
	// record of every change the NBD server makes to this FIFO or file, for
	// another monitor to follow (--tapfifo).
	TapFIFOOut string
	// TapFIFO reads XenAccess tapfifo records of the writes to Image from a
	// FIFO or file (a blktap-style backend that writes Image itself).
	TapFIFO string
	// After compares Image (before) with this image (after) of the same file
	// system: the events between them.
	After string
	// QMP and Drive follow a running QEMU guest's drive (no Image): its
	// writes through dirty bitmaps, its contents through QEMU's own NBD
	// export (diskmon/qmpbitmap), every Interval.
	QMP      qmpbitmap.QMP
	CloseQMP bool // Close closes QMP too (an io.Closer)
	Drive    string
	Interval time.Duration
	Tracker  TrackerOptions
	Logf     func(format string, args ...any)
}

// Monitor is a disk being watched: its view, tracker and tap.
type Monitor struct {
	opts    MonitorOptions
	part    Partition
	kind    string
	view    FSView
	tracker *Tracker

	files    []*os.File
	backend  *nbd.FileBackend
	snap     *flushSnapshot // ext2 behind the NBD server: the state at the last FLUSH
	server   *nbd.Server
	listener net.Listener
	device   *kernelnbd.Device
	tapOut   *tapOut
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	serveErr error

	after FSView // compare mode

	bitmap     *qmpbitmap.Source
	pollCancel context.CancelFunc
	pollDone   chan struct{}

	shutdown sync.Once
	stopping atomic.Bool
}

// Stopping tells whether Shutdown has begun.
func (m *Monitor) Stopping() bool { return m.stopping.Load() }

// OpenMonitor opens the image, finds its file system and starts the tap.
func OpenMonitor(ctx context.Context, o MonitorOptions) (m *Monitor, err error) {
	sources := 0
	serve := o.NBDSocket != "" || o.NBDDevice != ""
	for _, s := range []bool{serve, o.TapFIFO != "", o.After != ""} {
		if s {
			sources++
		}
	}
	if sources > 1 {
		return nil, errors.New("give one source of changes for --disk: --nbd (and/or --nbd-device), --tapfifo or --disk-after")
	}
	if o.TapFIFOOut != "" && !serve {
		return nil, errors.New("--tapfifo-out records what xascript serves: it needs --nbd or --nbd-device")
	}
	if o.Drive != "" {
		if sources > 0 || o.Image != "" {
			return nil, errors.New("--drive follows a running QEMU guest's drive: give no --disk, --nbd, --tapfifo or --disk-after with it")
		}
		return openBitmapMonitor(ctx, o)
	}
	mon := &Monitor{opts: o}
	m = mon
	defer func() {
		if err != nil {
			mon.Close() // m itself is nil by now: the return set it
		}
	}()
	if serve {
		b, err := nbd.OpenFile(o.Image, false)
		if err != nil {
			return nil, fmt.Errorf("disk %s: %w", o.Image, err)
		}
		m.backend = b
	}
	view, part, kind, err := m.openView(o.Image, o.Partition, nil)
	if err != nil {
		return nil, err
	}
	if m.backend != nil {
		if cv, ok := view.(CommitView); ok {
			if _, journaled := cv.Newest(); !journaled {
				// ext2: read the disk as it was at the guest's last FLUSH.
				m.snap = newFlushSnapshot(m.backend)
				if view, part, kind, err = m.openView(o.Image, o.Partition, snapshotView{m.snap}); err != nil {
					return nil, err
				}
				view = flushView{view.(ext4View), m.snap}
				o.Tracker.AfterRead = func() int {
					if m.snap.release() {
						return 1
					}
					return 0
				}
			}
		}
	}
	m.view, m.part, m.kind = view, part, kind
	if o.Tracker.Logf == nil {
		o.Tracker.Logf = o.Logf
	}
	m.tracker = NewTracker(view, NewFeed(0), o.Tracker)
	ctx, m.cancel = context.WithCancel(ctx)

	switch {
	case serve:
		if err := m.startNBD(ctx); err != nil {
			return nil, err
		}
	case o.TapFIFO != "":
		if err := m.startTapFIFO(ctx); err != nil {
			return nil, err
		}
	case o.After != "":
		after, _, _, err := m.openView(o.After, o.Partition, nil)
		if err != nil {
			return nil, err
		}
		m.after = after
	default:
		// A still image: nothing will change, so a watch reports nothing.
		m.tracker.Finish(time.Now())
	}
	return m, nil
}

// openView opens path read-only (the tap writes through its own handle) and
// decodes its file system, read through via when it is not nil.
func (m *Monitor) openView(path string, partition int, via io.ReaderAt) (FSView, Partition, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, Partition{}, "", fmt.Errorf("disk: %w", err)
	}
	m.files = append(m.files, f)
	fi, err := f.Stat()
	if err != nil {
		return nil, Partition{}, "", fmt.Errorf("disk %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, Partition{}, "", fmt.Errorf("disk %s: not a regular file (raw images only)", path)
	}
	part, err := FindFilesystem(f, fi.Size(), partition)
	if err != nil {
		return nil, Partition{}, "", fmt.Errorf("disk %s: %w", path, err)
	}
	var dev io.ReaderAt = f
	if via != nil {
		dev = via
	}
	return openFS(dev, part, path)
}

// openFS decodes the file system in part of dev; name is for messages.
func openFS(dev io.ReaderAt, part Partition, name string) (FSView, Partition, string, error) {
	fs, err := ext4.Open(io.NewSectionReader(dev, part.Off, part.Length), part.Length, ext4.Options{})
	if err != nil {
		return nil, Partition{}, "", fmt.Errorf("disk %s (%s): %w", name, part, err)
	}
	return NewExt4View(fs), part, fs.Kind(), nil
}

func (m *Monitor) startNBD(ctx context.Context) error {
	feed := m.tracker.Feed()
	trace := os.Getenv("XASCRIPT_DISK_TRACE") != ""
	var backend nbd.Backend = m.backend
	if m.snap != nil {
		backend = m.snap
	}
	var onWrite func(off uint64, data []byte)
	if m.opts.TapFIFOOut != "" {
		m.tapOut = newTapOut(m.opts.TapFIFOOut, m.logf)
		m.tapOut.start(ctx)
		onWrite = func(off uint64, data []byte) { m.tapOut.write(nbd.OpWrite, off, uint64(len(data)), data) }
	}
	m.server = nbd.NewServer(backend, nbd.Options{
		OnWrite: onWrite,
		OnChange: func(op nbd.Op, off, length uint64) {
			if m.tapOut != nil && op != nbd.OpWrite {
				m.tapOut.write(op, off, length, nil)
			}
			kind := ChangeWrite
			switch op {
			case nbd.OpFlush:
				kind = ChangeFlush
			case nbd.OpTrim:
				kind = ChangeTrim
			case nbd.OpWriteZeroes:
				kind = ChangeZeroes
			}
			now := time.Now()
			if trace {
				m.logf("change %d off %d len %d at %s", kind, off, length, now.Format("15:04:05.000000"))
			}
			feed.Notify(Change{Kind: kind, Off: off, Len: length, At: now})
		},
		Logf: m.opts.Logf,
	})
	// The tracker runs before anything is served: the kernel's device reads
	// (and a guest may write) as soon as it is attached.
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.tracker.Run(ctx)
	}()
	if m.opts.NBDDevice != "" {
		d, err := kernelnbd.Attach(ctx, m.opts.NBDDevice, m.server, backend.Size(), m.logf)
		if err != nil {
			return err
		}
		m.device = d
	}
	if m.opts.NBDSocket != "" {
		l, err := nbd.ListenUnix(m.opts.NBDSocket)
		if err != nil {
			return err
		}
		m.listener = l
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			if err := m.server.Serve(ctx, l); err != nil && !errors.Is(err, nbd.ErrServerClosed) && ctx.Err() == nil {
				m.serveErr = err
				m.logf("nbd server: %v", err)
			}
		}()
	}
	return nil
}

// startTapFIFO follows a stream of XenAccess tapfifo records: the backend
// that writes them (a blktap-style tapdisk) writes the image itself, so the
// records only say when and where the disk changed. The stream's end (the
// writer closed the FIFO) ends the watches after a last rescan.
func (m *Monitor) startTapFIFO(ctx context.Context) error {
	feed := m.tracker.Feed()
	m.wg.Add(2)
	go func() {
		defer m.wg.Done()
		m.tracker.Run(ctx)
	}()
	go func() {
		defer m.wg.Done()
		// Opening a FIFO waits for its writer: here, not in OpenMonitor.
		f, err := os.Open(m.opts.TapFIFO)
		if err != nil {
			m.logf("tapfifo: %v", err)
			m.tracker.Finish(time.Now())
			return
		}
		defer f.Close()
		go func() { <-ctx.Done(); f.Close() }()
		r := tapfifo.NewReader(f)
		var rec tapfifo.Record
		for {
			err := r.Next(&rec)
			var bad *tapfifo.RecordError
			switch {
			case errors.As(err, &bad):
				m.logf("%v", err)
				continue
			case err != nil:
				if !errors.Is(err, io.EOF) && ctx.Err() == nil {
					m.logf("tapfifo %s: %v", m.opts.TapFIFO, err)
				}
				m.tracker.Finish(time.Now())
				return
			}
			c := Change{Off: rec.Offset(), Len: rec.Length(), At: time.Now()}
			switch rec.Op {
			case tapfifo.OpWrite, tapfifo.OpWriteBarrier:
				c.Kind = ChangeWrite
			case tapfifo.OpFlush:
				c.Kind = ChangeFlush
			case tapfifo.OpDiscard:
				c.Kind = ChangeTrim
			case tapfifo.OpWriteZeroes:
				c.Kind = ChangeZeroes
			default:
				continue // reads change nothing
			}
			feed.Notify(c)
		}
	}()
	return nil
}

func (m *Monitor) logf(format string, args ...any) {
	if m.opts.Logf != nil {
		m.opts.Logf(format, args...)
	}
}

// Describe says what is watched, for messages: "ext4 on whole disk".
func (m *Monitor) Describe() string { return fmt.Sprintf("%s on %s", m.kind, m.part) }

// Tracker is the monitor's tracker.
func (m *Monitor) Tracker() *Tracker { return m.tracker }

// Watch watches path; in compare mode it delivers the events between the two
// images and is then done.
func (m *Monitor) Watch(path string, opts WatchOptions, fn func(Event)) (*Watch, error) {
	if m.after == nil {
		return m.tracker.Watch(path, opts, fn)
	}
	evs, err := Compare(m.view, m.after, []string{path}, opts)
	if err != nil {
		return nil, err
	}
	p, _ := cleanWatchPath(path)
	w := &Watch{t: m.tracker, path: p, opts: opts, fn: fn, done: make(chan struct{})}
	go func() {
		defer w.markDone()
		for _, e := range evs {
			if w.closed.Load() {
				return
			}
			fn(e)
		}
	}()
	return w, nil
}

// Shutdown stops the tap (the NBD server answers what it has read, closes
// its connections and syncs the image), rescans one last time (behind the
// NBD server only if a change came since the last full rescan began) and
// ends every watch. It is safe to call more than once.
func (m *Monitor) Shutdown() {
	m.shutdown.Do(func() {
		m.stopping.Store(true)
		m.stopPolling()
		// The kernel's device first: a clean NBD_DISCONNECT lets the server
		// answer everything the driver sent, where closing the server first
		// would fail the device's I/O under whoever still uses it.
		if m.device != nil {
			if err := m.device.Close(); err != nil {
				m.logf("%v", err)
			}
		}
		if m.server != nil {
			if err := m.server.Close(); err != nil {
				m.logf("%v", err)
			}
		}
		if m.tapOut != nil {
			m.tapOut.stop()
		}
		switch {
		case m.tracker == nil:
		case m.server != nil:
			// The server notifies each change once it is in the image.
			m.tracker.FinishNotified(time.Now())
		default:
			m.tracker.Finish(time.Now())
		}
	})
}

// Close shuts down and releases the image.
func (m *Monitor) Close() error {
	m.Shutdown()
	if m.cancel != nil {
		m.cancel()
	}
	m.wg.Wait()
	var errs []error
	if m.bitmap != nil {
		errs = append(errs, m.bitmap.Close())
	}
	if c, ok := m.opts.QMP.(io.Closer); ok && m.opts.CloseQMP {
		errs = append(errs, c.Close())
	}
	if m.backend != nil {
		errs = append(errs, m.backend.Close())
	}
	for _, f := range m.files {
		errs = append(errs, f.Close())
	}
	if m.opts.NBDSocket != "" && m.listener != nil {
		os.Remove(m.opts.NBDSocket)
	}
	return errors.Join(errs...)
}
