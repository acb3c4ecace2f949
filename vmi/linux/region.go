package linux

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/xascript/xascript/internal/progress"
	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/paging"
)

// Region is a stretch of guest-physical memory that holds the kernel image,
// found without any symbols.
type Region struct {
	Start, Size uint64
	// BannerPA is where a "Linux version " banner sits in the region (the
	// kernel has more than one such string; this is not always linux_banner).
	BannerPA uint64
	Banner   string
	How      string // how the region was found, for `xascript info`
	// FromPageTables: the region starts at the kernel's _text, found in the
	// kernel map; its banner is left for callers to find when they need it
	// (FindBanner), since that means reading through the kernel's text.
	FromPageTables bool
}

// FindBanner fills in the first banner of a region found from the page
// tables.
func (r *Region) FindBanner(t vmi.Target) error {
	if r.Banner != "" {
		return nil
	}
	b, off, ok := findBannerIn(PhysReaderAt{Phys: t, Base: r.Start, Size: r.Size}, r.Size)
	if !ok {
		return fmt.Errorf("no %q banner in the kernel image at physical %#x", bannerPrefix, r.Start)
	}
	r.BannerPA, r.Banner = r.Start+off, b
	return nil
}

// Bounds of the search for a kernel image (a Debian x86-64 vmlinux is about
// 30 MiB in memory; .rodata, where the banner and kallsyms live, is within
// 64 MiB of _text on either side).
const (
	imageSpan      = 64 << 20
	maxBannerHits  = 64
	scanChunk      = 4 << 20
	maxScanBytes   = 1 << 40
	bannerMinMatch = len(bannerPrefix) + 1
)

// PhysReaderAt adapts a PhysReader to io.ReaderAt over [base, base+size):
// offset 0 is guest-physical base.
type PhysReaderAt struct {
	Phys       vmi.PhysReader
	Base, Size uint64
}

// ReadAt implements io.ReaderAt.
func (r PhysReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || uint64(off) >= r.Size {
		return 0, io.EOF
	}
	n := len(p)
	short := false
	if uint64(off)+uint64(n) > r.Size {
		n = int(r.Size - uint64(off))
		short = true
	}
	if err := r.Phys.ReadPhys(p[:n], r.Base+uint64(off)); err != nil {
		return 0, err
	}
	if short {
		return n, io.EOF
	}
	return n, nil
}

// FindKernel offers try the places in physical memory that may hold the
// kernel image, best first, until try accepts one (returns nil). With CPU
// state, the kernel map of the page tables CR3 points to says where the
// image is; without it (or if try rejects that), every "Linux version
// <digit>" banner in RAM marks a candidate: the log buffer holds copies too,
// so try must validate a region, e.g. by decoding its symbol tables. The
// scan of RAM only happens when the cheap candidate is missing or rejected.
//
// When every place is rejected, the error's message is one line and its
// details (vmi.Details) say why each place was rejected.
func FindKernel(t vmi.Target, try func(Region) error) error {
	return findKernel(t, nil, try)
}

// findKernel is FindKernel showing a scan of RAM on m.
func findKernel(t vmi.Target, m *progress.Meter, try func(Region) error) error {
	var details []string
	rejected := 0 // regions that try rejected
	if cpu := t.CPU(); cpu.Known {
		r, err := regionFromPageTables(t, cpu)
		if err == nil {
			if err = try(r); err == nil {
				return nil
			}
			rejected++
			details = append(details, vmi.Explain(placeLabel(r, err), err)...)
		} else {
			details = append(details, vmi.Explain("", err)...)
		}
	}
	hits, err := scanBannersShowing(t, m)
	if err != nil {
		details = append(details, vmi.Explain("", err)...)
	}
	for i, h := range hits {
		r := regionAround(t, h, "banner found at physical %#x")
		err := try(r)
		if err == nil {
			return nil
		}
		if rejected++; i < vmi.MaxDetails {
			details = append(details, vmi.Explain(placeLabel(r, err), err)...)
		}
	}
	if len(hits) > vmi.MaxDetails {
		details = append(details, fmt.Sprintf("(and %d more banners)", len(hits)-vmi.MaxDetails))
	}
	if rejected == 0 && err != nil {
		return vmi.Detailed(details, vmi.ErrNotFound, "no kernel found in %s: %w", t.Kind(), err)
	}
	if rejected == 0 {
		return vmi.Detailed(details, vmi.ErrNotFound, "no kernel found in %s: no %q banner in physical memory", t.Kind(), bannerPrefix)
	}
	return vmi.Detailed(details, vmi.ErrNotFound, "no kernel found in %s: %d candidate kernel images rejected", t.Kind(), rejected)
}

// placeLabel names r before try's error about it, unless the error
// already does.
func placeLabel(r Region, err error) string {
	if strings.Contains(err.Error(), r.How) {
		return ""
	}
	return r.How
}

// regionFromPageTables walks the kernel map (2 MiB steps) for the first
// mapped page: the start of the kernel image.
func regionFromPageTables(t vmi.Target, cpu vmi.CPUState) (Region, error) {
	mode, err := paging.ModeFromCPU(cpu)
	if err != nil {
		return Region{}, err
	}
	space := paging.New(t, mode, cpu.CR3)
	lo, hi := uint64(pageOffset32), uint64(kernelMapEnd32)
	if mode.PointerSize() == 8 {
		lo, hi = startKernelMap64, kernelMapEnd64
	}
	for va := lo; va < hi; va += kernelAlign {
		pa, err := space.Translate(va)
		if err != nil {
			continue
		}
		if mode.PointerSize() == 4 && va == lo {
			// On i386 the kernel map starts with the direct map of low
			// memory: the image is where the banner is, not at lo.
			break
		}
		r := Region{Start: pa, How: fmt.Sprintf("the kernel map at %#x (page tables of CR3 %#x)", va, cpu.CR3), FromPageTables: true}
		r.Size = clipToRAM(t, pa, imageSpan)
		return r, nil
	}
	return Region{}, fmt.Errorf("no kernel image in the kernel map of CR3 %#x", cpu.CR3)
}

type bannerHit struct {
	pa     uint64
	banner string
}

// scanBanners finds "Linux version <digit>" in RAM, reading in chunks.
// scanBannersShowing is scanBanners with its progress on m: the one pass
// over all of RAM, minutes on a large guest read live.
func scanBannersShowing(t vmi.Target, m *progress.Meter) ([]bannerHit, error) {
	var total uint64
	for _, r := range t.MemoryMap() {
		total += r.End - r.Start
	}
	bar := m.Start(progress.Step{Name: "memory", Doing: "scanning for the kernel", Done: "scanned for the kernel",
		Total: int64(min(total, maxScanBytes)), Unit: progress.Bytes})
	hits, err := scanBanners(t, bar)
	bar.Done(err)
	return hits, err
}

func scanBanners(t vmi.Target, bar *progress.Bar) ([]bannerHit, error) {
	var hits []bannerHit
	buf := make([]byte, scanChunk+maxBannerLen)
	var scanned uint64
	for _, r := range t.MemoryMap() {
		for pa := r.Start; pa < r.End; pa += scanChunk {
			n := min(uint64(len(buf)), r.End-pa)
			if err := t.ReadPhys(buf[:n], pa); err != nil {
				return hits, err
			}
			bar.Add(int64(min(n, scanChunk)))
			if scanned += n; scanned > maxScanBytes {
				return hits, fmt.Errorf("banner scan: memory map larger than %d bytes: %w", uint64(maxScanBytes), vmi.ErrLimit)
			}
			chunk := buf[:n]
			for i := 0; i < min(len(chunk), scanChunk); {
				j := bytes.Index(chunk[i:], []byte(bannerPrefix))
				if j < 0 || i+j >= scanChunk {
					break
				}
				at := i + j
				if b, ok := bannerAt(chunk[at:]); ok {
					hits = append(hits, bannerHit{pa + uint64(at), b})
					if len(hits) >= maxBannerHits {
						return hits, nil
					}
				}
				i = at + 1
			}
		}
	}
	return hits, nil
}

// bannerAt accepts a banner that looks like linux_banner: a version
// starting with a digit, printable up to a newline or NUL.
func bannerAt(b []byte) (string, bool) {
	if len(b) < bannerMinMatch || b[len(bannerPrefix)] < '0' || b[len(bannerPrefix)] > '9' {
		return "", false
	}
	end := bytes.IndexAny(b[:min(len(b), maxBannerLen)], "\x00\n")
	if end < 0 {
		return "", false
	}
	for _, c := range b[:end] {
		if c < 0x20 || c > 0x7e {
			return "", false
		}
	}
	return string(b[:end]), true
}

func findBannerIn(r io.ReaderAt, size uint64) (string, uint64, bool) {
	return findBannerWhere(r, size, func(string) bool { return true })
}

// findBannerWhere returns the first banner in r that ok accepts, looking
// at no more than maxBannerHits banners.
func findBannerWhere(r io.ReaderAt, size uint64, ok func(string) bool) (string, uint64, bool) {
	hits := 0
	buf := make([]byte, scanChunk+maxBannerLen)
	for off := uint64(0); off < size; off += scanChunk {
		n, _ := r.ReadAt(buf[:min(uint64(len(buf)), size-off)], int64(off))
		chunk := buf[:n]
		for i := 0; i < len(chunk); {
			j := bytes.Index(chunk[i:], []byte(bannerPrefix))
			if j < 0 {
				break
			}
			if b, isBanner := bannerAt(chunk[i+j:]); isBanner {
				if ok(b) {
					return b, off + uint64(i+j), true
				}
				if hits++; hits >= maxBannerHits {
					return "", 0, false
				}
			}
			i += j + 1
		}
	}
	return "", 0, false
}

func regionAround(t vmi.Target, h bannerHit, how string) Region {
	start := uint64(0)
	if h.pa > imageSpan {
		start = h.pa - imageSpan
	}
	for _, r := range t.MemoryMap() {
		if r.Contains(h.pa) && start < r.Start {
			start = r.Start
		}
	}
	return Region{Start: start, Size: clipToRAM(t, start, h.pa-start+imageSpan), BannerPA: h.pa, Banner: h.banner, How: fmt.Sprintf(how, h.pa)}
}

// clipToRAM shortens [start, start+size) to the RAM range holding start.
func clipToRAM(t vmi.Target, start, size uint64) uint64 {
	for _, r := range t.MemoryMap() {
		if r.Contains(start) {
			return min(size, r.End-start)
		}
	}
	return 0
}
