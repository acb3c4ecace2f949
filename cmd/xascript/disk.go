package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/xascript/xascript/bindings"
	"github.com/xascript/xascript/diskmon"
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
	return o.disk != "" || o.nbd != "" || o.nbdDevice != "" || o.tapfifoOut != "" || o.tapfifo != "" || o.diskAfter != ""
}

// errDiskUsage marks a disk flag given without --disk.
var errDiskUsage = errors.New("--nbd, --nbd-device, --tapfifo, --tapfifo-out and --disk-after need --disk IMAGE")

// openDisk opens the disk named by --disk and starts its tap. It returns
// nil when no disk flag was given.
func openDisk(ctx context.Context, o *options, stderr io.Writer) (*diskmon.Monitor, error) {
	if !o.diskGiven() {
		return nil, nil
	}
	if o.disk == "" {
		return nil, errDiskUsage
	}
	mo := diskmon.MonitorOptions{Image: o.disk, Partition: o.partition, NBDSocket: o.nbd, NBDDevice: o.nbdDevice,
		TapFIFO: o.tapfifo, TapFIFOOut: o.tapfifoOut, After: o.diskAfter}
	if o.verbose {
		mo.Logf = func(format string, args ...any) { fmt.Fprintf(stderr, "xascript: disk: "+format+"\n", args...) }
	}
	m, err := diskmon.OpenMonitor(ctx, mo)
	if err != nil {
		return nil, err
	}
	if !o.quiet {
		switch {
		case o.nbd != "" || o.nbdDevice != "":
			where := strings.Trim(o.nbd+" "+o.nbdDevice, " ")
			fmt.Fprintf(stderr, "xascript: serving %s (%s) over NBD on %s\n", o.disk, m.Describe(), where)
		case o.tapfifo != "":
			fmt.Fprintf(stderr, "xascript: watching %s (%s) through the requests in %s\n", o.disk, m.Describe(), o.tapfifo)
		}
	}
	return m, nil
}
