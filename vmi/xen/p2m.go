package xen

import (
	"cmp"
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

// readP2M reads the guest's p2m: entry pfn is the machine frame backing
// guest frame pfn, or p2mInvalid. maxPages bounds the table's size.
func readP2M(fc *frameCache, a abi, sharedInfoMFN, maxPages uint64) ([]uint64, error) {
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
	p2m := make([]uint64, 0, min(maxPFN, 1<<20))
	for i := 0; i < entriesPerPage && uint64(len(p2m)) < maxPFN; i++ {
		mid, err := pageOfEntries(fc, top[i])
		if err != nil {
			return nil, fmt.Errorf("p2m frame list %d at mfn %#x: %w", i, top[i], err)
		}
		for j := 0; j < entriesPerPage && uint64(len(p2m)) < maxPFN; j++ {
			leaf, err := pageOfEntries(fc, mid[j])
			if err != nil {
				return nil, fmt.Errorf("p2m page for pfn %#x at mfn %#x: %w", len(p2m), mid[j], err)
			}
			for k := 0; k < entriesPerPage && uint64(len(p2m)) < maxPFN; k++ {
				e := leaf[k]
				if e&p2mFlagBits != 0 {
					e = p2mInvalid // missing, foreign or identity: not a frame of this guest
				}
				p2m = append(p2m, e)
			}
		}
	}
	return p2m, nil
}

// m2pEntry pairs a machine frame with the guest frame it backs.
type m2pEntry struct{ mfn, pfn uint64 }

// invertP2M returns the guest's machine frames sorted, with their guest
// frames, for PhysFrame's binary search. A machine frame listed twice (a
// guest lying about its p2m) keeps its first guest frame.
func invertP2M(p2m []uint64) []m2pEntry {
	m2p := make([]m2pEntry, 0, len(p2m))
	for pfn, mfn := range p2m {
		if mfn != p2mInvalid {
			m2p = append(m2p, m2pEntry{mfn, uint64(pfn)})
		}
	}
	slices.SortStableFunc(m2p, func(a, b m2pEntry) int { return cmp.Compare(a.mfn, b.mfn) })
	return slices.CompactFunc(m2p, func(a, b m2pEntry) bool { return a.mfn == b.mfn })
}

// validFrames lists the guest frames the p2m backs, in order.
func validFrames(p2m []uint64) []uint64 {
	var pfns []uint64
	for pfn, mfn := range p2m {
		if mfn != p2mInvalid {
			pfns = append(pfns, uint64(pfn))
		}
	}
	return pfns
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
