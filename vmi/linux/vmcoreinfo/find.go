package vmcoreinfo

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/xascript/xascript/vmi"
)

// Found is VMCOREINFO located in guest memory.
type Found struct {
	Info *Info
	Raw  []byte // the text, up to its NUL
	PA   uint64 // physical address of the text
	// VA is the text's kernel virtual address when it was found through
	// the kernel's vmcoreinfo_data pointer, else 0.
	VA  uint64
	How string // how it was found, for `xascript info`
}

// Bounds on the search.
const (
	// scanStep: vmcoreinfo_data is a page of its own, so the text starts
	// page-aligned; 4 KiB is the smallest page size.
	scanStep = 4096
	// maxScanPages bounds a scan: 64 GiB of RAM.
	maxScanPages = 1 << 24
	// maxCandidates bounds the pages that start like VMCOREINFO but do not
	// parse (a hostile guest could plant many).
	maxCandidates = 64
	firstRead     = 4096
)

// read is a physical or virtual reader.
type read func(buf []byte, addr uint64) error

// text reads the NUL-terminated text at addr: one 4 KiB page, or up to
// PAGESIZE (at most MaxSize) when the first page holds no NUL.
func text(rd read, addr uint64, limit uint64) ([]byte, *Info, error) {
	n := uint64(firstRead)
	if limit > 0 {
		n = min(n, limit)
	}
	buf := make([]byte, n)
	if err := rd(buf, addr); err != nil {
		return nil, nil, err
	}
	if i := bytes.IndexByte(buf, 0); i >= 0 {
		buf = buf[:i]
	} else if limit == 0 || limit > firstRead {
		// Larger pages: parse what we have to learn PAGESIZE, then
		// read the rest.
		if in, err := Parse(buf[:bytes.LastIndexByte(buf, '\n')+1]); err == nil && in.PageSize > firstRead {
			want := in.PageSize
			if limit > 0 {
				want = min(want, limit)
			}
			more := make([]byte, want)
			if err := rd(more, addr); err == nil {
				buf = more
				if i := bytes.IndexByte(buf, 0); i >= 0 {
					buf = buf[:i]
				}
			}
		}
	}
	in, err := Parse(buf)
	if err != nil {
		return nil, nil, err
	}
	return buf, in, nil
}

// AtPhys reads VMCOREINFO at a known physical address (a location
// remembered from an earlier run) and checks that it is there and for the
// given release ("" accepts any).
func AtPhys(r vmi.PhysReader, pa uint64, release string) (*Found, error) {
	raw, in, err := text(r.ReadPhys, pa, 0)
	if err != nil {
		return nil, fmt.Errorf("vmcoreinfo at physical %#x: %w", pa, err)
	}
	if release != "" && in.OSRelease != release {
		return nil, fmt.Errorf("vmcoreinfo at physical %#x is for %s, not %s: %w", pa, in.OSRelease, release, vmi.ErrNotFound)
	}
	return &Found{Info: in, Raw: raw, PA: pa, How: fmt.Sprintf("at physical %#x", pa)}, nil
}

// Scan looks through the ranges of physical memory for a page that starts
// with "OSRELEASE=<release>\n" and parses as VMCOREINFO; release "" accepts
// any. It reads a few bytes per 4 KiB page, at most maxScanPages pages.
func Scan(r vmi.PhysReader, ranges []vmi.Range, release string) (*Found, error) {
	prefix := []byte("OSRELEASE=" + release)
	if release != "" {
		prefix = append(prefix, '\n')
	}
	buf := make([]byte, len(prefix))
	pages, cands := 0, 0
	var rejected []string // the first candidates that did not parse, as details
	for _, rg := range ranges {
		start := (rg.Start + scanStep - 1) &^ (scanStep - 1)
		for pa := start; pa >= start && pa+uint64(len(buf)) <= rg.End; pa += scanStep {
			if pages++; pages > maxScanPages {
				return nil, fmt.Errorf("vmcoreinfo: scanned %d pages without finding it: %w", maxScanPages, vmi.ErrLimit)
			}
			if r.ReadPhys(buf, pa) != nil || !bytes.Equal(buf, prefix) {
				continue
			}
			if cands++; cands > maxCandidates {
				return nil, vmi.Detailed(rejected, vmi.ErrLimit, "vmcoreinfo: more than %d pages start with %q but none parses",
					maxCandidates, prefix)
			}
			raw, in, err := text(r.ReadPhys, pa, rg.End-pa)
			if err != nil {
				if len(rejected) < vmi.MaxDetails {
					rejected = append(rejected, fmt.Sprintf("page at physical %#x: %v", pa, err))
				}
				continue
			}
			return &Found{Info: in, Raw: raw, PA: pa,
				How: fmt.Sprintf("at physical %#x (found by a scan of RAM for %q)", pa, prefix)}, nil
		}
	}
	if cands > 0 {
		if cands > len(rejected) {
			rejected = append(rejected, fmt.Sprintf("(and %d more)", cands-len(rejected)))
		}
		return nil, vmi.Detailed(rejected, vmi.ErrNotFound, "vmcoreinfo: no page of RAM holds a valid one (%d pages start with %q but do not parse)",
			cands, prefix)
	}
	return nil, fmt.Errorf("vmcoreinfo: no page of RAM starts with %q (kernel without CONFIG_CRASH_CORE/CONFIG_VMCORE_INFO?): %w",
		prefix, vmi.ErrNotFound)
}

// FromPointer reads VMCOREINFO through the kernel's own variables:
// dataVar is the address of vmcoreinfo_data (a pointer to the text) and
// sizeVar, when not 0, that of vmcoreinfo_size. readVirt reads kernel
// virtual memory; ptrSize is 4 or 8.
func FromPointer(readVirt func(buf []byte, va uint64) error, ptrSize int, dataVar, sizeVar uint64) (*Found, error) {
	word := func(va uint64) (uint64, error) {
		b := make([]byte, ptrSize)
		if err := readVirt(b, va); err != nil {
			return 0, err
		}
		if ptrSize == 4 {
			return uint64(binary.LittleEndian.Uint32(b)), nil
		}
		return binary.LittleEndian.Uint64(b), nil
	}
	ptr, err := word(dataVar)
	if err != nil {
		return nil, fmt.Errorf("vmcoreinfo: read vmcoreinfo_data at %#x: %w", dataVar, err)
	}
	if ptr == 0 {
		return nil, fmt.Errorf("vmcoreinfo: vmcoreinfo_data is NULL (its allocation failed at boot): %w", vmi.ErrNotFound)
	}
	var limit uint64
	if sizeVar != 0 {
		size, err := word(sizeVar)
		if err != nil {
			return nil, fmt.Errorf("vmcoreinfo: read vmcoreinfo_size at %#x: %w", sizeVar, err)
		}
		if size == 0 || size > MaxSize {
			return nil, fmt.Errorf("vmcoreinfo: vmcoreinfo_size is %d: %w", size, vmi.ErrFormat)
		}
		limit = size
	}
	raw, in, err := text(readVirt, ptr, limit)
	if err != nil {
		return nil, fmt.Errorf("vmcoreinfo at %#x (from vmcoreinfo_data): %w", ptr, err)
	}
	return &Found{Info: in, Raw: raw, VA: ptr, How: fmt.Sprintf("at %#x (the kernel's vmcoreinfo_data)", ptr)}, nil
}
