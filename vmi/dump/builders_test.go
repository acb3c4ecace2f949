package dump

import (
	"encoding/binary"

	"github.com/xascript/xascript/vmi"
)

// Builders of synthetic dumps. They spell offsets as numbers rather than
// reuse the parser's constants, so a wrong constant cannot cancel out. They write what QEMU and Linux write: the
// layouts of elf_prstatus and QEMUCPUState, 4-byte-aligned notes, and
// PT_NOTE first, then one PT_LOAD per memory block.

type elfSeg struct {
	paddr uint64
	memsz uint64 // 0 means len(data)
	data  []byte
}

type elfNote struct {
	name string
	typ  uint32
	desc []byte
}

// pattern returns n bytes that differ at every address, so a read from the
// wrong offset shows up: each 8-byte word holds its own guest-physical
// address, xor a seed.
func pattern(pa uint64, n int, seed uint64) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], (pa+uint64(i))^seed)
		copy(b[i:], w[:])
	}
	return b
}

func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func encodeNotes(notes []elfNote) []byte {
	var out []byte
	for _, n := range notes {
		name := append([]byte(n.name), 0)
		out = binary.LittleEndian.AppendUint32(out, uint32(len(name)))
		out = binary.LittleEndian.AppendUint32(out, uint32(len(n.desc)))
		out = binary.LittleEndian.AppendUint32(out, n.typ)
		out = pad4(append(out, name...))
		out = pad4(append(out, n.desc...))
	}
	return out
}

// buildELF writes an ET_CORE of the given class (32 or 64) and machine.
func buildELF(class int, machine uint16, segs []elfSeg, notes []elfNote) []byte {
	ehsize, phsize := ehdr64Size, phdr64Size
	if class == 32 {
		ehsize, phsize = ehdr32Size, phdr32Size
	}
	nb := encodeNotes(notes)
	phnum := len(segs)
	if len(notes) > 0 {
		phnum++
	}
	dataOff := ehsize + phnum*phsize
	type ph struct{ typ, off, paddr, filesz, memsz uint64 }
	var phs []ph
	var body []byte
	if len(notes) > 0 {
		phs = append(phs, ph{ptNote, uint64(dataOff), 0, uint64(len(nb)), 0})
		body = append(body, nb...)
	}
	for _, s := range segs {
		m := s.memsz
		if m == 0 {
			m = uint64(len(s.data))
		}
		phs = append(phs, ph{ptLoad, uint64(dataOff + len(body)), s.paddr, uint64(len(s.data)), m})
		body = append(body, s.data...)
	}
	out := make([]byte, dataOff, dataOff+len(body))
	copy(out, "\x7fELF")
	out[5], out[6] = elfData2LSB, 1
	le := binary.LittleEndian
	le.PutUint16(out[16:], etCore)
	le.PutUint16(out[18:], machine)
	le.PutUint32(out[20:], 1)
	if class == 64 {
		out[4] = elfClass64
		le.PutUint64(out[32:], uint64(ehsize))
		le.PutUint16(out[52:], uint16(ehsize))
		le.PutUint16(out[54:], uint16(phsize))
		le.PutUint16(out[56:], uint16(phnum))
	} else {
		out[4] = elfClass32
		le.PutUint32(out[28:], uint32(ehsize))
		le.PutUint16(out[40:], uint16(ehsize))
		le.PutUint16(out[42:], uint16(phsize))
		le.PutUint16(out[44:], uint16(phnum))
	}
	for i, p := range phs {
		b := out[ehsize+i*phsize:]
		le.PutUint32(b, uint32(p.typ))
		if class == 64 {
			le.PutUint64(b[8:], p.off)
			le.PutUint64(b[16:], p.paddr)
			le.PutUint64(b[24:], p.paddr)
			le.PutUint64(b[32:], p.filesz)
			le.PutUint64(b[40:], p.memsz)
			le.PutUint64(b[48:], 4096)
		} else {
			le.PutUint32(b[4:], uint32(p.off))
			le.PutUint32(b[8:], uint32(p.paddr))
			le.PutUint32(b[12:], uint32(p.paddr))
			le.PutUint32(b[16:], uint32(p.filesz))
			le.PutUint32(b[20:], uint32(p.memsz))
			le.PutUint32(b[28:], 4096)
		}
	}
	return append(out, body...)
}

// qemuNote builds a QEMUCPUState (size 440: with kernel_gs_base). Registers
// get recognisable values: rax = base+0 ... rflags = base+17.
func qemuNote(base, cr0, cr3, cr4 uint64) elfNote {
	d := make([]byte, 440)
	le := binary.LittleEndian
	le.PutUint32(d, 1)
	le.PutUint32(d[4:], uint32(len(d)))
	for i := 0; i < 18; i++ {
		le.PutUint64(d[8+8*i:], base+uint64(i))
	}
	for i := 0; i < 10; i++ { // cs, ds, es, fs, gs, ss, ldt, tr, gdt, idt
		s := d[152+24*i:]
		le.PutUint32(s, uint32(0x10+i))
		le.PutUint32(s[4:], 0xffff)
		le.PutUint32(s[8:], 0xa09b00)
		le.PutUint64(s[16:], 0x1000*uint64(i))
	}
	crs := []uint64{cr0, 0, 0xdead, cr3, cr4}
	for i, v := range crs {
		le.PutUint64(d[392+8*i:], v)
	}
	le.PutUint64(d[432:], 0xffff888007c00000)
	return elfNote{"QEMU", 0, d}
}

// prstatus64 builds an x86-64 NT_PRSTATUS with pr_pid and rip set.
func prstatus64(pid uint32, rip, rsp uint64) elfNote {
	d := make([]byte, 336)
	le := binary.LittleEndian
	le.PutUint32(d[32:], pid)
	le.PutUint64(d[112+16*8:], rip)
	le.PutUint64(d[112+19*8:], rsp)
	le.PutUint64(d[112+17*8:], 0x10) // cs
	return elfNote{"CORE", 1, d}
}

func prstatus32(pid uint32, eip, esp uint32) elfNote {
	d := make([]byte, 144)
	le := binary.LittleEndian
	le.PutUint32(d[24:], pid)
	le.PutUint32(d[72+12*4:], eip)
	le.PutUint32(d[72+15*4:], esp)
	le.PutUint32(d[72+13*4:], 0x60) // cs
	return elfNote{"CORE", 1, d}
}

type limeRange struct {
	start uint64
	data  []byte
}

func buildLiME(ranges []limeRange) []byte {
	var out []byte
	le := binary.LittleEndian
	for _, r := range ranges {
		out = le.AppendUint32(out, limeMagic)
		out = le.AppendUint32(out, 1)
		out = le.AppendUint64(out, r.start)
		out = le.AppendUint64(out, r.start+uint64(len(r.data))-1)
		out = append(out, make([]byte, 8)...)
		out = append(out, r.data...)
	}
	return out
}

const (
	testCR0   = 0x80050033
	testCR3   = 0x1a0b000
	testCR4   = 0x3006f0
	gib4      = 1 << 32
	testSeed  = 0x5a5a_0000_0000_0000
	testSeed2 = 0x0101_0101_0000_0000
)

// qemuELF64 is a QEMU-like two-vCPU x86-64 core: RAM below 640 KiB split in
// two adjacent blocks, a block with a zero tail (p_memsz > p_filesz), a hole,
// and RAM above 4 GiB.
func qemuELF64() []byte {
	return buildELF(64, emX86_64, []elfSeg{
		{paddr: 0, data: pattern(0, 0x3000, testSeed)},
		{paddr: 0x3000, data: pattern(0x3000, 0x2000, testSeed)},
		{paddr: 0x10000, memsz: 0x3000, data: pattern(0x10000, 0x1000, testSeed)},
		{paddr: gib4, data: pattern(gib4, 0x2000, testSeed)},
	}, []elfNote{
		prstatus64(1, 0xffffffff81000000, 0xffffc90000003e00),
		prstatus64(2, 0xffffffff81000010, 0xffffc90000013e00),
		qemuNote(0x100, testCR0, testCR3, testCR4),
		qemuNote(0x200, testCR0, testCR3+0x1000, testCR4),
		{"VMCOREINFO", 0, []byte("OSRELEASE=6.1.0-test\nPAGESIZE=4096\n")},
	})
}

// qemuELF32 is an i386 PAE guest's core as QEMU writes it: ELF32, the
// i386 elf_prstatus and the same QEMUCPUState behind an Elf32_Nhdr.
func qemuELF32() []byte {
	return buildELF(32, em386, []elfSeg{
		{paddr: 0, data: pattern(0, 0x2000, testSeed2)},
		{paddr: 0x100000, data: pattern(0x100000, 0x1000, testSeed2)},
	}, []elfNote{
		prstatus32(1, 0xc1000000, 0xc1800000),
		qemuNote(0x300, 0x80050033, 0x1b2c020, 0x6f0),
	})
}

// kdumpELF64 is shaped like /proc/vmcore: CORE notes and VMCOREINFO, no
// QEMU note, and a first PT_LOAD for the kernel text that duplicates part
// of a RAM PT_LOAD.
func kdumpELF64() []byte {
	return buildELF(64, emX86_64, []elfSeg{
		{paddr: 0x1000000, data: pattern(0x1000000, 0x1000, testSeed)},
		{paddr: 0x1000, data: pattern(0x1000, 0x1000, testSeed)},
		{paddr: 0x100000, data: pattern(0x100000, 0x1000000, testSeed)[:0x1000], memsz: 0x1000},
		{paddr: 0xfff000, data: pattern(0xfff000, 0x3000, testSeed)},
	}, []elfNote{
		prstatus64(4242, 0xffffffff81234567, 0xffffc90000abc000),
		{"VMCOREINFO", 0, []byte("OSRELEASE=6.1.0-kdump\nSYMBOL(swapper_pg_dir)=ffffffff82a0a000\n")},
	})
}

func rng(start, end uint64) vmi.Range { return vmi.Range{Start: start, End: end} }
