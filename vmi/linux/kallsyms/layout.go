package kallsyms

import (
	"encoding/binary"
	"fmt"

	"github.com/xascript/xascript/vmi"
)

// nameTables are the located kallsyms_num_syms, kallsyms_names and
// kallsyms_markers.
type nameTables struct {
	numSyms, names, markers int64
	markerW                 int // 4, or 8 for pointer-sized markers (before v4.20)
	n                       int
	raw                     []byte // the names table
	mk                      []uint64
}

// aligner aligns image offsets in the guest's terms. Every table starts at
// a label that scripts/kallsyms aligns (ALGN: 8 on 64-bit, 4 on 32-bit and
// since v7.0), so the token table's offset is the reference even when
// image offset 0 is not aligned.
type aligner int64

func (a aligner) up(x int64, n int64) int64 {
	r := (x - int64(a)) % n
	if r < 0 {
		r += n
	}
	if r == 0 {
		return x
	}
	return x + n - r
}

func (a aligner) down(x int64, n int64) int64 {
	r := (x - int64(a)) % n
	if r < 0 {
		r += n
	}
	return x - r
}

// kernelHalf reports an address in the upper half of a 64-bit address space,
// where 64-bit kernels (x86-64, arm64) put their image.
func kernelHalf(v uint64) bool { return v >= 0xffff_8000_0000_0000 }

func (f *finder) fromTokenTable(tt *tokenTable) (*Result, error) {
	var errs []error
	var res *Result
	tried := 0
	err := f.markerCandidates(tt, func(m0 int64, w int, mk []uint64) bool {
		tried++
		nt, err := f.nameTables(tt, m0, w, mk)
		if err == nil {
			res, err = f.addresses(tt, nt)
			if err == nil {
				return false
			}
		}
		if f.work < 0 {
			res, errs = nil, []error{err}
			return false
		}
		if len(errs) < vmi.MaxDetails/2 {
			errs = append(errs, err)
		}
		return tried < maxMarkerCands
	})
	if f.work < 0 {
		return nil, errf(vmi.ErrLimit, "kallsyms_token_table at %#x: %v", tt.table, errs[0])
	}
	switch {
	case res != nil:
		return res, nil
	case err != nil:
		return nil, err
	case tried == 0:
		return nil, errf(vmi.ErrNotFound, "kallsyms_token_table at %#x: kallsyms_markers not found before it", tt.table)
	}
	return nil, vmi.Detailed(vmi.ExplainAll(nil, errs, tried), vmi.ErrNotFound,
		"kallsyms_token_table at %#x: %d kallsyms_markers candidates, none fits", tt.table, tried)
}

// markerCandidates looks backward from the token table for kallsyms_markers:
// a 0 followed by offsets that grow by one block of 256 names each. They
// end right before the token table, or (v6.2-v6.3) before
// kallsyms_seqs_of_names, which is at most 3*MaxSymbols bytes long.
func (f *finder) markerCandidates(tt *tokenTable, try func(m0 int64, w int, mk []uint64) bool) error {
	al := aligner(tt.table)
	maxMarkers := (f.opt.MaxSymbols + 255) / 256
	lowest := max(0, tt.table-int64(3*f.opt.MaxSymbols+8*maxMarkers+64))
	const chunk = 256 << 10
	for hi := tt.table; hi > lowest; hi -= chunk {
		if err := f.opt.Context.Err(); err != nil {
			return err
		}
		lo := max(lowest, hi-chunk)
		if err := f.spend(int(hi-lo) / 4); err != nil {
			return err
		}
		end := min(tt.table, hi+16) // look ahead into the chunk above
		b, err := f.read(lo, end-lo, "kallsyms_markers search")
		if err != nil {
			return err
		}
		for q := al.down(hi-4, 4); q >= lo; q -= 4 {
			i := int(q - lo)
			if binary.LittleEndian.Uint32(b[i:]) != 0 {
				continue
			}
			for _, w := range []int{4, 8} {
				if q+int64(w) > tt.table || w == 8 && (al.down(q, 8) != q || binary.LittleEndian.Uint32(b[i+4:]) != 0) {
					continue
				}
				first := i+2*w <= len(b) && gapOK(word(b[i+w:], w))
				last := tt.table-(q+int64(w)) < 8 && zeros(b[i+w:])
				if !first && !last {
					continue
				}
				mk, err := f.markerRun(tt, q, w, maxMarkers)
				if err != nil {
					return err
				}
				if !try(q, w, mk) {
					return nil
				}
			}
		}
	}
	return nil
}

func gapOK(d uint64) bool { return d >= minMarkerGap && d <= maxMarkerGap }

func word(b []byte, w int) uint64 {
	if w == 8 {
		return binary.LittleEndian.Uint64(b)
	}
	return uint64(binary.LittleEndian.Uint32(b))
}

func zeros(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// markerRun reads the markers starting at m0 for as long as they grow like
// markers do, up to the token table.
func (f *finder) markerRun(tt *tokenTable, m0 int64, w, maxMarkers int) ([]uint64, error) {
	n := min(int64(maxMarkers*w), tt.table-m0)
	b, err := f.read(m0, n-n%int64(w), "kallsyms_markers")
	if err != nil {
		return nil, err
	}
	mk := []uint64{0}
	for i := w; i+w <= len(b); i += w {
		v := word(b[i:], w)
		if v < mk[len(mk)-1] || !gapOK(v-mk[len(mk)-1]) {
			break
		}
		mk = append(mk, v)
	}
	return mk, nil
}

// nameTables finds kallsyms_num_syms and kallsyms_names for the markers at
// m0: the names end right before the markers, the count sits right before
// the names, and every 256th name starts where its marker says.
func (f *finder) nameTables(tt *tokenTable, m0 int64, w int, run []uint64) (*nameTables, error) {
	al := aligner(tt.table)
	var errs []string
	// The run may have grown past the real markers into what follows them;
	// then its tail is wrong, so try it shortened too.
	for r := len(run); r >= 1 && r >= len(run)-2; r-- {
		mk := run[:r]
		last := mk[r-1]
		if last > maxNamesBytes || int64(last) > m0 {
			errs = append(errs, fmt.Sprintf("the first %d markers: last marker %#x is beyond the image or %d bytes", r, last, maxNamesBytes))
			continue
		}
		lo := max(0, m0-int64(last)-maxMarkerGap-16)
		b, err := f.read(lo, m0-lo, "kallsyms_names")
		if err != nil {
			return nil, err
		}
		for p := al.down(m0-int64(last)-6, 4); p >= lo; p -= 4 {
			if err := f.spend(1); err != nil {
				return nil, err
			}
			// The count must need exactly the r markers of the run.
			v := int(binary.LittleEndian.Uint32(b[p-lo:]))
			if v <= 256*(r-1) || v > 256*r || v > f.opt.MaxSymbols {
				continue
			}
			m := r
			for _, gap := range []int64{4, 8} {
				n0 := p + gap
				if n0 >= m0 || gap == 8 && binary.LittleEndian.Uint32(b[p-lo+4:]) != 0 {
					continue
				}
				raw := b[n0-lo:]
				// First the last block alone (its start is known from its
				// marker), which rejects a wrong count cheaply; then all.
				if l := int64(last); n0+l >= m0 {
					continue
				} else if err := f.spend(v - 256*(m-1)); err != nil {
					return nil, err
				} else if end, err := walkNames(raw[l:], v-256*(m-1), nil); err != nil || m0-(n0+l+int64(end)) >= 8 {
					continue
				}
				if err := f.spend(v); err != nil {
					return nil, err
				}
				end, err := walkNames(raw, v, mk[:m])
				if err != nil {
					continue
				}
				// The names end at the markers, up to alignment padding.
				if pad := m0 - (n0 + int64(end)); pad >= 8 || !zeros(raw[end:]) {
					continue
				}
				return &nameTables{numSyms: p, names: n0, markers: m0, markerW: w, n: v, raw: raw[:end], mk: mk[:m]}, nil
			}
		}
		errs = append(errs, fmt.Sprintf("the first %d markers (last %#x): no kallsyms_num_syms and kallsyms_names before them agree with them",
			r, last))
	}
	return nil, vmi.Detailed(errs, vmi.ErrNotFound,
		"kallsyms_markers at %#x (%d-byte, a run of %d): no kallsyms_num_syms and kallsyms_names fit them", m0, w, len(run))
}

// Layout names.
const (
	orderOld     = "v2.6.10-v6.1 order (addresses first)"
	orderOldSeqs = "v6.2-v6.3 order (addresses first, seqs_of_names after markers)"
	orderNew     = "v6.4+ order (num_syms first)"
	order70      = "v7.0+ order (place-relative, no relative_base)"
)

// addrTables is one interpretation of the address tables.
type addrTables struct {
	order, encoding string
	is64, placeRel  bool
	addrs           []uint64
	tables          map[string]int64
}

// addresses locates and decodes the address tables for the names found,
// trying every layout the position of the markers allows.
func (f *finder) addresses(tt *tokenTable, nt *nameTables) (*Result, error) {
	al := aligner(tt.table)
	n := nt.n
	mEnd := nt.markers + int64(len(nt.mk)*nt.markerW)
	var tries []func() (*addrTables, error)
	var seqs int64 = -1
	if gap := tt.table - mEnd; gap >= 0 && gap < 8 {
		// Markers right before the token table: v6.4+ (tables after the
		// token index) or up to v6.1 (before num_syms).
		if b, err := f.read(mEnd, gap, "padding after kallsyms_markers"); err == nil && zeros(b) {
			e := tt.index + 512
			tries = append(tries,
				func() (*addrTables, error) { return f.newOrder(al, e, n, 8, true) },
				func() (*addrTables, error) { return f.newOrder(al, e, n, 4, true) },
				func() (*addrTables, error) { return f.newOrder(al, e, n, 8, false) },
				// 32-bit absolute addresses and place-relative offsets
				// sit at the same place. Absolute ones are sorted as
				// they are; place-relative ones are not (an alias at the
				// same address is 4 less than the entry before it), so
				// absolute is tried first.
				func() (*addrTables, error) { return f.newOrder(al, e, n, 4, false) },
				func() (*addrTables, error) { return f.placeRelative(al, e, n) },
			)
		}
	}
	if len(tries) == 0 {
		for _, a := range []int64{4, 8} {
			s := al.up(mEnd, a)
			if d := tt.table - (s + 3*int64(n)); d >= 0 && d < 8 && f.seqsOK(s, n) == nil {
				seqs = s
				break
			}
		}
		if seqs < 0 {
			return nil, errf(vmi.ErrFormat, "kallsyms_markers at %#x end at %#x, %#x bytes before kallsyms_token_table at %#x, and what lies between is not kallsyms_seqs_of_names for %d symbols",
				nt.markers, mEnd, tt.table-mEnd, tt.table, n)
		}
	}
	order := orderOld
	if seqs >= 0 {
		order = orderOldSeqs
	}
	for _, w := range []int{8, 4} {
		tries = append(tries,
			func() (*addrTables, error) { return f.oldOrder(al, nt.numSyms, n, w, true, order) },
			func() (*addrTables, error) { return f.oldOrder(al, nt.numSyms, n, w, false, order) })
	}
	var errs []string
	for _, try := range tries {
		at, err := try()
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		names, types, err := decodeNames(nt.raw, n, &tt.tok)
		if err != nil {
			return nil, fmt.Errorf("kallsyms_names at %#x: %w", nt.names, err)
		}
		res := &Result{
			Symbols:       make([]Symbol, n),
			Is64:          at.is64,
			PlaceRelative: at.placeRel,
			Tables: map[string]int64{
				"kallsyms_num_syms":    nt.numSyms,
				"kallsyms_names":       nt.names,
				"kallsyms_markers":     nt.markers,
				"kallsyms_token_table": tt.table,
				"kallsyms_token_index": tt.index,
			},
		}
		for k, v := range at.tables {
			res.Tables[k] = v
		}
		if seqs >= 0 {
			res.Tables["kallsyms_seqs_of_names"] = seqs
		}
		res.Layout = at.order + ", " + at.encoding
		if nt.markerW == 8 {
			res.Layout += ", pointer-sized num_syms and markers (before v4.20)"
		}
		for i := range res.Symbols {
			res.Symbols[i] = Symbol{Addr: at.addrs[i], Type: types[i], Name: names[i]}
		}
		return res, nil
	}
	return nil, vmi.Detailed(errs, vmi.ErrNotFound, "kallsyms_names at %#x (%d symbols): none of %d address table layouts fits",
		nt.names, n, len(errs))
}

// oldOrder reads the address tables that precede kallsyms_num_syms (up to
// v6.3): kallsyms_offsets then a pointer-sized kallsyms_relative_base, or
// kallsyms_addresses.
func (f *finder) oldOrder(al aligner, numSyms int64, n, ptr int, relative bool, order string) (*addrTables, error) {
	p := int64(ptr)
	if relative {
		rb := numSyms - p
		base, err := f.pointer(rb, ptr)
		if err != nil {
			return nil, err
		}
		off := al.down(rb-4*int64(n), p)
		return f.baseRelative(off, rb, base, n, ptr, order)
	}
	return f.absolute(numSyms-p*int64(n), n, ptr, order)
}

// newOrder reads the address tables that follow kallsyms_token_index
// (v6.4-v6.19): kallsyms_offsets and kallsyms_relative_base or
// kallsyms_addresses, then kallsyms_seqs_of_names.
func (f *finder) newOrder(al aligner, afterIndex int64, n, ptr int, relative bool) (*addrTables, error) {
	p := int64(ptr)
	off := al.up(afterIndex, p)
	if relative {
		rb := al.up(off+4*int64(n), p)
		s := rb + p
		if err := f.seqsOK(s, n); err != nil {
			return nil, err
		}
		base, err := f.pointer(rb, ptr)
		if err != nil {
			return nil, err
		}
		at, err := f.baseRelative(off, rb, base, n, ptr, orderNew)
		if err == nil {
			at.tables["kallsyms_seqs_of_names"] = s
		}
		return at, err
	}
	s := al.up(off+p*int64(n), p)
	if err := f.seqsOK(s, n); err != nil {
		return nil, err
	}
	at, err := f.absolute(off, n, ptr, orderNew)
	if err == nil {
		at.tables["kallsyms_seqs_of_names"] = s
	}
	return at, err
}

// pointer reads a pointer-sized kallsyms_relative_base and checks that it
// is a kernel address.
func (f *finder) pointer(at int64, ptr int) (uint64, error) {
	b, err := f.read(at, int64(ptr), "kallsyms_relative_base")
	if err != nil {
		return 0, err
	}
	v := word(b, ptr)
	if ptr == 8 && !kernelHalf(v) || ptr == 4 && v == 0 {
		return 0, errf(vmi.ErrFormat, "kallsyms_relative_base candidate at %#x: %#x is not a %d-bit kernel address", at, v, 8*ptr)
	}
	return v, nil
}

// baseRelative decodes kallsyms_offsets as kallsyms_sym_address does. Any
// negative offset means CONFIG_KALLSYMS_ABSOLUTE_PERCPU: plain offsets are
// distances above the lowest symbol, far below 2 GiB.
func (f *finder) baseRelative(off, rb int64, base uint64, n, ptr int, order string) (*addrTables, error) {
	b, err := f.read(off, 4*int64(n), "kallsyms_offsets")
	if err != nil {
		return nil, err
	}
	neg := false
	for i := 0; i < n; i++ {
		if int32(binary.LittleEndian.Uint32(b[4*i:])) < 0 {
			neg = true
			break
		}
	}
	mask := ^uint64(0)
	if ptr == 4 {
		mask = 0xffff_ffff
	}
	addrs := make([]uint64, n)
	for i := range addrs {
		o := int32(binary.LittleEndian.Uint32(b[4*i:]))
		switch {
		case !neg:
			addrs[i] = (base + uint64(uint32(o))) & mask
		case o >= 0:
			addrs[i] = uint64(o)
		default:
			addrs[i] = (base - 1 - uint64(int64(o))) & mask
		}
	}
	enc := "base-relative"
	if neg {
		enc = "base-relative with absolute per-cpu symbols"
	}
	if err := sorted(addrs, "kallsyms_offsets", off); err != nil {
		return nil, err
	}
	return &addrTables{order: order, encoding: enc, is64: ptr == 8, addrs: addrs,
		tables: map[string]int64{"kallsyms_offsets": off, "kallsyms_relative_base": rb}}, nil
}

// absolute reads kallsyms_addresses (no CONFIG_KALLSYMS_BASE_RELATIVE).
func (f *finder) absolute(at int64, n, ptr int, order string) (*addrTables, error) {
	b, err := f.read(at, int64(ptr*n), "kallsyms_addresses")
	if err != nil {
		return nil, err
	}
	addrs := make([]uint64, n)
	for i := range addrs {
		addrs[i] = word(b[ptr*i:], ptr)
	}
	if err := sorted(addrs, "kallsyms_addresses", at); err != nil {
		return nil, err
	}
	if last := addrs[n-1]; ptr == 8 && !kernelHalf(last) || last == 0 {
		return nil, errf(vmi.ErrFormat, "kallsyms_addresses candidate at %#x: last address %#x is not a %d-bit kernel address", at, last, 8*ptr)
	}
	return &addrTables{order: order, encoding: "absolute addresses", is64: ptr == 8, addrs: addrs,
		tables: map[string]int64{"kallsyms_addresses": at}}, nil
}

// placeRelative reads v7.0+ kallsyms_offsets: each entry is the symbol's
// distance from the entry itself, so only the image's own address is
// missing (Options.ImageVA).
func (f *finder) placeRelative(al aligner, afterIndex int64, n int) (*addrTables, error) {
	off := al.up(afterIndex, 4)
	s := off + 4*int64(n)
	if err := f.seqsOK(s, n); err != nil {
		return nil, err
	}
	b, err := f.read(off, 4*int64(n), "kallsyms_offsets")
	if err != nil {
		return nil, err
	}
	addrs := make([]uint64, n)
	for i := range addrs {
		o := int64(int32(binary.LittleEndian.Uint32(b[4*i:])))
		addrs[i] = f.opt.ImageVA + uint64(off+4*int64(i)+o)
	}
	if err := sorted(addrs, "kallsyms_offsets (place-relative)", off); err != nil {
		return nil, err
	}
	return &addrTables{order: order70, encoding: "place-relative", placeRel: true, addrs: addrs,
		tables: map[string]int64{"kallsyms_offsets": off, "kallsyms_seqs_of_names": s}}, nil
}

// sorted checks that addresses do not decrease: scripts/kallsyms sorts the
// table by address and the kernel's lookups binary-search it.
func sorted(addrs []uint64, what string, at int64) error {
	for i := 1; i < len(addrs); i++ {
		if addrs[i] < addrs[i-1] {
			return errf(vmi.ErrFormat, "%s candidate at %#x: address %d (%#x) is below its predecessor (%#x)",
				what, at, i, addrs[i], addrs[i-1])
		}
	}
	return nil
}

// seqsOK checks kallsyms_seqs_of_names at s: n 3-byte big-endian symbol
// indexes, each once.
func (f *finder) seqsOK(s int64, n int) error {
	b, err := f.read(s, 3*int64(n), "kallsyms_seqs_of_names")
	if err != nil {
		return err
	}
	seen := make([]uint64, (n+63)/64)
	for i := 0; i < n; i++ {
		v := int(b[3*i])<<16 | int(b[3*i+1])<<8 | int(b[3*i+2])
		if v >= n || seen[v/64]&(1<<(v%64)) != 0 {
			return errf(vmi.ErrFormat, "kallsyms_seqs_of_names candidate at %#x: entry %d (%d) is not a new symbol index below %d", s, i, v, n)
		}
		seen[v/64] |= 1 << (v % 64)
	}
	return nil
}
