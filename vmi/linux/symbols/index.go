package symbols

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/bits"

	"github.com/xascript/xascript/internal/stablehash"
	"github.com/xascript/xascript/vmi"
)

// The hash index is an open-addressing table of 8-byte slots, each the high
// 32 bits of the key's hash and the offset+1 of the line (0: empty). Its
// byte layout is the same in memory and in the cache file, so a cached index
// is used straight from its mapping:
//
//	[0:8]   magic "XSYMIX01"
//	[8:16]  length of the symbol data it indexes
//	[16:20] number of slots (a power of two)
//	[20:24] number of symbol lines indexed
//	[24:28] flags (flagModules: some lines name a module)
//	[28:32] number of malformed lines skipped
//	[32:]   slots, little-endian uint64
const (
	indexMagic  = "XSYMIX01"
	indexHeader = 32
	flagModules = 1
)

type index struct {
	raw     []byte
	mask    uint64
	count   int
	flags   uint32
	skipped int
}

func hashKey(b []byte) uint64 { return stablehash.Bytes(b) }

// buildIndex indexes every well-formed line of data and writes the index
// to w.
func buildIndex(data []byte, w io.Writer) error {
	if uint64(len(data)) >= math.MaxUint32 {
		return fmt.Errorf("symbol file of %d bytes is too large to index: %w", len(data), vmi.ErrUnsupported)
	}
	lines := bytes.Count(data, []byte{'\n'}) + 1
	nslots := max(16, 1<<bits.Len(uint(2*lines)))
	raw := make([]byte, indexHeader+8*nslots)
	mask := uint64(nslots - 1)
	var count, skipped int
	var flags uint32
	for off := 0; off < len(data); {
		b, next := lineAt(data, off)
		l, ok := parseLine(b)
		if !ok {
			if len(bytes.TrimSpace(b)) > 0 {
				skipped++
			}
			off = next
			continue
		}
		if l.module != nil {
			flags |= flagModules
		}
		h := hashKey(l.key)
		slot := uint64(h>>32)<<32 | uint64(off+1)
		for i := h & mask; ; i = (i + 1) & mask {
			p := raw[indexHeader+8*i:]
			if binary.LittleEndian.Uint64(p) == 0 {
				binary.LittleEndian.PutUint64(p, slot)
				break
			}
		}
		count++
		off = next
	}
	copy(raw, indexMagic)
	binary.LittleEndian.PutUint64(raw[8:], uint64(len(data)))
	binary.LittleEndian.PutUint32(raw[16:], uint32(nslots))
	binary.LittleEndian.PutUint32(raw[20:], uint32(count))
	binary.LittleEndian.PutUint32(raw[24:], flags)
	binary.LittleEndian.PutUint32(raw[28:], uint32(skipped))
	_, err := w.Write(raw)
	return err
}

// openIndex checks an index (built now or read from the cache) against the
// data it must describe.
func openIndex(raw []byte, dataLen int) (*index, error) {
	if len(raw) < indexHeader || string(raw[:8]) != indexMagic {
		return nil, fmt.Errorf("symbol index: bad header: %w", vmi.ErrFormat)
	}
	if binary.LittleEndian.Uint64(raw[8:]) != uint64(dataLen) {
		return nil, fmt.Errorf("symbol index: built for %d bytes of data, have %d: %w",
			binary.LittleEndian.Uint64(raw[8:]), dataLen, vmi.ErrFormat)
	}
	n := uint64(binary.LittleEndian.Uint32(raw[16:]))
	if n == 0 || n&(n-1) != 0 || uint64(len(raw)) != indexHeader+8*n {
		return nil, fmt.Errorf("symbol index: bad slot count %d: %w", n, vmi.ErrFormat)
	}
	return &index{
		raw:     raw,
		mask:    n - 1,
		count:   int(binary.LittleEndian.Uint32(raw[20:])),
		flags:   binary.LittleEndian.Uint32(raw[24:]),
		skipped: int(binary.LittleEndian.Uint32(raw[28:])),
	}, nil
}

// each calls fn with every line whose key is key, in no particular order,
// until fn returns false.
func (x *index) each(data []byte, key []byte, fn func(off int, l line) bool) {
	h := hashKey(key)
	tag := h >> 32
	for i, n := h&x.mask, uint64(0); n <= x.mask; i, n = (i+1)&x.mask, n+1 {
		s := binary.LittleEndian.Uint64(x.raw[indexHeader+8*i:])
		if s == 0 {
			return
		}
		if s>>32 != tag {
			continue
		}
		off := int(uint32(s)) - 1
		if off < 0 || off >= len(data) {
			continue // a damaged cache entry; the data is the truth
		}
		b, _ := lineAt(data, off)
		if l, ok := parseLine(b); ok && bytes.Equal(l.key, key) {
			if !fn(off, l) {
				return
			}
		}
	}
}
