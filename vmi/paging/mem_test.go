package paging

import (
	"encoding/binary"
	"fmt"

	"github.com/xascript/xascript/vmi"
)

// flatMem is guest-physical memory starting at 0; reads beyond its end are
// holes.
type flatMem struct {
	b     []byte
	reads int // ReadPhys calls, to check how Read uses the reader
}

func (m *flatMem) ReadPhys(buf []byte, pa uint64) error {
	m.reads++
	if pa > uint64(len(m.b)) || uint64(len(buf)) > uint64(len(m.b))-pa {
		return &vmi.PhysError{Addr: pa, Err: vmi.ErrNotPresent}
	}
	copy(buf, m.b[pa:])
	return nil
}

func (m *flatMem) put(pa uint64, size int, v uint64) {
	if size == 4 {
		binary.LittleEndian.PutUint32(m.b[pa:], uint32(v))
		return
	}
	binary.LittleEndian.PutUint64(m.b[pa:], v)
}

func (m *flatMem) get(pa uint64, size int) uint64 {
	if size == 4 {
		return uint64(binary.LittleEndian.Uint32(m.b[pa:]))
	}
	return binary.LittleEndian.Uint64(m.b[pa:])
}

// builder lays out page tables in a flatMem, one page per table, handing
// out pages from the bottom up. It is deliberately its own code, not the
// package's level tables.
type builder struct {
	mem  *flatMem
	mode Mode
	next uint64 // next free page
	root uint64 // CR3 value
}

func newBuilder(mode Mode, size int) *builder {
	b := &builder{mem: &flatMem{b: make([]byte, size)}, mode: mode, next: 0x1000}
	b.root = b.alloc()
	if mode == PAE {
		// A PDPT need only be 32-byte aligned: put it mid-page to check
		// that CR3 bits 11:5 are honoured.
		b.root += 0x7e0
	}
	return b
}

func (b *builder) alloc() uint64 {
	p := b.next
	b.next += 0x1000
	if b.next > uint64(len(b.mem.b)) {
		panic("builder: out of memory")
	}
	return p
}

// shifts lists, top first, the index shift of each level, with entry size.
func (b *builder) shifts() ([]uint, int) {
	switch b.mode {
	case Legacy32, Legacy32NoPSE:
		return []uint{22, 12}, 4
	case PAE:
		return []uint{30, 21, 12}, 8
	case IA32e:
		return []uint{39, 30, 21, 12}, 8
	case LA57:
		return []uint{48, 39, 30, 21, 12}, 8
	}
	panic("bad mode")
}

func (b *builder) indexMask(shift uint) uint64 {
	switch {
	case b.mode == Legacy32 || b.mode == Legacy32NoPSE:
		return 0x3ff
	case b.mode == PAE && shift == 30:
		return 3
	}
	return 0x1ff
}

func (b *builder) tableBase(e uint64) uint64 {
	if b.mode == Legacy32 || b.mode == Legacy32NoPSE {
		return e & 0xfffff000
	}
	return e & 0x000f_ffff_ffff_f000
}

// entryAddr returns the address of the entry for va at the level with the
// given shift, creating tables above it as needed.
func (b *builder) entryAddr(va uint64, shift uint) uint64 {
	shifts, es := b.shifts()
	table := b.root
	if b.mode != PAE {
		table &^= 0xfff
	}
	for _, sh := range shifts {
		addr := table + (va>>sh&b.indexMask(sh))*uint64(es)
		if sh == shift {
			return addr
		}
		e := b.mem.get(addr, es)
		if e&1 == 0 {
			e = b.alloc() | 0x3 // present, writable
			if b.mode == PAE && sh == 30 {
				e = e &^ 2 // PDPTE bit 1 is reserved
			}
			b.mem.put(addr, es, e)
		}
		table = b.tableBase(e)
	}
	panic(fmt.Sprintf("no level with shift %d", shift))
}

// mapPage maps the page of the given size at va to pa (extra flag bits
// or'ed in), and returns the entry's address.
func (b *builder) mapPage(va, pa, size uint64, extra uint64) uint64 {
	_, es := b.shifts()
	var shift uint
	switch size {
	case 4 << 10:
		shift = 12
	case 2 << 20:
		shift = 21
	case 4 << 20:
		shift = 22
	case 1 << 30:
		shift = 30
	default:
		panic("bad size")
	}
	addr := b.entryAddr(va, shift)
	e := pa | 0x3 | extra
	if shift != 12 {
		e |= 0x80
		if size == 4<<20 {
			// PSE-36: physical bits 39:32 go in PDE bits 20:13.
			e = pa&0xffc00000 | (pa>>32&0xff)<<13 | 0x83 | extra
		}
	}
	b.mem.put(addr, es, e)
	return addr
}

func (b *builder) space() *Space { return New(b.mem, b.mode, b.root) }
