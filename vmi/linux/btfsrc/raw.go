package btfsrc

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/xascript/xascript/vmi"
)

// BTF kinds (include/uapi/linux/btf.h).
const (
	kindUnknown = iota
	kindInt
	kindPtr
	kindArray
	kindStruct
	kindUnion
	kindEnum
	kindFwd
	kindTypedef
	kindVolatile
	kindConst
	kindRestrict
	kindFunc
	kindFuncProto
	kindVar
	kindDatasec
	kindFloat
	kindDeclTag
	kindTypeTag
	kindEnum64
	kindMax = kindEnum64
)

const (
	btfMagic      = 0xeb9f
	btfHeaderLen  = 24 // the fixed part of struct btf_header
	typeHeaderLen = 12 // struct btf_type
	maxDepth      = 64 // bound on typedef chains and nesting walks
)

// rawType is a decoded struct btf_type header plus where its trailing data is.
type rawType struct {
	nameOff uint32
	info    uint32
	sizeTyp uint32 // size or type, depending on kind
	data    []byte // the kind-specific data that follows the header
}

func (t rawType) kind() int         { return int(t.info>>24) & 0x1f }
func (t rawType) vlen() int         { return int(t.info & 0xffff) }
func (t rawType) kindFlag() bool    { return t.info>>31 != 0 }
func (t rawType) isComposite() bool { k := t.kind(); return k == kindStruct || k == kindUnion }

// blob is a parsed-in-place BTF blob.
type blob struct {
	bo      binary.ByteOrder
	types   []byte // the type section
	strings []byte // the string section

	// The id -> offset index, built in memory (offsets, nameOffs) or
	// mapped from the persisted index (pOffsets, pSlots; see index.go).
	indexOnce sync.Once
	offsets   []uint32 // offsets[id-1] is type id's offset in types
	nameOffs  []uint32 // nameOffs[id-1] is type id's name offset, for linear name scans
	indexErr  error
	nTypes    int
	pOffsets  []byte
	pSlots    []byte
	pMask     uint64
}

func parseBlob(b []byte) (*blob, error) {
	if len(b) < btfHeaderLen {
		return nil, fmt.Errorf("BTF blob of %d bytes is shorter than its header: %w", len(b), vmi.ErrFormat)
	}
	var bo binary.ByteOrder
	switch {
	case binary.LittleEndian.Uint16(b) == btfMagic:
		bo = binary.LittleEndian
	case binary.BigEndian.Uint16(b) == btfMagic:
		bo = binary.BigEndian
	default:
		return nil, fmt.Errorf("no BTF magic (found % x): %w", b[:2], vmi.ErrFormat)
	}
	if b[2] != 1 {
		return nil, fmt.Errorf("BTF version %d, want 1: %w", b[2], vmi.ErrUnsupported)
	}
	hdrLen := uint64(bo.Uint32(b[4:]))
	typeOff, typeLen := uint64(bo.Uint32(b[8:])), uint64(bo.Uint32(b[12:]))
	strOff, strLen := uint64(bo.Uint32(b[16:])), uint64(bo.Uint32(b[20:]))
	if hdrLen < btfHeaderLen || hdrLen > uint64(len(b)) {
		return nil, fmt.Errorf("BTF header length %d out of bounds: %w", hdrLen, vmi.ErrFormat)
	}
	body := b[hdrLen:]
	if typeOff+typeLen > uint64(len(body)) || strOff+strLen > uint64(len(body)) {
		return nil, fmt.Errorf("BTF sections (types %d+%d, strings %d+%d) exceed the %d-byte blob: %w",
			typeOff, typeLen, strOff, strLen, len(body), vmi.ErrFormat)
	}
	bl := &blob{bo: bo, types: body[typeOff : typeOff+typeLen], strings: body[strOff : strOff+strLen]}
	if len(bl.strings) == 0 || bl.strings[0] != 0 || bl.strings[len(bl.strings)-1] != 0 {
		return nil, fmt.Errorf("BTF string table is not NUL-delimited: %w", vmi.ErrFormat)
	}
	return bl, nil
}

// dataLen is the size of the kind-specific data after a type header.
func dataLen(kind, vlen int) (int, bool) {
	switch kind {
	case kindInt, kindVar, kindDeclTag:
		return 4, true
	case kindArray:
		return 12, true
	case kindStruct, kindUnion, kindDatasec, kindEnum64:
		return 12 * vlen, true
	case kindEnum, kindFuncProto:
		return 8 * vlen, true
	case kindPtr, kindFwd, kindTypedef, kindVolatile, kindConst, kindRestrict,
		kindFunc, kindFloat, kindTypeTag:
		return 0, true
	}
	return 0, false
}

// index builds the id -> offset table in one pass over the type section.
func (b *blob) index() error {
	b.indexOnce.Do(func() {
		// ~12 bytes per type at the least; a cheap guess saves regrowth.
		offs := make([]uint32, 0, len(b.types)/24)
		names := make([]uint32, 0, len(b.types)/24)
		for off := 0; off < len(b.types); {
			if len(b.types)-off < typeHeaderLen {
				b.indexErr = fmt.Errorf("BTF type %d at %#x: truncated header: %w", len(offs)+1, off, vmi.ErrFormat)
				return
			}
			info := b.bo.Uint32(b.types[off+4:])
			kind, vlen := int(info>>24)&0x1f, int(info&0xffff)
			n, ok := dataLen(kind, vlen)
			if !ok {
				b.indexErr = fmt.Errorf("BTF type %d at %#x: unknown kind %d: %w", len(offs)+1, off, kind, vmi.ErrUnsupported)
				return
			}
			if len(b.types)-off-typeHeaderLen < n {
				b.indexErr = fmt.Errorf("BTF type %d at %#x: truncated data: %w", len(offs)+1, off, vmi.ErrFormat)
				return
			}
			offs = append(offs, uint32(off))
			names = append(names, b.bo.Uint32(b.types[off:]))
			off += typeHeaderLen + n
		}
		b.offsets, b.nameOffs, b.nTypes = offs, names, len(offs)
	})
	return b.indexErr
}

// numTypes is the number of types, not counting void (id 0).
func (b *blob) numTypes() int { return b.nTypes }

// typ returns type id. Callers have built the index.
func (b *blob) typ(id uint32) (rawType, error) {
	if id == 0 || int64(id) > int64(b.nTypes) {
		return rawType{}, fmt.Errorf("BTF type id %d out of range [1, %d]: %w", id, b.nTypes, vmi.ErrFormat)
	}
	var off int
	if b.pOffsets != nil {
		// From a cache file: checked here, not trusted.
		off = int(binary.LittleEndian.Uint32(b.pOffsets[4*(id-1):]))
		if off > len(b.types)-typeHeaderLen {
			return rawType{}, fmt.Errorf("BTF index: type %d offset %#x out of range: %w", id, off, vmi.ErrFormat)
		}
	} else {
		off = int(b.offsets[id-1])
	}
	t := rawType{
		nameOff: b.bo.Uint32(b.types[off:]),
		info:    b.bo.Uint32(b.types[off+4:]),
		sizeTyp: b.bo.Uint32(b.types[off+8:]),
	}
	n, ok := dataLen(t.kind(), t.vlen())
	if !ok || n > len(b.types)-off-typeHeaderLen {
		return rawType{}, fmt.Errorf("BTF type %d at %#x: bad kind or truncated: %w", id, off, vmi.ErrFormat)
	}
	t.data = b.types[off+typeHeaderLen : off+typeHeaderLen+n]
	return t, nil
}

// name returns the string at off; out-of-range offsets give "".
func (b *blob) name(off uint32) string {
	if uint64(off) >= uint64(len(b.strings)) {
		return ""
	}
	s := b.strings[off:]
	if i := bytes.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return string(s)
}

// nameIs compares the string at off with s without allocating.
func (b *blob) nameIs(off uint32, s string) bool {
	if uint64(off)+uint64(len(s)) >= uint64(len(b.strings)) {
		return false
	}
	return string(b.strings[off:off+uint32(len(s))]) == s && b.strings[off+uint32(len(s))] == 0
}

// anonymous reports whether the name at off is empty.
func (b *blob) anonymous(off uint32) bool {
	return off == 0 || (uint64(off) < uint64(len(b.strings)) && b.strings[off] == 0)
}

// nameOffsets lists the string-table offsets holding exactly s. pahole
// deduplicates strings, so there is normally one.
func (b *blob) nameOffsets(s string) []uint32 {
	if s == "" || strings.IndexByte(s, 0) >= 0 {
		return nil
	}
	// Search for "name\0" and check the byte before: a pattern that starts
	// with NUL would stop at every string boundary.
	pat := make([]byte, 0, len(s)+1)
	pat = append(append(pat, s...), 0)
	var offs []uint32
	for from := 1; from < len(b.strings); {
		i := bytes.Index(b.strings[from:], pat)
		if i < 0 {
			break
		}
		at := from + i
		if b.strings[at-1] == 0 {
			offs = append(offs, uint32(at))
			from = at + len(pat)
		} else {
			from = at + 1
		}
	}
	return offs
}

// findByName returns the ids of types named name whose kind passes want, in
// id order. Callers have built the index.
func (b *blob) findByName(name string, want func(kind int) bool) []uint32 {
	if b.pSlots != nil {
		ids := b.lookupIndexed(name, want)
		slices.Sort(ids)
		return ids
	}
	var ids []uint32
	for _, o := range b.nameOffsets(name) {
		for i, n := range b.nameOffs {
			if n != o {
				continue
			}
			kind := int(b.bo.Uint32(b.types[b.offsets[i]+4:])>>24) & 0x1f
			if want(kind) {
				ids = append(ids, uint32(i+1))
			}
		}
	}
	slices.Sort(ids)
	return ids
}

// member is one decoded struct/union member.
type member struct {
	nameOff   uint32
	typ       uint32
	bitOffset uint32
	bitSize   uint32 // 0 unless a bitfield is encoded in the member (kind_flag)
}

func (b *blob) member(t rawType, i int) member {
	d := t.data[12*i:]
	m := member{nameOff: b.bo.Uint32(d), typ: b.bo.Uint32(d[4:]), bitOffset: b.bo.Uint32(d[8:])}
	if t.kindFlag() {
		m.bitSize = m.bitOffset >> 24
		m.bitOffset &= 0xffffff
	}
	return m
}
