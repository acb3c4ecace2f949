package btfsrc

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"

	"github.com/xascript/xascript/internal/stablehash"
	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi"
)

// The persisted index saves the two costs a fresh Types pays on its first
// question: the pass over every type to find its offset (~1.5 ms for 4 MB)
// and a search of the string table per type name (~1 ms each). It is
// written once per source file (internal/unpack.Derived) and used straight
// from its mapping. Layout, little-endian:
//
//	[0:8]   magic "XBTFIX01"
//	[8:12]  length of the BTF type section it describes
//	[12:16] length of the BTF string section
//	[16:20] number of types (n)
//	[20:24] number of name slots (a power of two)
//	[24:]   n uint32 type offsets (id 1 first), then the slots: uint64 of
//	        the high 32 bits of the name's hash and the type id (0: empty)
//
// Only the kinds lookup asks for by name are in the name table.
const (
	indexMagic  = "XBTFIX01"
	indexHeader = 24
	indexTag    = "btfsrc-index-v1"
)

func namedKind(k int) bool {
	switch k {
	case kindStruct, kindUnion, kindTypedef, kindInt, kindFloat, kindEnum, kindEnum64:
		return true
	}
	return false
}

// writeIndex serialises b's offsets and a name hash table to w.
func (b *blob) writeIndex(w io.Writer) error {
	if err := b.index(); err != nil {
		return err
	}
	n := len(b.offsets)
	nslots := max(16, 1<<bits.Len(uint(2*n)))
	raw := make([]byte, indexHeader+4*n+8*nslots)
	copy(raw, indexMagic)
	binary.LittleEndian.PutUint32(raw[8:], uint32(len(b.types)))
	binary.LittleEndian.PutUint32(raw[12:], uint32(len(b.strings)))
	binary.LittleEndian.PutUint32(raw[16:], uint32(n))
	binary.LittleEndian.PutUint32(raw[20:], uint32(nslots))
	slots := raw[indexHeader+4*n:]
	mask := uint64(nslots - 1)
	for i, off := range b.offsets {
		binary.LittleEndian.PutUint32(raw[indexHeader+4*i:], off)
		kind := int(b.bo.Uint32(b.types[off+4:])>>24) & 0x1f
		if b.nameOffs[i] == 0 || !namedKind(kind) {
			continue
		}
		h := hashName(b.nameBytes(b.nameOffs[i]))
		for j := h & mask; ; j = (j + 1) & mask {
			if binary.LittleEndian.Uint64(slots[8*j:]) == 0 {
				binary.LittleEndian.PutUint64(slots[8*j:], h>>32<<32|uint64(i+1))
				break
			}
		}
	}
	_, err := w.Write(raw)
	return err
}

// useIndex adopts a persisted index after checking it fits b.
func (b *blob) useIndex(raw []byte) error {
	if len(raw) < indexHeader || string(raw[:8]) != indexMagic {
		return fmt.Errorf("BTF index: bad header: %w", vmi.ErrFormat)
	}
	n := uint64(binary.LittleEndian.Uint32(raw[16:]))
	nslots := uint64(binary.LittleEndian.Uint32(raw[20:]))
	if binary.LittleEndian.Uint32(raw[8:]) != uint32(len(b.types)) ||
		binary.LittleEndian.Uint32(raw[12:]) != uint32(len(b.strings)) ||
		nslots == 0 || nslots&(nslots-1) != 0 || uint64(len(raw)) != indexHeader+4*n+8*nslots {
		return fmt.Errorf("BTF index does not match the BTF: %w", vmi.ErrFormat)
	}
	b.indexOnce.Do(func() {
		b.pOffsets = raw[indexHeader : indexHeader+4*n]
		b.pSlots = raw[indexHeader+4*n:]
		b.pMask = nslots - 1
		b.nTypes = int(n)
	})
	return nil
}

// lookupIndexed finds named types through the persisted name table.
func (b *blob) lookupIndexed(name string, want func(kind int) bool) []uint32 {
	h := hashName([]byte(name))
	var ids []uint32
	for j, k := h&b.pMask, uint64(0); k <= b.pMask; j, k = (j+1)&b.pMask, k+1 {
		s := binary.LittleEndian.Uint64(b.pSlots[8*j:])
		if s == 0 {
			break
		}
		if s>>32 != h>>32 {
			continue
		}
		id := uint32(s)
		rt, err := b.typ(id)
		if err == nil && b.nameIs(rt.nameOff, name) && want(rt.kind()) {
			ids = append(ids, id)
		}
	}
	return ids
}

func (b *blob) nameBytes(off uint32) []byte {
	if uint64(off) >= uint64(len(b.strings)) {
		return nil
	}
	s := b.strings[off:]
	if i := bytes.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return s
}

func hashName(b []byte) uint64 { return stablehash.Bytes(b) }

// attachIndex maps (building on first use) the persisted index for the
// file at path. Failure is not an error: lookups then index in memory.
func (t *Types) attachIndex(path string, opt unpack.Options) {
	if opt.NoCache {
		return
	}
	f, err := unpack.Derived(path, indexTag, opt, t.b.writeIndex)
	if err != nil {
		return
	}
	if err := t.b.useIndex(f.Data); err != nil {
		f.Close()
		return
	}
	t.idxFile = f
}
