package xen

import (
	"fmt"
	"slices"

	"github.com/xascript/xascript/vmi"
)

// A PV guest keeps its own pfn -> mfn table (the p2m) and publishes it to
// the toolstack in its shared_info page (xen/include/public/arch-x86/xen.h,
// struct arch_shared_info): max_pfn, and pfn_to_mfn_frame_list_list, the
// machine frame of a page of frame numbers of pages of frame numbers of p2m
// pages (three levels of 512 entries on x86-64). All of it is written by the
// guest: every number is bounded and every frame checked.
const (
	entriesPerPage = pageSize / 8
	// p2m entries the guest marks as "no frame" (INVALID_P2M_ENTRY) or as
	// not its own (FOREIGN_FRAME_BIT, IDENTITY_FRAME_BIT in Linux's p2m.h).
	p2mInvalid     = ^uint64(0)
	p2mFlagBits    = 3 << 62
	maxPFNHeadroom = 1 << 18 // pfns beyond max_pages a sane p2m may span (1 GiB of holes)
)

// pvFrames reads the guest's p2m and returns the machine frames it lists,
// sorted and without duplicates. maxPages bounds the table's size.
func pvFrames(fc *frameCache, a abi, sharedInfoMFN, maxPages uint64) ([]uint64, error) {
	si, err := fc.frame(sharedInfoMFN)
	if err != nil {
		return nil, fmt.Errorf("shared_info frame %#x: %w", sharedInfoMFN, err)
	}
	maxPFN := le.Uint64(si[a.sharedMaxPFN:])
	fll := le.Uint64(si[a.sharedFLL:])
	if maxPFN == 0 || maxPFN > maxPages+maxPFNHeadroom {
		return nil, fmt.Errorf("shared_info max_pfn %#x for a domain of at most %#x pages: %w", maxPFN, maxPages, vmi.ErrLimit)
	}
	if fll == 0 || fll == p2mInvalid {
		return nil, fmt.Errorf("guest published no p2m frame list (shared_info pfn_to_mfn_frame_list_list %#x): %w", fll, vmi.ErrUnsupported)
	}
	// Copy each level out: a page the guest rewrites mid-read must not
	// make us index beyond what we checked.
	top, err := pageOfEntries(fc, fll)
	if err != nil {
		return nil, fmt.Errorf("p2m frame list list at mfn %#x: %w", fll, err)
	}
	mfns := make([]uint64, 0, min(maxPFN, 1<<20))
	pfn := uint64(0)
	for i := 0; i < entriesPerPage && pfn < maxPFN; i++ {
		mid, err := pageOfEntries(fc, top[i])
		if err != nil {
			return nil, fmt.Errorf("p2m frame list %d at mfn %#x: %w", i, top[i], err)
		}
		for j := 0; j < entriesPerPage && pfn < maxPFN; j++ {
			leaf, err := pageOfEntries(fc, mid[j])
			if err != nil {
				return nil, fmt.Errorf("p2m page for pfn %#x at mfn %#x: %w", pfn, mid[j], err)
			}
			for k := 0; k < entriesPerPage && pfn < maxPFN; k, pfn = k+1, pfn+1 {
				if e := leaf[k]; e != p2mInvalid && e&p2mFlagBits == 0 {
					mfns = append(mfns, e)
				}
			}
		}
	}
	slices.Sort(mfns)
	return slices.Compact(mfns), nil
}

func pageOfEntries(fc *frameCache, mfn uint64) ([entriesPerPage]uint64, error) {
	var out [entriesPerPage]uint64
	f, err := fc.frame(mfn)
	if err != nil {
		return out, err
	}
	for i := range out {
		out[i] = le.Uint64(f[i*8:])
	}
	return out, nil
}

// framesToRanges turns sorted frame numbers into byte ranges.
func framesToRanges(frames []uint64) []vmi.Range {
	var rs []vmi.Range
	for _, f := range frames {
		start := f * pageSize
		if n := len(rs); n > 0 && rs[n-1].End == start {
			rs[n-1].End += pageSize
			continue
		}
		rs = append(rs, vmi.Range{Start: start, End: start + pageSize})
	}
	return rs
}
