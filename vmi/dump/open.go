package dump

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi"
)

// Options configure Open. The embedded unpack.Options choose where a
// compressed dump is decompressed to (a cache directory or anonymous memory)
// and bound its decompressed size; its Writable opens an uncompressed dump
// read-write, for WritePhys (write.go).
type Options struct {
	unpack.Options
}

// VMCoreInfoProvider is implemented by targets whose dump carries a
// VMCOREINFO note (kdump vmcores; QEMU dumps of guests with a vmcoreinfo
// device). The text is the note's "KEY=value\n" lines.
type VMCoreInfoProvider interface {
	VMCoreInfo() (string, bool)
}

// VCPUProvider is implemented by ELF-core targets: every vCPU found in the
// notes, in note order (vCPU 0 first). CPU() is VCPUs()[0].State.
type VCPUProvider interface {
	VCPUs() []VCPU
}

// CompressionProvider reports how the dump file was compressed: "" (not
// compressed), "zstd", "xz", "gzip" or "bzip2".
type CompressionProvider interface {
	Compression() string
}

// Dump is the vmi.Target for a dump file. Like every Target it is for one
// goroutine at a time (ReadPhys remembers the last segment it used).
type Dump struct {
	name        string
	path        string // the file Open was given ("" for Parse)
	kind        string
	mem         memory
	ranges      []vmi.Range
	vcpus       []VCPU
	vmcoreinfo  string
	hasCoreInfo bool
	compression string
	file        *unpack.File // nil for Parse
	closed      bool
	gen         vmi.Generation // moves on every write (write.go)
}

var (
	_ vmi.Target          = (*Dump)(nil)
	_ VMCoreInfoProvider  = (*Dump)(nil)
	_ VCPUProvider        = (*Dump)(nil)
	_ CompressionProvider = (*Dump)(nil)
)

// errClosed is returned by ReadPhys after Close: the mmap is gone.
var errClosed = errors.New("dump is closed")

// Open opens the dump at path. The file is decompressed if its first bytes
// are a zstd, xz, gzip or bzip2 magic, then recognised by content: an ELF
// core, a LiME capture, or (anything else whose size is a multiple of 4096)
// a raw physical image starting at address 0.
func Open(path string, opt Options) (vmi.Target, error) {
	f, err := unpack.Open(path, opt.Options)
	if err != nil {
		return nil, fmt.Errorf("dump: %w", err) // unpack names the path
	}
	name := path
	if c := f.Compression(); c != "" {
		// Offsets in errors are in the decompressed bytes: say so.
		name = fmt.Sprintf("%s (%s-decompressed)", path, c)
	}
	d, err := parse(name, f.Data)
	if err != nil {
		f.Close()
		return nil, err
	}
	d.file, d.path = f, path
	d.compression = f.Compression()
	return d, nil
}

// Parse recognises an uncompressed dump held in data (see Open), for
// callers and tests that already have the bytes; name is used in errors.
// The Dump reads data in place: the caller must not modify it.
func Parse(name string, data []byte) (*Dump, error) {
	return parse(name, data)
}

const (
	pageSize  = 4096
	limeMagic = 0x4C694D45 // "EMiL" on disk, little-endian
)

func parse(name string, data []byte) (*Dump, error) {
	switch {
	case len(data) == 0:
		return nil, formatErr(vmi.ErrFormat, "dump %s: empty file", name)
	case bytes.HasPrefix(data, []byte("\x7fELF")):
		return parseELF(name, data)
	case len(data) >= 4 && binary.LittleEndian.Uint32(data) == limeMagic:
		return parseLiME(name, data)
	case len(data)%pageSize == 0:
		return parseRaw(name, data)
	}
	return nil, formatErr(vmi.ErrFormat,
		"dump %s: unknown format: not an ELF core or LiME capture, and its size %#x is not a multiple of 4096 as a raw image's would be",
		name, len(data))
}

// newDump finishes a Dump from its (unsorted, possibly overlapping) segments.
func newDump(name, kind string, data []byte, segs []segment) (*Dump, error) {
	segs, _ = normalize(segs)
	if len(segs) == 0 {
		return nil, formatErr(vmi.ErrFormat, "%s %s: no memory in the dump", kind, name)
	}
	return &Dump{
		name:   name,
		kind:   kind,
		mem:    memory{data: data, segs: segs},
		ranges: mergeRanges(segs),
	}, nil
}

// ReadPhys fills buf from guest-physical address pa. A read may span
// adjacent segments; any byte outside the memory map fails the whole read
// with a *vmi.PhysError (wrapping vmi.ErrNotPresent) naming the first
// missing address.
func (d *Dump) ReadPhys(buf []byte, pa uint64) error {
	if d.closed {
		return &vmi.PhysError{Addr: pa, Err: errClosed}
	}
	return d.mem.readPhys(buf, pa)
}

// MemoryMap returns the guest-physical ranges the dump holds, sorted and
// merged. The caller must not modify the slice.
func (d *Dump) MemoryMap() []vmi.Range { return d.ranges }

// CPU returns vCPU 0's control registers; Known is false for raw images,
// LiME captures and ELF cores without a QEMU note (kdump vmcores).
func (d *Dump) CPU() vmi.CPUState {
	if len(d.vcpus) == 0 {
		return vmi.CPUState{}
	}
	return d.vcpus[0].State
}

// Kind names the format: "ELF core (QEMU)", "ELF core (kdump)", "ELF core",
// "LiME" or "raw image".
func (d *Dump) Kind() string { return d.kind }

// VCPUs returns the vCPUs found in an ELF core's notes (nil otherwise).
// The caller must not modify them.
func (d *Dump) VCPUs() []VCPU { return d.vcpus }

// VMCoreInfo returns the VMCOREINFO note's text, if the dump has one.
func (d *Dump) VMCoreInfo() (string, bool) { return d.vmcoreinfo, d.hasCoreInfo }

// Compression reports how the file was compressed ("" for none).
func (d *Dump) Compression() string { return d.compression }

// Close releases the mapping. Later reads fail; Close is idempotent.
func (d *Dump) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	d.gen.Bump() // pages handed out by PhysPage are about to be unmapped
	d.mem = memory{}
	if d.file != nil {
		return d.file.Close()
	}
	return nil
}

// formatError is an error with a complete message that still matches a
// sentinel (vmi.ErrFormat, ...) under errors.Is, so messages need not end in
// ": malformed".
type formatError struct {
	msg      string
	sentinel error
}

func (e *formatError) Error() string { return e.msg }
func (e *formatError) Unwrap() error { return e.sentinel }

func formatErr(sentinel error, format string, args ...any) error {
	return &formatError{msg: fmt.Sprintf(format, args...), sentinel: sentinel}
}

// PhysPage implements vmi.PageMapper: the page that contains pa, as a view
// of the mapped dump, when the dump holds all of its bytes.
func (d *Dump) PhysPage(pa uint64) *[vmi.PageSize]byte {
	if d.closed {
		return nil
	}
	pa &^= vmi.PageSize - 1
	i := d.mem.find(pa)
	if i < 0 {
		return nil
	}
	s := &d.mem.segs[i]
	rel := pa - s.start
	if s.end-pa < vmi.PageSize || rel >= s.fileLen || s.fileLen-rel < vmi.PageSize {
		return nil
	}
	o := s.off + rel
	return (*[vmi.PageSize]byte)(d.mem.data[o : o+vmi.PageSize])
}
