package vmcoreinfo

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/xascript/xascript/vmi"
)

// memory is guest-physical memory at base: reads outside it fail.
type memory struct {
	base uint64
	b    []byte
}

func (m memory) ReadPhys(buf []byte, pa uint64) error {
	if pa < m.base || pa-m.base > uint64(len(m.b)) || uint64(len(buf)) > uint64(len(m.b))-(pa-m.base) {
		return &vmi.PhysError{Addr: pa, Err: vmi.ErrNotPresent}
	}
	copy(buf, m.b[pa-m.base:])
	return nil
}

func (m memory) ranges() []vmi.Range {
	return []vmi.Range{{Start: m.base, End: m.base + uint64(len(m.b))}}
}

func TestScan(t *testing.T) {
	raw := fixture(t, "i386-pae")
	m := memory{base: 0x100000, b: make([]byte, 64<<10)}
	// Decoys: the same text off a page boundary, a page starting with
	// the right line that is not VMCOREINFO, another release's.
	copy(m.b[0x1010:], raw)
	copy(m.b[0x2000:], "OSRELEASE=6.1.0-50-686-pae\nnot the rest\n")
	copy(m.b[0x3000:], strings.Replace(string(raw), "6.1.0-50-686-pae", "6.1.0-49-686-pae", 1))
	copy(m.b[0x5000:], raw)

	f, err := Scan(m, m.ranges(), "6.1.0-50-686-pae")
	if err != nil {
		t.Fatal(err)
	}
	if f.PA != m.base+0x5000 || string(f.Raw) != string(raw) || f.Info.OSRelease != "6.1.0-50-686-pae" {
		t.Errorf("found %d bytes at %#x: %q", len(f.Raw), f.PA, f.Info.OSRelease)
	}
	// Any release: the first page that parses.
	if f, err := Scan(m, m.ranges(), ""); err != nil || f.PA != m.base+0x3000 {
		t.Errorf("any release: %v, %+v", err, f)
	}
	if _, err := Scan(m, m.ranges(), "6.2"); !errors.Is(err, vmi.ErrNotFound) {
		t.Errorf("no such release: %v", err)
	}
	// A remembered location.
	if f, err := AtPhys(m, m.base+0x5000, "6.1.0-50-686-pae"); err != nil || f.Info.BuildID == "" {
		t.Errorf("AtPhys: %v", err)
	}
	if _, err := AtPhys(m, m.base+0x3000, "6.1.0-50-686-pae"); !errors.Is(err, vmi.ErrNotFound) {
		t.Errorf("AtPhys of another release: %v", err)
	}
	// The text at the very end of RAM: reads stop at the range's end.
	tail := memory{base: 0, b: make([]byte, 0x2000)}
	copy(tail.b[0x1000:], raw)
	if _, err := Scan(tail, tail.ranges(), ""); err != nil {
		t.Errorf("text in the last page: %v", err)
	}
}

// TestScanBounded: a guest that plants the first line in every page costs
// a bounded number of parses.
func TestScanBounded(t *testing.T) {
	m := memory{base: 0, b: make([]byte, 2*maxCandidates*scanStep)}
	for pa := 0; pa < len(m.b); pa += scanStep {
		copy(m.b[pa:], "OSRELEASE=6.1\n")
	}
	_, err := Scan(m, m.ranges(), "6.1")
	if !errors.Is(err, vmi.ErrLimit) {
		t.Fatalf("err = %v, want ErrLimit", err)
	}
	// One short line; the rejected pages are details, bounded.
	details := vmi.Details(err)
	if len(err.Error()) > 160 || len(details) != vmi.MaxDetails || !strings.HasPrefix(details[1], "page at physical 0x1000: ") {
		t.Errorf("err %v (%d bytes), details %q", err, len(err.Error()), details)
	}
}

func TestFromPointer(t *testing.T) {
	raw := fixture(t, "i386-pae")
	// Kernel "virtual" memory: the variables at 0x100, the text at 0x1000.
	m := memory{base: 0, b: make([]byte, 0x2000)}
	copy(m.b[0x1000:], raw)
	binary.LittleEndian.PutUint32(m.b[0x100:], 0x1000)
	binary.LittleEndian.PutUint32(m.b[0x104:], uint32(len(raw)))
	f, err := FromPointer(m.ReadPhys, 4, 0x100, 0x104)
	if err != nil {
		t.Fatal(err)
	}
	if f.VA != 0x1000 || string(f.Raw) != string(raw) {
		t.Errorf("VA %#x, %d bytes", f.VA, len(f.Raw))
	}
	// Without vmcoreinfo_size: up to the NUL.
	if f, err := FromPointer(m.ReadPhys, 4, 0x100, 0); err != nil || len(f.Raw) != len(raw) {
		t.Errorf("no size: %v", err)
	}
	// vmcoreinfo_size cuts the text: a line is lost, the rest parses.
	binary.LittleEndian.PutUint32(m.b[0x104:], uint32(len(raw)-3))
	if f, err := FromPointer(m.ReadPhys, 4, 0x100, 0x104); err != nil || f.Info.Malformed != 1 {
		t.Errorf("short size: %v", err)
	}
	binary.LittleEndian.PutUint32(m.b[0x104:], 1<<30)
	if _, err := FromPointer(m.ReadPhys, 4, 0x100, 0x104); !errors.Is(err, vmi.ErrFormat) {
		t.Errorf("huge size: %v", err)
	}
	binary.LittleEndian.PutUint32(m.b[0x100:], 0)
	if _, err := FromPointer(m.ReadPhys, 4, 0x100, 0x104); !errors.Is(err, vmi.ErrNotFound) {
		t.Errorf("NULL pointer: %v", err)
	}
	binary.LittleEndian.PutUint64(m.b[0x100:], 0xdead_0000_0000)
	if _, err := FromPointer(m.ReadPhys, 8, 0x100, 0); !errors.Is(err, vmi.ErrNotPresent) {
		t.Errorf("wild pointer: %v", err)
	}
}
