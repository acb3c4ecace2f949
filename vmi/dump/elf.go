package dump

import (
	"encoding/binary"
	"math/bits"

	"github.com/xascript/xascript/vmi"
)

// ELF constants (System V gABI).
const (
	elfClass32   = 1
	elfClass64   = 2
	elfData2LSB  = 1
	etCore       = 4
	em386        = 3
	emX86_64     = 62
	ptLoad       = 1
	ptNote       = 4
	pnXNum       = 0xffff // e_phnum escape: the count is in section header 0's sh_info
	ehdr32Size   = 52
	ehdr64Size   = 64
	phdr32Size   = 32
	phdr64Size   = 56
	shdr32Size   = 40
	shdr64Size   = 64
	maxPhnum     = 1 << 20 // far above any dumper (QEMU: one PT_LOAD per RAM block)
	maxNoteBytes = 64 << 20
)

var le = binary.LittleEndian

var etNames = map[uint16]string{0: "ET_NONE", 1: "ET_REL", 2: "ET_EXEC", 3: "ET_DYN", 4: "ET_CORE"}

// elfHeader is the part of the ELF header this package uses.
type elfHeader struct {
	class                int // 32 or 64
	machine              uint16
	phoff, shoff         uint64
	phentsize, shentsize uint64
	phnum                uint64
}

// progHeader is a program header with fields widened to 64 bits.
type progHeader struct {
	typ                  uint32
	off, paddr           uint64
	filesz, memsz, align uint64
}

func parseELF(name string, data []byte) (*Dump, error) {
	h, err := parseELFHeader(name, data)
	if err != nil {
		return nil, err
	}
	phdrs, err := readProgHeaders(name, data, h)
	if err != nil {
		return nil, err
	}
	var (
		segs      []segment
		notes     noteSet
		loads     int
		allPaddr0 = true
	)
	for i, p := range phdrs {
		switch p.typ {
		case ptLoad:
			if p.filesz > p.memsz {
				return nil, formatErr(vmi.ErrFormat, "ELF core %s: program header %d: p_filesz %#x larger than p_memsz %#x", name, i, p.filesz, p.memsz)
			}
			if p.filesz == 0 {
				p.off = 0 // all zeros: p_offset is meaningless, do not check it
			}
			if err := checkInFile(name, i, p, data); err != nil {
				return nil, err
			}
			s, ok := newSegment(p.paddr, p.memsz, p.off, p.filesz)
			if !ok {
				return nil, formatErr(vmi.ErrFormat, "ELF core %s: program header %d: p_paddr %#x + p_memsz %#x overflows 64 bits", name, i, p.paddr, p.memsz)
			}
			segs = append(segs, s)
			loads++
			if p.paddr != 0 {
				allPaddr0 = false
			}
		case ptNote:
			if err := checkInFile(name, i, p, data); err != nil {
				return nil, err
			}
			if err := notes.parse(name, i, data[p.off:p.off+p.filesz]); err != nil {
				return nil, err
			}
		}
	}
	if loads == 0 {
		return nil, formatErr(vmi.ErrFormat, "ELF core %s: no PT_LOAD segments: the core holds no memory", name)
	}
	if loads > 1 && allPaddr0 {
		// A process core (gcore, kernel coredump) maps virtual addresses
		// and leaves p_paddr zero; treating it as guest memory would lay
		// every segment over address 0.
		return nil, formatErr(vmi.ErrUnsupported, "ELF core %s: every PT_LOAD has p_paddr 0: this is a process core dump, not a guest-memory dump", name)
	}
	kind := "ELF core"
	switch {
	case len(notes.qemu) > 0:
		kind = "ELF core (QEMU)"
	case notes.hasCoreInfo:
		kind = "ELF core (kdump)"
	}
	d, err := newDump(name, kind, data, segs)
	if err != nil {
		return nil, err
	}
	d.vcpus = notes.vcpus(h.machine)
	d.vmcoreinfo, d.hasCoreInfo = notes.vmcoreinfo, notes.hasCoreInfo
	return d, nil
}

func parseELFHeader(name string, data []byte) (elfHeader, error) {
	var h elfHeader
	if len(data) < 16 {
		return h, formatErr(vmi.ErrFormat, "ELF core %s: truncated: %d bytes, shorter than e_ident", name, len(data))
	}
	switch data[4] {
	case elfClass32:
		h.class = 32
	case elfClass64:
		h.class = 64
	default:
		return h, formatErr(vmi.ErrFormat, "ELF core %s: bad EI_CLASS %d (want 1 for ELF32 or 2 for ELF64)", name, data[4])
	}
	if data[5] != elfData2LSB {
		return h, formatErr(vmi.ErrUnsupported, "ELF core %s: EI_DATA %d: only little-endian (x86) cores are supported", name, data[5])
	}
	ehsize := ehdr64Size
	if h.class == 32 {
		ehsize = ehdr32Size
	}
	if len(data) < ehsize {
		return h, formatErr(vmi.ErrFormat, "ELF core %s: truncated: %d bytes, shorter than the %d-byte ELF%d header", name, len(data), ehsize, h.class)
	}
	if typ := le.Uint16(data[16:]); typ != etCore {
		tn, ok := etNames[typ]
		if !ok {
			tn = "unknown"
		}
		return h, formatErr(vmi.ErrUnsupported, "ELF core %s: e_type is %s (%d), not ET_CORE (4): an ELF file but not a memory dump", name, tn, typ)
	}
	h.machine = le.Uint16(data[18:])
	if h.machine != emX86_64 && h.machine != em386 {
		return h, formatErr(vmi.ErrUnsupported, "ELF core %s: e_machine %d: only x86-64 (62) and i386 (3) guests are supported", name, h.machine)
	}
	var phnum uint16
	if h.class == 64 {
		h.phoff = le.Uint64(data[32:])
		h.shoff = le.Uint64(data[40:])
		h.phentsize = uint64(le.Uint16(data[54:]))
		phnum = le.Uint16(data[56:])
		h.shentsize = uint64(le.Uint16(data[58:]))
	} else {
		h.phoff = uint64(le.Uint32(data[28:]))
		h.shoff = uint64(le.Uint32(data[32:]))
		h.phentsize = uint64(le.Uint16(data[42:]))
		phnum = le.Uint16(data[44:])
		h.shentsize = uint64(le.Uint16(data[46:]))
	}
	h.phnum = uint64(phnum)
	if phnum == pnXNum {
		// QEMU uses the escape when a guest has more than 65534 memory
		// blocks; the real count is section header 0's sh_info.
		n, err := extendedPhnum(name, data, h)
		if err != nil {
			return h, err
		}
		h.phnum = n
	}
	return h, nil
}

func extendedPhnum(name string, data []byte, h elfHeader) (uint64, error) {
	want, infoOff := uint64(shdr64Size), uint64(44)
	if h.class == 32 {
		want, infoOff = shdr32Size, 28
	}
	if h.shoff == 0 || h.shentsize < want {
		return 0, formatErr(vmi.ErrFormat, "ELF core %s: e_phnum is PN_XNUM but there is no section header 0 (e_shoff %#x, e_shentsize %d)", name, h.shoff, h.shentsize)
	}
	if end, c := bits.Add64(h.shoff, want, 0); c != 0 || end > uint64(len(data)) {
		return 0, formatErr(vmi.ErrFormat, "ELF core %s: truncated: section header 0 at %#x+%#x beyond file size %#x", name, h.shoff, want, len(data))
	}
	return uint64(le.Uint32(data[h.shoff+infoOff:])), nil
}

func readProgHeaders(name string, data []byte, h elfHeader) ([]progHeader, error) {
	want := uint64(phdr64Size)
	if h.class == 32 {
		want = phdr32Size
	}
	if h.phnum == 0 {
		return nil, formatErr(vmi.ErrFormat, "ELF core %s: no program headers (e_phnum 0)", name)
	}
	if h.phnum > maxPhnum {
		return nil, formatErr(vmi.ErrLimit, "ELF core %s: %d program headers, more than the limit %d", name, h.phnum, maxPhnum)
	}
	if h.phentsize < want {
		return nil, formatErr(vmi.ErrFormat, "ELF core %s: e_phentsize %d smaller than an ELF%d program header (%d)", name, h.phentsize, h.class, want)
	}
	hi, size := bits.Mul64(h.phnum, h.phentsize)
	end, c := bits.Add64(h.phoff, size, 0)
	if hi != 0 || c != 0 || end > uint64(len(data)) {
		return nil, formatErr(vmi.ErrFormat, "ELF core %s: truncated: program header table at %#x+%d*%d beyond file size %#x", name, h.phoff, h.phnum, h.phentsize, len(data))
	}
	phdrs := make([]progHeader, h.phnum) // bounded by the file size checked above
	for i := range phdrs {
		b := data[h.phoff+uint64(i)*h.phentsize:]
		p := &phdrs[i]
		p.typ = le.Uint32(b)
		if h.class == 64 {
			p.off = le.Uint64(b[8:])
			p.paddr = le.Uint64(b[24:])
			p.filesz = le.Uint64(b[32:])
			p.memsz = le.Uint64(b[40:])
			p.align = le.Uint64(b[48:])
		} else {
			p.off = uint64(le.Uint32(b[4:]))
			p.paddr = uint64(le.Uint32(b[12:]))
			p.filesz = uint64(le.Uint32(b[16:]))
			p.memsz = uint64(le.Uint32(b[20:]))
			p.align = uint64(le.Uint32(b[28:]))
		}
	}
	return phdrs, nil
}

// checkInFile makes sure the file bytes of program header i lie in data.
func checkInFile(name string, i int, p progHeader, data []byte) error {
	end, c := bits.Add64(p.off, p.filesz, 0)
	if c != 0 || end > uint64(len(data)) {
		what := "PT_LOAD"
		if p.typ == ptNote {
			what = "PT_NOTE"
		}
		return formatErr(vmi.ErrFormat, "ELF core %s: program header %d (%s): offset %#x+%#x beyond file size %#x (truncated dump?)", name, i, what, p.off, p.filesz, len(data))
	}
	return nil
}
