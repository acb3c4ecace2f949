package dwarfsrc

import (
	"encoding/binary"
	"fmt"

	"github.com/xascript/xascript/vmi"
)

// Forms whose values point outside the unit they appear in (DWARF 5,
// section 7.5.5, plus GNU's alternate-file reference) and DW_FORM_indirect,
// which could hide one. A unit using any of them cannot be read through a
// view of that unit alone.
var crossingForms = map[uint64]bool{
	0x10:   true, // DW_FORM_ref_addr
	0x16:   true, // DW_FORM_indirect
	0x1c:   true, // DW_FORM_ref_sup4
	0x20:   true, // DW_FORM_ref_sig8
	0x24:   true, // DW_FORM_ref_sup8
	0x1f20: true, // DW_FORM_GNU_ref_alt
}

// unitBounds reads the header of the unit at off in info and returns the
// offset just past the unit, and whether its abbreviations use a form that
// refers outside the unit.
func unitBounds(info, abbrev []byte, bo binary.ByteOrder, off uint64) (end uint64, crosses bool, err error) {
	end, abbrevOff, err := unitHeader(info, bo, off)
	if err != nil {
		return 0, false, err
	}
	crosses, err = abbrevCrosses(abbrev, abbrevOff)
	if err != nil {
		return 0, false, fmt.Errorf("DWARF unit at %#x: %w", off, err)
	}
	return end, crosses, nil
}

// unitHeader parses the header of the unit at off (DWARF 5 section 7.5.1;
// versions 2 to 4 put the abbreviation offset before the address size and
// have no unit type).
func unitHeader(info []byte, bo binary.ByteOrder, off uint64) (end, abbrevOff uint64, err error) {
	bad := func(what string) (uint64, uint64, error) {
		return 0, 0, fmt.Errorf("DWARF unit at %#x: %s: %w", off, what, vmi.ErrFormat)
	}
	n := uint64(len(info))
	if off >= n || n-off < 11 {
		return bad("truncated header")
	}
	length, p, dwarf64 := uint64(bo.Uint32(info[off:])), off+4, false
	if length == 0xffffffff {
		if n-off < 23 {
			return bad("truncated header")
		}
		length, p, dwarf64 = bo.Uint64(info[off+4:]), off+12, true
	} else if length >= 0xfffffff0 {
		return bad("reserved unit length")
	}
	if length > n-p {
		return bad(fmt.Sprintf("length %#x runs past the end of .debug_info", length))
	}
	end = p + length
	version := bo.Uint16(info[p:])
	p += 2
	switch {
	case version >= 2 && version <= 4:
	case version == 5:
		p += 2 // unit type, address size
	default:
		return bad(fmt.Sprintf("version %d", version))
	}
	if dwarf64 {
		if end < p+8 {
			return bad("truncated header")
		}
		abbrevOff = bo.Uint64(info[p:])
	} else {
		if end < p+4 {
			return bad("truncated header")
		}
		abbrevOff = uint64(bo.Uint32(info[p:]))
	}
	return end, abbrevOff, nil
}

// abbrevCrosses scans the abbreviation table at off for crossing forms.
func abbrevCrosses(abbrev []byte, off uint64) (bool, error) {
	if off >= uint64(len(abbrev)) {
		return false, fmt.Errorf("abbreviation table offset %#x beyond .debug_abbrev: %w", off, vmi.ErrFormat)
	}
	b := abbrev[off:]
	uleb := func() (uint64, bool) {
		var v uint64
		for shift := uint(0); len(b) > 0; shift += 7 {
			c := b[0]
			b = b[1:]
			if shift < 64 {
				v |= uint64(c&0x7f) << shift
			}
			if c&0x80 == 0 {
				return v, true
			}
		}
		return 0, false
	}
	truncated := fmt.Errorf("abbreviation table at %#x is truncated: %w", off, vmi.ErrFormat)
	// Each abbreviation takes at least 4 bytes, so the loop is bounded by
	// the section length.
	for {
		code, ok := uleb()
		if !ok {
			return false, truncated
		}
		if code == 0 {
			return false, nil
		}
		if _, ok := uleb(); !ok || len(b) == 0 { // tag, then the children flag
			return false, truncated
		}
		b = b[1:]
		for {
			attr, ok1 := uleb()
			form, ok2 := uleb()
			if !ok1 || !ok2 {
				return false, truncated
			}
			if attr == 0 && form == 0 {
				break
			}
			if crossingForms[form] {
				return true, nil
			}
			if form == 0x21 { // DW_FORM_implicit_const carries its value here
				if _, ok := uleb(); !ok {
					return false, truncated
				}
			}
		}
	}
}

// unitOffsets lists the start of every unit in info.
func unitOffsets(info []byte, bo binary.ByteOrder) ([]uint64, error) {
	var offs []uint64
	for off := uint64(0); off < uint64(len(info)); {
		end, _, err := unitHeader(info, bo, off)
		if err != nil {
			return nil, err
		}
		offs = append(offs, off)
		off = end
	}
	return offs, nil
}
