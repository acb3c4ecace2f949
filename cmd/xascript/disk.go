package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/xascript/xascript/bindings"
	"github.com/xascript/xascript/diskmon"
	"github.com/xascript/xascript/vmi/qemu"
)

// diskWatcher lets scripts watch the monitored disk.
type diskWatcher struct{ m *diskmon.Monitor }

func (d diskWatcher) Watch(path string, opts diskmon.WatchOptions, fn func(diskmon.Event)) (bindings.DiskWatch, error) {
	w, err := d.m.Watch(path, opts, fn)
	if err != nil {
		return nil, err
	}
	return w, nil
}

// diskGiven tells whether a disk flag was given.
func (o *options) diskGiven() bool {
	return o.disk != "" || o.nbd != "" || o.tapfifo != "" || o.diskAfter != "" || o.drive != ""
}

// memoryGiven tells whether a memory target is to be opened. With --drive,
// --qemu's socket carries the disk's QMP commands, and QEMU serves one QMP
// client per socket, so memory is not read through it.
func (o *options) memoryGiven() bool { return o.targetGiven() && o.drive == "" }

// errDiskUsage marks a disk flag given without --disk.
var errDiskUsage = errors.New("--nbd, --tapfifo and --disk-after need --disk IMAGE")

// errDriveUsage marks --drive given without --qemu, or with --disk.
var errDriveUsage = errors.New("--drive NODE needs --qemu QMP-SOCKET and no --disk, --nbd, --tapfifo or --disk-after")

// openDisk opens the disk named by --disk and starts its tap, or follows
// --drive of the --qemu guest. It returns nil when no disk flag was given.
func openDisk(ctx context.Context, o *options, stderr io.Writer) (*diskmon.Monitor, error) {
	if !o.diskGiven() {
		return nil, nil
	}
	if o.drive != "" {
		return openDrive(ctx, o, stderr)
	}
	if o.disk == "" {
		return nil, errDiskUsage
	}
	mo := diskmon.MonitorOptions{Image: o.disk, Partition: o.partition, NBDSocket: o.nbd, TapFIFO: o.tapfifo,
		After: o.diskAfter}
	if o.verbose {
		mo.Logf = diskLogf(stderr)
	}
	m, err := diskmon.OpenMonitor(ctx, mo)
	if err != nil {
		return nil, err
	}
	if !o.quiet {
		switch {
		case o.nbd != "":
			fmt.Fprintf(stderr, "xascript: serving %s (%s) over NBD on %s\n", o.disk, m.Describe(), o.nbd)
		case o.tapfifo != "":
			fmt.Fprintf(stderr, "xascript: watching %s (%s) through the requests in %s\n", o.disk, m.Describe(), o.tapfifo)
		}
	}
	return m, nil
}

func diskLogf(stderr io.Writer) func(format string, args ...any) {
	return func(format string, args ...any) { fmt.Fprintf(stderr, "xascript: disk: "+format+"\n", args...) }
}

// openDrive follows a drive of a running QEMU guest (diskmon/qmpbitmap).
func openDrive(ctx context.Context, o *options, stderr io.Writer) (*diskmon.Monitor, error) {
	if o.qemu == "" || o.disk != "" || o.nbd != "" || o.tapfifo != "" || o.diskAfter != "" {
		return nil, errDriveUsage
	}
	q, err := qemu.Dial(o.qemu, 0, nil)
	if err != nil {
		return nil, err
	}
	mo := diskmon.MonitorOptions{QMP: q, CloseQMP: true, Drive: o.drive, Interval: o.interval, Partition: o.partition}
	if o.verbose {
		mo.Logf = diskLogf(stderr)
	}
	m, err := diskmon.OpenMonitor(ctx, mo)
	if err != nil {
		q.Close()
		return nil, err
	}
	if !o.quiet {
		fmt.Fprintf(stderr, "xascript: watching drive %s (%s) of %s through dirty bitmaps every %v\n", o.drive, m.Describe(), o.qemu, o.interval)
	}
	return m, nil
}
