package dump

import (
	"bytes"

	"github.com/xascript/xascript/vmi"
)

// Note types and sizes (Linux include/uapi/linux/elf.h, QEMU
// target/i386/arch_dump.c).
const (
	ntPRStatus       = 1
	prstatus64Size   = 336 // struct elf_prstatus, x86-64
	prstatus64Regs   = 112 // offset of pr_reg
	prstatus64PID    = 32
	prstatus32Size   = 144 // struct elf_prstatus, i386
	prstatus32Regs   = 72
	prstatus32PID    = 24
	qemuCRs          = 392 // offset of cr[5] in QEMUCPUState
	qemuMinSize      = qemuCRs + 5*8
	qemuKernelGSBase = qemuMinSize // appended in later QEMU versions; size says whether it is there
	qemuSegs         = 152
	maxNotes         = 1 << 16
	maxCoreInfoBytes = 1 << 20
)

// Segment is a segment register (or descriptor-table register) as QEMU
// stores it. From an NT_PRSTATUS note only Selector is known (and Base for
// FS and GS on x86-64).
type Segment struct {
	Selector uint16
	Limit    uint32
	Flags    uint32
	Base     uint64
}

// Registers are a vCPU's general registers, from the QEMU note when there is
// one, else from NT_PRSTATUS. i386 values are zero-extended.
type Registers struct {
	RAX, RBX, RCX, RDX, RSI, RDI, RSP, RBP uint64
	R8, R9, R10, R11, R12, R13, R14, R15   uint64
	RIP, RFLAGS                            uint64
	CS, DS, ES, FS, GS, SS                 Segment
	LDT, TR, GDT, IDT                      Segment // QEMU note only
	KernelGSBase                           uint64  // QEMU note of QEMU >= 7.2 only
}

// VCPU is one vCPU's state from an ELF core's notes.
type VCPU struct {
	// ID is pr_pid of the vCPU's NT_PRSTATUS note (QEMU writes the vCPU
	// index + 1; the kernel the task's pid), or the index in note order when
	// the vCPU has no such note.
	ID uint32
	// State has the control registers from the QEMU note; Known is false
	// without one (kdump vmcores carry no control registers).
	State vmi.CPUState
	// EFERInferred is true when State.EFER was not read but inferred
	// (always, for a QEMU note: QEMUCPUState has no EFER; see cpuFromQEMU).
	EFERInferred bool
	// Regs is nil when neither a QEMU nor an NT_PRSTATUS note was usable.
	Regs *Registers
}

type prstatus struct {
	pid  uint32
	regs Registers
}

type qemuState struct {
	regs          Registers
	cr0, cr3, cr4 uint64
}

// noteSet collects the notes of all PT_NOTE segments.
type noteSet struct {
	core        []prstatus
	qemu        []qemuState
	vmcoreinfo  string
	hasCoreInfo bool
	count       int
	bytes       uint64
}

func align4(n uint64) uint64 { return (n + 3) &^ 3 }

// parse walks the notes of one PT_NOTE segment (program header ph). Linux
// and QEMU pad names and descriptors to 4 bytes in ELF64 cores too (not the
// 8 the gABI asks for ELF64), so 4 it is.
//
// The padding after a note's name or descriptor may be missing at the end
// of the segment (a dumper that sized the segment without it): the note is
// complete, so it is used, and the walk ends there. Alignment therefore
// never steps past n, and off <= n holds at the top of every iteration, so
// n-off cannot wrap. namesz and descsz are 32-bit and off <= n < 2^63, so
// no sum below overflows.
func (ns *noteSet) parse(name string, ph int, b []byte) error {
	ns.bytes += uint64(len(b))
	if ns.bytes > maxNoteBytes {
		return formatErr(vmi.ErrLimit, "ELF core %s: more than %d bytes of notes", name, maxNoteBytes)
	}
	n := uint64(len(b))
	for off := uint64(0); off <= n && n-off >= 12; {
		namesz, descsz, typ := uint64(le.Uint32(b[off:])), uint64(le.Uint32(b[off+4:])), le.Uint32(b[off+8:])
		if namesz == 0 && descsz == 0 && typ == 0 {
			break // kexec's per-CPU note buffers end in an empty note
		}
		nameOff := off + 12
		nameEnd := nameOff + namesz
		descOff := min(align4(nameEnd), n) // an empty descriptor may lack the name's padding
		descEnd := descOff + descsz
		if nameEnd > n || descEnd > n {
			return formatErr(vmi.ErrFormat, "ELF core %s: program header %d: note at offset %#x (namesz %d, descsz %d) overruns the %#x-byte note segment", name, ph, off, namesz, descsz, n)
		}
		if ns.count++; ns.count > maxNotes {
			return formatErr(vmi.ErrLimit, "ELF core %s: more than %d notes", name, maxNotes)
		}
		nm := string(bytes.TrimRight(b[nameOff:nameEnd], "\x00"))
		desc := b[descOff:descEnd]
		if err := ns.add(name, ph, off, nm, typ, desc); err != nil {
			return err
		}
		off = min(align4(descEnd), n) // the last descriptor's padding may be cut off
	}
	return nil
}

func (ns *noteSet) add(name string, ph int, off uint64, nm string, typ uint32, desc []byte) error {
	switch {
	case nm == "CORE" && typ == ntPRStatus:
		// The layout follows the size, not e_machine: QEMU writes the i386
		// layout into an ELF64 core when the guest is not in long mode.
		switch len(desc) {
		case prstatus64Size:
			ns.core = append(ns.core, parsePRStatus64(desc))
		case prstatus32Size:
			ns.core = append(ns.core, parsePRStatus32(desc))
		}
		// Other sizes are other architectures' layouts: no registers.
	case nm == "QEMU" && typ == 0:
		q, err := parseQEMU(desc)
		if err != nil {
			return formatErr(vmi.ErrFormat, "ELF core %s: program header %d: QEMU note at offset %#x: %v", name, ph, off, err)
		}
		ns.qemu = append(ns.qemu, q)
	case nm == "VMCOREINFO" && !ns.hasCoreInfo:
		if len(desc) > maxCoreInfoBytes {
			return formatErr(vmi.ErrLimit, "ELF core %s: VMCOREINFO note of %d bytes, more than the limit %d", name, len(desc), maxCoreInfoBytes)
		}
		ns.vmcoreinfo = string(bytes.TrimRight(desc, "\x00"))
		ns.hasCoreInfo = true
	}
	return nil
}

func parsePRStatus64(d []byte) prstatus {
	var g [27]uint64
	for i := range g {
		g[i] = le.Uint64(d[prstatus64Regs+8*i:])
	}
	// struct user_regs_struct order (arch/x86/include/asm/user_64.h).
	r := Registers{
		R15: g[0], R14: g[1], R13: g[2], R12: g[3], RBP: g[4], RBX: g[5], R11: g[6], R10: g[7],
		R9: g[8], R8: g[9], RAX: g[10], RCX: g[11], RDX: g[12], RSI: g[13], RDI: g[14],
		RIP: g[16], RFLAGS: g[18], RSP: g[19],
	}
	r.CS.Selector, r.SS.Selector = uint16(g[17]), uint16(g[20])
	r.FS.Base, r.GS.Base = g[21], g[22]
	r.DS.Selector, r.ES.Selector, r.FS.Selector, r.GS.Selector = uint16(g[23]), uint16(g[24]), uint16(g[25]), uint16(g[26])
	return prstatus{pid: le.Uint32(d[prstatus64PID:]), regs: r}
}

func parsePRStatus32(d []byte) prstatus {
	var g [17]uint64
	for i := range g {
		g[i] = uint64(le.Uint32(d[prstatus32Regs+4*i:]))
	}
	// struct user_regs_struct order (arch/x86/include/asm/user_32.h);
	// segment fields are u16 + padding.
	r := Registers{
		RBX: g[0], RCX: g[1], RDX: g[2], RSI: g[3], RDI: g[4], RBP: g[5], RAX: g[6],
		RIP: g[12], RFLAGS: g[14], RSP: g[15],
	}
	r.DS.Selector, r.ES.Selector, r.FS.Selector, r.GS.Selector = uint16(g[7]), uint16(g[8]), uint16(g[9]), uint16(g[10])
	r.CS.Selector, r.SS.Selector = uint16(g[13]), uint16(g[16])
	return prstatus{pid: le.Uint32(d[prstatus32PID:]), regs: r}
}

// parseQEMU decodes a QEMUCPUState. The layout is the same in ELF32 and
// ELF64 cores (all fields fixed-width); later QEMU versions append fields
// and grow size, so only a minimum is required.
func parseQEMU(d []byte) (qemuState, error) {
	var q qemuState
	if len(d) < 8 {
		return q, formatErr(vmi.ErrFormat, "descriptor of %d bytes, too short for the version and size fields", len(d))
	}
	version, size := le.Uint32(d), uint64(le.Uint32(d[4:]))
	if version == 0 {
		return q, formatErr(vmi.ErrFormat, "QEMUCPUState version 0")
	}
	size = min(size, uint64(len(d)))
	if size < qemuMinSize {
		return q, formatErr(vmi.ErrFormat, "QEMUCPUState of %d bytes (descsz %d), too short for cr[] (need %d)", le.Uint32(d[4:]), len(d), qemuMinSize)
	}
	var g [18]uint64
	for i := range g {
		g[i] = le.Uint64(d[8+8*i:])
	}
	r := Registers{
		RAX: g[0], RBX: g[1], RCX: g[2], RDX: g[3], RSI: g[4], RDI: g[5], RSP: g[6], RBP: g[7],
		R8: g[8], R9: g[9], R10: g[10], R11: g[11], R12: g[12], R13: g[13], R14: g[14], R15: g[15],
		RIP: g[16], RFLAGS: g[17],
	}
	segs := []*Segment{&r.CS, &r.DS, &r.ES, &r.FS, &r.GS, &r.SS, &r.LDT, &r.TR, &r.GDT, &r.IDT}
	for i, s := range segs {
		b := d[qemuSegs+24*i:]
		*s = Segment{Selector: uint16(le.Uint32(b)), Limit: le.Uint32(b[4:]), Flags: le.Uint32(b[8:]), Base: le.Uint64(b[16:])}
	}
	if size >= qemuKernelGSBase+8 {
		r.KernelGSBase = le.Uint64(d[qemuKernelGSBase:])
	}
	q.regs = r
	q.cr0, q.cr3, q.cr4 = le.Uint64(d[qemuCRs:]), le.Uint64(d[qemuCRs+24:]), le.Uint64(d[qemuCRs+32:])
	return q, nil
}

// cpuFromQEMU builds the control-register state of a vCPU from its QEMU note.
//
// QEMUCPUState has no EFER, so it is inferred. QEMU writes an EM_X86_64
// core only when vCPU 0 has EFER.LMA set (cpu_get_dump_info), and a CPU with
// paging and CR4.PAE in a 64-bit core is in long mode (IA-32e paging needs
// LME, PAE and PG; a 64-bit kernel never runs legacy PAE paging), so those
// give LME|LMA. NXE is set whenever PAE paging is on (long mode or legacy
// PAE): with NXE clear, bit 63 of a PAE/IA-32e entry is reserved and a guest
// cannot have it set in a present entry, so assuming NXE changes nothing
// for a guest that left it clear, while assuming it clear would make every
// no-execute kernel page a reserved-bit fault for guests that set it (all
// current x86 Linux kernels). SCE and the other bits do not affect
// translation and stay zero.
func cpuFromQEMU(machine uint16, q qemuState) (vmi.CPUState, bool) {
	st := vmi.CPUState{Known: true, CR0: q.cr0, CR3: q.cr3, CR4: q.cr4}
	paePaging := q.cr0&vmi.CR0PG != 0 && q.cr4&vmi.CR4PAE != 0
	if paePaging {
		st.EFER |= vmi.EFERNXE
		if machine == emX86_64 {
			st.EFER |= vmi.EFERLME | vmi.EFERLMA
		}
	}
	return st, true
}

// vcpus pairs the notes into vCPUs. QEMU writes one NT_PRSTATUS note per
// vCPU, then one QEMU note per vCPU, both in vCPU order, so the i-th of each
// belong together; kdump has only the NT_PRSTATUS notes.
func (ns *noteSet) vcpus(machine uint16) []VCPU {
	n := max(len(ns.core), len(ns.qemu))
	if n == 0 {
		return nil
	}
	out := make([]VCPU, n)
	for i := range out {
		v := &out[i]
		v.ID = uint32(i)
		if i < len(ns.core) {
			v.ID = ns.core[i].pid
			r := ns.core[i].regs
			v.Regs = &r
		}
		if i < len(ns.qemu) {
			q := ns.qemu[i]
			r := q.regs
			v.Regs = &r
			v.State, v.EFERInferred = cpuFromQEMU(machine, q)
		}
	}
	return out
}
