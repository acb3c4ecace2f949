package dump

import (
	"math"

	"github.com/xascript/xascript/vmi"
)

const (
	limeHeaderSize = 32
	limeVersion    = 1
	maxLiMERanges  = 1 << 16 // a capture has one range per System RAM region
)

// parseLiME reads the chain of LiME range headers: each is u32 magic, u32
// version, u64 start, u64 end (inclusive), 8 reserved bytes, followed by
// end-start+1 bytes of memory. Only the headers are read (one per range),
// never the memory between them. The format has no range count or end
// marker, so a capture cut exactly between two ranges cannot be told from a
// shorter one; a cut anywhere else is reported as truncated.
func parseLiME(name string, data []byte) (*Dump, error) {
	var segs []segment
	n := uint64(len(data))
	for off := uint64(0); off < n; {
		i := len(segs)
		if i >= maxLiMERanges {
			return nil, formatErr(vmi.ErrLimit, "LiME %s: more than %d ranges", name, maxLiMERanges)
		}
		if n-off < limeHeaderSize {
			return nil, formatErr(vmi.ErrFormat, "LiME %s: truncated: range %d header at offset %#x needs %d bytes, %d left", name, i, off, limeHeaderSize, n-off)
		}
		h := data[off : off+limeHeaderSize]
		if m := le.Uint32(h); m != limeMagic {
			return nil, formatErr(vmi.ErrFormat, "LiME %s: range %d header at offset %#x: bad magic %#08x (want %#08x)", name, i, off, m, limeMagic)
		}
		if v := le.Uint32(h[4:]); v != limeVersion {
			return nil, formatErr(vmi.ErrUnsupported, "LiME %s: range %d header at offset %#x: version %d (only 1 is known)", name, i, off, v)
		}
		start, last := le.Uint64(h[8:]), le.Uint64(h[16:])
		if last < start || last == math.MaxUint64 {
			return nil, formatErr(vmi.ErrFormat, "LiME %s: range %d header at offset %#x: bad range start %#x end %#x (end is inclusive)", name, i, off, start, last)
		}
		size := last - start + 1
		dataOff := off + limeHeaderSize
		if size > n-dataOff {
			return nil, formatErr(vmi.ErrFormat, "LiME %s: truncated: range %d [%#x-%#x] needs %#x bytes at offset %#x, the file has %#x", name, i, start, last, size, dataOff, n-dataOff)
		}
		segs = append(segs, segment{start: start, end: last + 1, off: dataOff, fileLen: size})
		off = dataOff + size
	}
	return newDump(name, "LiME", data, segs)
}
