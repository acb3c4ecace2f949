package dump

import (
	"math/bits"
	"slices"
	"sort"

	"github.com/xascript/xascript/vmi"
)

// segment maps guest-physical [start, end) onto the image: the first
// fileLen bytes are data[off:off+fileLen], the rest read as zero (an ELF
// PT_LOAD whose p_memsz exceeds p_filesz). Invariants after normalize:
// start < end, fileLen <= end-start, off+fileLen <= len(data).
type segment struct {
	start, end uint64
	off        uint64
	fileLen    uint64
}

// newSegment builds the segment for memLen bytes at guest-physical start,
// of which the first fileLen are at file offset off. It reports ok=false
// when start+memLen does not fit in 64 bits.
func newSegment(start, memLen, off, fileLen uint64) (segment, bool) {
	end, carry := bits.Add64(start, memLen, 0)
	if carry != 0 {
		return segment{}, false
	}
	return segment{start: start, end: end, off: off, fileLen: fileLen}, true
}

// normalize sorts segs by start address and makes them non-overlapping.
// Overlaps happen in real dumps: kdump's /proc/vmcore has a PT_LOAD for the
// kernel text that duplicates part of a RAM PT_LOAD, and QEMU's paging=true
// dumps map one physical page at several virtual addresses. Both copies hold
// the same bytes there, so any rule gives the same answer; for hostile input
// the rule must only be deterministic: the segment that starts lower wins,
// ties go to the earlier one in file order (the sort is stable), and the
// later segment is clipped to what is left. It returns the segments and how
// many were clipped or dropped. O(n log n), so a hostile phnum cannot make
// it quadratic.
func normalize(segs []segment) ([]segment, int) {
	out := segs[:0]
	for _, s := range segs {
		if s.start < s.end {
			out = append(out, s)
		}
	}
	segs = out
	sort.SliceStable(segs, func(i, j int) bool { return segs[i].start < segs[j].start })
	out = segs[:0]
	clipped := 0
	var covered uint64 // end of the memory covered so far
	for i, s := range segs {
		if i > 0 && s.start < covered {
			clipped++
			if s.end <= covered {
				continue
			}
			cut := covered - s.start
			s.start = covered
			if cut >= s.fileLen {
				s.off += s.fileLen
				s.fileLen = 0
			} else {
				s.off += cut
				s.fileLen -= cut
			}
		}
		out = append(out, s)
		covered = s.end
	}
	return slices.Clip(out), clipped
}

// mergeRanges turns sorted, non-overlapping segments into the memory map:
// adjacent segments become one range.
func mergeRanges(segs []segment) []vmi.Range {
	var rs []vmi.Range
	for _, s := range segs {
		if n := len(rs); n > 0 && rs[n-1].End == s.start {
			rs[n-1].End = s.end
			continue
		}
		rs = append(rs, vmi.Range{Start: s.start, End: s.end})
	}
	return rs
}

// memory serves ReadPhys from the segment table.
type memory struct {
	data []byte
	segs []segment
	// last is the segment that served the previous read: scripts read
	// neighbouring addresses, so most look-ups hit it without a search.
	last int
}

// find returns the index of the segment containing pa, or -1.
func (m *memory) find(pa uint64) int {
	if m.last < len(m.segs) {
		if s := &m.segs[m.last]; s.start <= pa && pa < s.end {
			return m.last
		}
	}
	i := sort.Search(len(m.segs), func(i int) bool { return m.segs[i].end > pa })
	if i == len(m.segs) || m.segs[i].start > pa {
		return -1
	}
	m.last = i
	return i
}

// readPhys fills buf from guest-physical pa, crossing segment boundaries.
// On error buf's contents are unspecified; the error names the first
// address that is not backed by the dump.
func (m *memory) readPhys(buf []byte, pa uint64) error {
	for len(buf) > 0 {
		i := m.find(pa)
		if i < 0 {
			return &vmi.PhysError{Addr: pa, Err: vmi.ErrNotPresent}
		}
		s := &m.segs[i]
		rel := pa - s.start
		n := min(s.end-pa, uint64(len(buf)))
		if rel < s.fileLen {
			k := min(n, s.fileLen-rel)
			copy(buf[:k], m.data[s.off+rel:s.off+rel+k])
			clear(buf[k:n])
		} else {
			clear(buf[:n])
		}
		buf = buf[n:]
		pa += n // cannot wrap: pa+n <= s.end
	}
	return nil
}
