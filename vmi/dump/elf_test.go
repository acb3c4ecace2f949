package dump

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/xascript/xascript/vmi"
)

func mustParse(t *testing.T, data []byte) *Dump {
	t.Helper()
	d, err := Parse("test", data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return d
}

// checkRead reads n bytes at pa and compares with the pattern.
func checkRead(t *testing.T, d vmi.PhysReader, pa uint64, n int, seed uint64) {
	t.Helper()
	buf := make([]byte, n)
	if err := d.ReadPhys(buf, pa); err != nil {
		t.Fatalf("ReadPhys(%#x, %d): %v", pa, n, err)
	}
	want := pattern(pa&^7, n+8, seed)[pa&7:][:n]
	if !bytes.Equal(buf, want) {
		t.Fatalf("ReadPhys(%#x, %d): wrong bytes\n got %x\nwant %x", pa, n, buf[:min(n, 32)], want[:min(n, 32)])
	}
}

func checkHole(t *testing.T, d vmi.PhysReader, pa uint64, n int, wantAddr uint64) {
	t.Helper()
	err := d.ReadPhys(make([]byte, n), pa)
	var pe *vmi.PhysError
	if !errors.As(err, &pe) || !errors.Is(err, vmi.ErrNotPresent) {
		t.Fatalf("ReadPhys(%#x, %d) = %v, want a *vmi.PhysError wrapping ErrNotPresent", pa, n, err)
	}
	if pe.Addr != wantAddr {
		t.Fatalf("ReadPhys(%#x, %d): error names %#x, want the first missing address %#x", pa, n, pe.Addr, wantAddr)
	}
}

func TestELF64QEMU(t *testing.T) {
	d := mustParse(t, qemuELF64())
	if got, want := d.Kind(), "ELF core (QEMU)"; got != want {
		t.Errorf("Kind = %q, want %q", got, want)
	}
	wantMap := []vmi.Range{rng(0, 0x5000), rng(0x10000, 0x13000), rng(gib4, gib4+0x2000)}
	if got := d.MemoryMap(); !slices.Equal(got, wantMap) {
		t.Errorf("MemoryMap = %v, want %v", got, wantMap)
	}
	cpu := d.CPU()
	want := vmi.CPUState{Known: true, CR0: testCR0, CR3: testCR3, CR4: testCR4, EFER: vmi.EFERLME | vmi.EFERLMA | vmi.EFERNXE}
	if cpu != want {
		t.Errorf("CPU = %+v, want %+v", cpu, want)
	}

	checkRead(t, d, 0, 8, testSeed)
	checkRead(t, d, 0x2ffc, 8, testSeed)      // spans the two adjacent blocks
	checkRead(t, d, 0x100, 0x4000, testSeed)  // spans them by a lot
	checkRead(t, d, gib4+0x1ff8, 8, testSeed) // above 4 GiB, last word
	checkRead(t, d, 0x10ff0, 0x10, testSeed)  // end of the file-backed part
	checkHole(t, d, 0x4ffc, 8, 0x5000)        // runs into the hole
	checkHole(t, d, 0x8000, 1, 0x8000)        // in the hole
	checkHole(t, d, gib4-4, 8, gib4-4)        // just below 4 GiB
	checkHole(t, d, gib4+0x1ffc, 8, gib4+0x2000)
	checkHole(t, d, ^uint64(0)-2, 8, ^uint64(0)-2)

	// A PT_LOAD with p_filesz 0 is all zeros whatever its p_offset.
	z := mustParse(t, buildELF(64, emX86_64, []elfSeg{{paddr: 0x1000, data: pattern(0x1000, 0x10, 1)}, {paddr: 0x2000, memsz: 0x1000}}, nil))
	zb := make([]byte, 0x1000)
	if err := z.ReadPhys(zb, 0x2000); err != nil || !bytes.Equal(zb, make([]byte, 0x1000)) {
		t.Errorf("p_filesz 0 segment: %v %x", err, zb[:8])
	}

	// p_memsz > p_filesz: the tail is memory and reads as zeros.
	buf := bytes.Repeat([]byte{0xcc}, 0x2000)
	if err := d.ReadPhys(buf, 0x11000); err != nil {
		t.Fatalf("read of zero tail: %v", err)
	}
	if !bytes.Equal(buf, make([]byte, 0x2000)) {
		t.Errorf("zero tail reads %x..., want zeros", buf[:16])
	}
	buf = bytes.Repeat([]byte{0xcc}, 16)
	if err := d.ReadPhys(buf, 0x10ff8); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf[:8], pattern(0x10ff8, 8, testSeed)) || !bytes.Equal(buf[8:], make([]byte, 8)) {
		t.Errorf("read across filesz boundary = %x", buf)
	}

	vcpus := d.VCPUs()
	if len(vcpus) != 2 {
		t.Fatalf("%d vCPUs, want 2", len(vcpus))
	}
	v1 := vcpus[1]
	if v1.ID != 2 || v1.State.CR3 != testCR3+0x1000 || !v1.EFERInferred {
		t.Errorf("vCPU 1 = %+v", v1)
	}
	r := vcpus[0].Regs
	if r == nil || r.RAX != 0x100 || r.RBX != 0x101 || r.R15 != 0x10f || r.RIP != 0x110 || r.RFLAGS != 0x111 ||
		r.CS.Selector != 0x10 || r.SS.Selector != 0x15 || r.GDT.Base != 0x8000 || r.IDT.Selector != 0x19 ||
		r.KernelGSBase != 0xffff888007c00000 {
		t.Errorf("vCPU 0 regs = %+v", r)
	}
	info, ok := d.VMCoreInfo()
	if !ok || !strings.Contains(info, "OSRELEASE=6.1.0-test\n") {
		t.Errorf("VMCoreInfo = %q, %v", info, ok)
	}
}

func TestELF32QEMU(t *testing.T) {
	d := mustParse(t, qemuELF32())
	if d.Kind() != "ELF core (QEMU)" {
		t.Errorf("Kind = %q", d.Kind())
	}
	// Legacy PAE paging: NXE inferred, no long mode.
	want := vmi.CPUState{Known: true, CR0: 0x80050033, CR3: 0x1b2c020, CR4: 0x6f0, EFER: vmi.EFERNXE}
	if cpu := d.CPU(); cpu != want {
		t.Errorf("CPU = %+v, want %+v", cpu, want)
	}
	checkRead(t, d, 0x1ff0, 0x10, testSeed2)
	checkRead(t, d, 0x100000, 0x1000, testSeed2)
	checkHole(t, d, 0x1ff0, 0x20, 0x2000)
	if _, ok := d.VMCoreInfo(); ok {
		t.Error("VMCoreInfo present in a core without the note")
	}
	v := d.VCPUs()
	if len(v) != 1 || v[0].ID != 1 || v[0].Regs.RAX != 0x300 {
		t.Errorf("VCPUs = %+v", v)
	}
}

func TestELF32PRStatusOnly(t *testing.T) {
	d := mustParse(t, buildELF(32, em386, []elfSeg{{paddr: 0, data: pattern(0, 0x1000, 1)}},
		[]elfNote{prstatus32(7, 0xc1000123, 0xc1800000)}))
	if d.CPU().Known {
		t.Error("CPU known without a QEMU note")
	}
	v := d.VCPUs()
	if len(v) != 1 || v[0].ID != 7 || v[0].Regs.RIP != 0xc1000123 || v[0].Regs.RSP != 0xc1800000 || v[0].Regs.CS.Selector != 0x60 {
		t.Errorf("VCPUs = %+v / %+v", v, v[0].Regs)
	}
}

func TestELF64NotLongMode(t *testing.T) {
	// QEMU writes EM_386 into an ELF64 core for a 32-bit guest with RAM
	// above 4 GiB: no LMA, and the i386 prstatus layout.
	d := mustParse(t, buildELF(64, em386, []elfSeg{{paddr: gib4, data: pattern(gib4, 0x1000, 3)}},
		[]elfNote{prstatus32(1, 0xc1000000, 0), qemuNote(0, 0x80000011, 0x1000, 0x20)}))
	if got := d.CPU().EFER; got != vmi.EFERNXE {
		t.Errorf("EFER = %#x, want NXE only", got)
	}
	if d.VCPUs()[0].Regs.RAX != 0 {
		t.Error("QEMU note registers not preferred")
	}
	d = mustParse(t, buildELF(64, emX86_64, []elfSeg{{paddr: 0, data: pattern(0, 0x1000, 3)}},
		[]elfNote{qemuNote(0, 0x11, 0, 0)})) // paging off
	if got := d.CPU(); !got.Known || got.EFER != 0 {
		t.Errorf("CPU with paging off = %+v, want Known and EFER 0", got)
	}
}

func TestKdump(t *testing.T) {
	d := mustParse(t, kdumpELF64())
	if d.Kind() != "ELF core (kdump)" {
		t.Errorf("Kind = %q", d.Kind())
	}
	if d.CPU().Known {
		t.Error("kdump core has CPU state Known")
	}
	wantMap := []vmi.Range{rng(0x1000, 0x2000), rng(0x100000, 0x101000), rng(0xfff000, 0x1002000)}
	if got := d.MemoryMap(); !slices.Equal(got, wantMap) {
		t.Errorf("MemoryMap = %v, want %v", got, wantMap)
	}
	checkRead(t, d, 0xfff000, 0x3000, testSeed) // through the duplicated kernel-text segment
	v := d.VCPUs()
	if len(v) != 1 || v[0].ID != 4242 || v[0].Regs.RIP != 0xffffffff81234567 || v[0].Regs.RSP != 0xffffc90000abc000 {
		t.Errorf("VCPUs = %+v", v)
	}
	info, ok := d.VMCoreInfo()
	if !ok || !strings.HasPrefix(info, "OSRELEASE=6.1.0-kdump\n") || strings.ContainsRune(info, 0) {
		t.Errorf("VMCoreInfo = %q, %v", info, ok)
	}
}

func TestOverlapDeterministic(t *testing.T) {
	// Two segments claim [0x1000, 0x2000): the one starting lower wins.
	a := bytes.Repeat([]byte{0xaa}, 0x2000)
	b := bytes.Repeat([]byte{0xbb}, 0x2000)
	for _, order := range [][]elfSeg{
		{{paddr: 0, data: a}, {paddr: 0x1000, data: b}},
		{{paddr: 0x1000, data: b}, {paddr: 0, data: a}},
	} {
		d := mustParse(t, buildELF(64, emX86_64, order, nil))
		if got, want := d.MemoryMap(), []vmi.Range{rng(0, 0x3000)}; !slices.Equal(got, want) {
			t.Errorf("MemoryMap = %v, want %v", got, want)
		}
		buf := make([]byte, 0x3000)
		if err := d.ReadPhys(buf, 0); err != nil {
			t.Fatal(err)
		}
		if buf[0x1fff] != 0xaa || buf[0x2000] != 0xbb || buf[0] != 0xaa {
			t.Errorf("overlap resolved as %x %x %x", buf[0], buf[0x1fff], buf[0x2000])
		}
	}
	// Equal starts: the earlier program header wins.
	d := mustParse(t, buildELF(64, emX86_64, []elfSeg{{paddr: 0x1000, data: b[:0x1000]}, {paddr: 0x1000, data: a}}, nil))
	buf := make([]byte, 0x2000)
	if err := d.ReadPhys(buf, 0x1000); err != nil {
		t.Fatal(err)
	}
	if buf[0] != 0xbb || buf[0x1000] != 0xaa {
		t.Errorf("tie resolved as %x %x", buf[0], buf[0x1000])
	}
	// Many ties (enough that an unstable sort would reorder them).
	var many []elfSeg
	for i := range 40 {
		many = append(many, elfSeg{paddr: 0x1000 * uint64(i%3), data: bytes.Repeat([]byte{byte(i)}, 0x1000)})
	}
	d = mustParse(t, buildELF(64, emX86_64, many, nil))
	buf = make([]byte, 0x3000)
	if err := d.ReadPhys(buf, 0); err != nil {
		t.Fatal(err)
	}
	if buf[0] != 0 || buf[0x1000] != 1 || buf[0x2000] != 2 {
		t.Errorf("ties resolved as %d %d %d, want 0 1 2 (first in file order)", buf[0], buf[0x1000], buf[0x2000])
	}
}

func TestNormalize(t *testing.T) {
	segs := []segment{
		{start: 0x5000, end: 0x6000, off: 0x100, fileLen: 0x1000},
		{start: 0, end: 0x2000, off: 0x2000, fileLen: 0x800},       // zero tail from 0x800
		{start: 0x1000, end: 0x3000, off: 0x9000, fileLen: 0x2000}, // overlaps: clipped to [0x2000,0x3000)
		{start: 0x1800, end: 0x1900},                               // inside: dropped
		{start: 0x7000, end: 0x7000},                               // empty: dropped
	}
	got, clipped := normalize(segs)
	want := []segment{
		{start: 0, end: 0x2000, off: 0x2000, fileLen: 0x800},
		{start: 0x2000, end: 0x3000, off: 0xa000, fileLen: 0x1000},
		{start: 0x5000, end: 0x6000, off: 0x100, fileLen: 0x1000},
	}
	if !slices.Equal(got, want) || clipped != 2 {
		t.Errorf("normalize = %+v (%d clipped), want %+v (2)", got, clipped, want)
	}
}

func TestPNXNum(t *testing.T) {
	data := buildELF(64, emX86_64, []elfSeg{{paddr: 0x2000, data: pattern(0x2000, 0x1000, 9)}}, nil)
	// Move the count into section header 0's sh_info, appended at the end.
	le := binary.LittleEndian
	shoff := len(data)
	data = append(data, make([]byte, shdr64Size)...)
	le.PutUint32(data[shoff+44:], 1)
	le.PutUint64(data[40:], uint64(shoff))
	le.PutUint16(data[58:], shdr64Size)
	le.PutUint16(data[60:], 1)
	le.PutUint16(data[56:], pnXNum)
	d := mustParse(t, data)
	checkRead(t, d, 0x2000, 0x1000, 9)
}

// TestELFErrors: malformed cores fail with a message that says what is
// wrong and with the right sentinel.
func TestELFErrors(t *testing.T) {
	good := func() []byte { return qemuELF64() }
	le := binary.LittleEndian
	ph := func(b []byte, i int) []byte { return b[ehdr64Size+i*phdr64Size:] } // 0 is PT_NOTE
	tests := []struct {
		name     string
		data     []byte
		sentinel error
		want     string
	}{
		{"exec", func() []byte { b := good(); le.PutUint16(b[16:], 2); return b }(), vmi.ErrUnsupported, "e_type is ET_EXEC (2), not ET_CORE (4)"},
		{"shared object", func() []byte { b := good(); le.PutUint16(b[16:], 3); return b }(), vmi.ErrUnsupported, "ET_DYN"},
		{"arm64", func() []byte { b := good(); le.PutUint16(b[18:], 183); return b }(), vmi.ErrUnsupported, "e_machine 183"},
		{"big endian", func() []byte { b := good(); b[5] = 2; return b }(), vmi.ErrUnsupported, "little-endian"},
		{"bad class", func() []byte { b := good(); b[4] = 9; return b }(), vmi.ErrFormat, "EI_CLASS 9"},
		{"no phdrs", func() []byte { b := good(); le.PutUint16(b[56:], 0); return b }(), vmi.ErrFormat, "e_phnum 0"},
		{"small phentsize", func() []byte { b := good(); le.PutUint16(b[54:], 32); return b }(), vmi.ErrFormat, "e_phentsize 32"},
		{"phoff huge", func() []byte { b := good(); le.PutUint64(b[32:], ^uint64(0)-8); return b }(), vmi.ErrFormat, "program header table at 0xfffffffffffffff7"},
		{"load beyond file", func() []byte { b := good(); le.PutUint64(ph(b, 2)[8:], 1<<40); return b }(), vmi.ErrFormat, "program header 2 (PT_LOAD): offset 0x10000000000+0x2000 beyond file size"},
		{"load offset overflow", func() []byte { b := good(); le.PutUint64(ph(b, 2)[8:], ^uint64(0)); return b }(), vmi.ErrFormat, "offset 0xffffffffffffffff+0x2000 beyond file size"},
		{"note beyond file", func() []byte { b := good(); le.PutUint64(ph(b, 0)[32:], 1<<30); return b }(), vmi.ErrFormat, "program header 0 (PT_NOTE)"},
		{"note offset overflow", func() []byte { b := good(); le.PutUint64(ph(b, 0)[8:], ^uint64(0)-3); return b }(), vmi.ErrFormat, "program header 0 (PT_NOTE): offset 0xfffffffffffffffc+"},
		{"filesz > memsz", func() []byte { b := good(); le.PutUint64(ph(b, 1)[40:], 0x10); return b }(), vmi.ErrFormat, "p_filesz 0x3000 larger than p_memsz 0x10"},
		{"paddr overflow", func() []byte { b := good(); le.PutUint64(ph(b, 1)[24:], ^uint64(0)-0x10); return b }(), vmi.ErrFormat, "overflows 64 bits"},
		{"process core", buildELF(64, emX86_64, []elfSeg{{data: make([]byte, 16)}, {data: make([]byte, 16)}}, nil), vmi.ErrUnsupported, "process core dump"},
		{"no loads", buildELF(64, emX86_64, nil, []elfNote{prstatus64(1, 0, 0)}), vmi.ErrFormat, "no PT_LOAD"},
		{"only empty loads", buildELF(64, emX86_64, []elfSeg{{paddr: 0x1000}}, nil), vmi.ErrFormat, "no memory"},
		{"note overrun", func() []byte {
			b := good()
			le.PutUint32(b[le.Uint64(ph(b, 0)[8:])+4:], 1<<20) // first note's descsz
			return b
		}(), vmi.ErrFormat, "overruns the"},
		{"short QEMU note", buildELF(64, emX86_64, []elfSeg{{paddr: 0x1000, data: make([]byte, 16)}},
			[]elfNote{{"QEMU", 0, func() []byte { d := make([]byte, 400); d[0], d[4] = 1, 144; return d }()}}), vmi.ErrFormat, "too short for cr[]"},
		{"QEMU note version 0", buildELF(64, emX86_64, []elfSeg{{paddr: 0x1000, data: make([]byte, 16)}},
			[]elfNote{{"QEMU", 0, make([]byte, 440)}}), vmi.ErrFormat, "version 0"},
		{"PN_XNUM without sections", func() []byte { b := good(); le.PutUint16(b[56:], pnXNum); return b }(), vmi.ErrFormat, "PN_XNUM"},
		{"too many phdrs", func() []byte {
			b := good()
			shoff := len(b)
			b = append(b, make([]byte, shdr64Size)...)
			le.PutUint32(b[shoff+44:], maxPhnum+1)
			le.PutUint64(b[40:], uint64(shoff))
			le.PutUint16(b[58:], shdr64Size)
			le.PutUint16(b[56:], pnXNum)
			return b
		}(), vmi.ErrLimit, "more than the limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("core.elf", tt.data)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, tt.sentinel) {
				t.Errorf("error %q is not %v", err, tt.sentinel)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "ELF core core.elf: ") {
				t.Errorf("error %q does not start with \"ELF core core.elf: \" and contain %q", err, tt.want)
			}
		})
	}
}

// TestELFTruncated cuts each synthetic core at every offset: the result is
// an error that says the file is truncated (or a header lies beyond its
// end), never a panic and never a half-working target.
func TestELFTruncated(t *testing.T) {
	for _, c := range []struct {
		name string
		data []byte
	}{{"elf64", qemuELF64()}, {"elf32", qemuELF32()}, {"kdump", kdumpELF64()}} {
		t.Run(c.name, func(t *testing.T) {
			step := 1
			for cut := 4; cut < len(c.data); cut += step {
				if cut > 0x1000 {
					step = 61 // in the segment data every cut fails the same way
				}
				_, err := Parse("cut.elf", c.data[:cut])
				if err == nil {
					t.Fatalf("cut at %#x: no error", cut)
				}
				if !errors.Is(err, vmi.ErrFormat) {
					t.Fatalf("cut at %#x: %v is not ErrFormat", cut, err)
				}
				msg := err.Error()
				if !strings.Contains(msg, "truncated") && !strings.Contains(msg, "beyond file size") && !strings.Contains(msg, "overruns") {
					t.Fatalf("cut at %#x: unclear error %q", cut, msg)
				}
			}
		})
	}
}

func TestReadAfterClose(t *testing.T) {
	d := mustParse(t, qemuELF64())
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.ReadPhys(make([]byte, 8), 0); err == nil {
		t.Fatal("read after Close succeeded")
	}
	if err := d.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
}
