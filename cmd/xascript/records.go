package main

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/xascript/xascript/internal/record"
)

// guestName is what records call the target (bindings.Env.GuestName): the
// --dom name or id and the --qemu socket as given, a dump file's base name
// (the folder is where it happens to lie, not what it is); with no memory
// target, the watched disk image's base name.
func (o *options) guestName() string {
	switch {
	case o.dom != "":
		return o.dom
	case o.qemu != "":
		return o.qemu
	case o.file != "":
		return filepath.Base(o.file)
	case o.disk != "":
		return filepath.Base(o.disk)
	}
	return ""
}

// recordsLive tells whether records are observations of now, and so carry
// the time (bindings.Env.RecordTime): a live guest, or a disk watched as
// the guest writes it. A dump, or two disk images compared, describe the
// moment they were taken.
func (o *options) recordsLive() bool {
	return o.qemu != "" || o.dom != "" || o.nbd != "" || o.tapfifo != ""
}

// writeJSONReport writes a command's report (info, bench) as one JSON
// line, through the same encoder as the scripts' records.
func writeJSONReport(w io.Writer, report any) error {
	r, err := record.FromStruct(report)
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	e := record.Encoder{JSON: true}
	line, err := e.Append(nil, r)
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	_, err = w.Write(line)
	return err
}
