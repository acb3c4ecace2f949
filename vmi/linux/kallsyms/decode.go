package kallsyms

import (
	"encoding/binary"
	"fmt"

	"github.com/xascript/xascript/vmi"
)

// tokenTable is a located kallsyms_token_table and kallsyms_token_index.
type tokenTable struct {
	table, index int64 // offsets in the image
	end          int64 // just past the last token's NUL
	tok          [256][]byte
}

// tokenByte reports whether c may appear in a token: tokens expand to
// symbol names and type letters, which are printable ASCII without spaces
// (a /proc/kallsyms line is split on spaces).
func tokenByte(c byte) bool { return c > ' ' && c < 0x7f }

// tokenTable reads the token table whose "0" token is at pos. Token 0's start
// cannot be found by walking back (the table before it may end in non-NUL
// bytes), so the token index decides it: its entries 1-255 must match the
// tokens' positions exactly, and entry 1 then gives token 0's start.
func (f *finder) tokenTable(pos int64) (*tokenTable, error) {
	const back = '0' * (ksymNameLen + 1)
	const fwd = (256-'0')*(ksymNameLen+1) + 8 + 512
	lo := max(0, pos-back)
	hi := min(f.size, pos+fwd)
	b, err := f.read(lo, hi-lo, "kallsyms_token_table candidate")
	if err != nil {
		return nil, err
	}
	p := int(pos - lo)
	var start [256]int // token starts in b; start[0] unknown for now
	// Tokens '0'..255 forward.
	i := p
	for k := '0'; k < 256; k++ {
		start[k] = i
		j := i
		for j < len(b) && b[j] != 0 {
			if !tokenByte(b[j]) || j-i >= ksymNameLen {
				return nil, fmt.Errorf("kallsyms_token_table candidate at %#x: token %d at %#x is not a token", pos, k, lo+int64(i))
			}
			j++
		}
		if j == i || j >= len(b) {
			return nil, fmt.Errorf("kallsyms_token_table candidate at %#x: token %d at %#x is empty or unterminated", pos, k, lo+int64(i))
		}
		i = j + 1
	}
	end := i
	// Tokens 1..'0'-1 backward: each is bounded by NULs on both sides.
	j := p - 1 // the NUL that ends token '0'-1
	for k := '0' - 1; k >= 1; k-- {
		if j < 1 || b[j] != 0 {
			return nil, fmt.Errorf("kallsyms_token_table candidate at %#x: no NUL before token %d", pos, k+1)
		}
		s := j
		for s > 0 && b[s-1] != 0 {
			if !tokenByte(b[s-1]) || j-s >= ksymNameLen {
				return nil, fmt.Errorf("kallsyms_token_table candidate at %#x: token %d before %#x is not a token", pos, k, lo+int64(j))
			}
			s--
		}
		if s == j {
			return nil, fmt.Errorf("kallsyms_token_table candidate at %#x: token %d is empty", pos, k)
		}
		start[k] = s
		j = s - 1
	}
	if j < 1 || b[j] != 0 {
		return nil, fmt.Errorf("kallsyms_token_table candidate at %#x: no NUL after token 0", pos)
	}
	// kallsyms_token_index follows the table at 2-, 4- or 8-byte alignment
	// (in the guest's terms: image offset 0 need not be aligned).
	for idx := end; idx < end+8 && idx+512 <= len(b); idx++ {
		ix := b[idx : idx+512]
		if binary.LittleEndian.Uint16(ix) != 0 {
			continue
		}
		one := int(binary.LittleEndian.Uint16(ix[2:]))
		t := start[1] - one // token 0's start
		if one < 2 || t < 0 || t > j-1 {
			continue
		}
		ok := true
		for k := 2; k < 256; k++ {
			if int(binary.LittleEndian.Uint16(ix[2*k:]))-one != start[k]-start[1] {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		for q := t; q < j; q++ {
			if !tokenByte(b[q]) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		start[0] = t
		tt := &tokenTable{table: lo + int64(t), index: lo + int64(idx), end: lo + int64(end)}
		for k := 0; k < 256; k++ {
			e := start[k]
			for b[e] != 0 {
				e++
			}
			tt.tok[k] = b[start[k]:e:e]
		}
		return tt, nil
	}
	return nil, fmt.Errorf("kallsyms_token_table candidate at %#x (table ends at %#x): no kallsyms_token_index after it matches its tokens",
		pos, lo+int64(end))
}

// nameLen reads the length prefix of the name at off: one byte, or since
// v6.1 ("kallsyms: support "big" kernel symbols") two when the first has
// bit 7 set. It returns the token count and the prefix size, or 0, 0 when
// names is too short.
func nameLen(names []byte, off int) (int, int) {
	if off >= len(names) {
		return 0, 0
	}
	l := int(names[off])
	if l&0x80 == 0 {
		return l, 1
	}
	if off+1 >= len(names) {
		return 0, 0
	}
	return l&0x7f | int(names[off+1])<<7, 2
}

// walkNames follows n length prefixes from the start of names, checking
// every 256th name against markers (nil: unchecked). It returns the offset
// just past the last name.
func walkNames(names []byte, n int, markers []uint64) (int, error) {
	off := 0
	for i := 0; i < n; i++ {
		if i&255 == 0 && markers != nil {
			if k := i >> 8; k >= len(markers) || markers[k] != uint64(off) {
				return 0, errf(vmi.ErrFormat, "name %d at offset %#x disagrees with kallsyms_markers", i, off)
			}
		}
		l, pre := nameLen(names, off)
		if pre == 0 || l == 0 || l > ksymNameLen || off+pre+l > len(names) {
			return 0, errf(vmi.ErrFormat, "name %d at offset %#x: bad length", i, off)
		}
		off += pre + l
	}
	return off, nil
}

// decodeNames expands n names with the tokens. The strings share one
// backing string; the first expanded byte of each is its type. It fails
// on a name that expands beyond KSYM_NAME_LEN or to nothing but a type.
func decodeNames(names []byte, n int, tok *[256][]byte) ([]string, []byte, error) {
	if n < 0 || n > defaultMaxSymbols || n > len(names)/2 {
		return nil, nil, errf(vmi.ErrLimit, "%d names in %d bytes", n, len(names))
	}
	// Each name takes at least 2 bytes, so n is bounded by the data; the
	// expansion is bounded per name, and its total by maxNamesBytes.
	buf := make([]byte, 0, min(len(names)*4, maxNamesBytes))
	starts := make([]uint32, n+1) // of each expanded name, type letter included
	off := 0
	for i := 0; i < n; i++ {
		l, pre := nameLen(names, off)
		// Every token expands to a byte at least, so a compressed name
		// longer than KSYM_NAME_LEN is no name (walkNames says the same).
		if pre == 0 || l == 0 || l > ksymNameLen || off+pre+l > len(names) {
			return nil, nil, errf(vmi.ErrFormat, "name %d at offset %#x: bad length", i, off)
		}
		start := len(buf)
		for _, c := range names[off+pre : off+pre+l] {
			buf = append(buf, tok[c]...)
		}
		if w := len(buf) - start; w > ksymNameLen {
			return nil, nil, errf(vmi.ErrLimit, "name %d at offset %#x expands beyond %d bytes", i, off, ksymNameLen)
		} else if w < 2 {
			return nil, nil, errf(vmi.ErrFormat, "name %d at offset %#x is empty", i, off)
		}
		if len(buf) > maxNamesBytes {
			return nil, nil, errf(vmi.ErrLimit, "names expand beyond %d bytes", maxNamesBytes)
		}
		off += pre + l
		starts[i+1] = uint32(len(buf))
	}
	all := string(buf)
	out := make([]string, n)
	types := make([]byte, n)
	for i := range out {
		types[i] = all[starts[i]]
		out[i] = all[starts[i]+1 : starts[i+1]]
	}
	return out, types, nil
}
