package linux

import (
	"encoding/binary"
	"testing"

	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/linux/symbols"
	"github.com/xascript/xascript/vmi/linux/vmcoreinfo"
)

// fuzzTarget is guest memory made of the fuzzer's bytes repeated over a
// memory map the fuzzer also chooses: page tables, banners and pointers are
// all attacker-controlled.
type fuzzTarget struct {
	mem  []byte
	ram  []vmi.Range
	cpu  vmi.CPUState
	kind string
}

func (f *fuzzTarget) ReadPhys(buf []byte, pa uint64) error {
	for i := range buf {
		a := pa + uint64(i)
		in := false
		for _, r := range f.ram {
			if r.Contains(a) {
				in = true
				break
			}
		}
		if !in || len(f.mem) == 0 {
			return &vmi.PhysError{Addr: a, Err: vmi.ErrNotPresent}
		}
		buf[i] = f.mem[a%uint64(len(f.mem))]
	}
	return nil
}
func (f *fuzzTarget) MemoryMap() []vmi.Range { return f.ram }
func (f *fuzzTarget) CPU() vmi.CPUState      { return f.cpu }
func (f *fuzzTarget) Kind() string           { return f.kind }
func (f *fuzzTarget) Close() error           { return nil }

const fuzzSyms64 = `ffffffff81000000 T _text
ffffffff82000020 D linux_banner
ffffffff82a10000 D init_top_pgt
`

const fuzzSyms32 = `c1000000 T _text
c1800020 D linux_banner
c1c00000 D swapper_pg_dir
`

// FuzzLocate: whatever memory holds, Locate returns a layout or an error;
// it never panics and its work is bounded.
func FuzzLocate(f *testing.F) {
	banner := append([]byte("Linux version 6.1.0"), 0)
	f.Add(banner, uint64(0x80050033), uint64(0x1000), uint64(0x6b0), uint64(0xd01), true, true, uint64(64<<20))
	f.Add(banner, uint64(0), uint64(0), uint64(0), uint64(0), false, false, uint64(128<<20))
	pt := make([]byte, 4096)
	for i := 0; i < 512; i++ {
		binary.LittleEndian.PutUint64(pt[i*8:], 0x83|uint64(i)<<21) // 2 MiB pages everywhere
	}
	f.Add(append(pt, banner...), uint64(0x80050033), uint64(0), uint64(0x20), uint64(0), true, false, uint64(1<<30))
	f.Fuzz(func(t *testing.T, mem []byte, cr0, cr3, cr4, efer uint64, known, is64 bool, ramSize uint64) {
		src := fuzzSyms32
		if is64 {
			src = fuzzSyms64
		}
		syms, err := symbols.Parse([]byte(src), "fuzz.map")
		if err != nil {
			t.Fatal(err)
		}
		ramSize %= 4 << 30 // up to 4 GiB of "RAM": 2048 banner probes at most
		tg := &fuzzTarget{mem: mem, ram: []vmi.Range{{Start: 0, End: ramSize}}, kind: "fuzz"}
		if known {
			tg.cpu = vmi.CPUState{Known: true, CR0: cr0, CR3: cr3, CR4: cr4, EFER: efer}
		}
		l, space, err := Locate(tg, syms)
		if err == nil && (space == nil || len(l.Banner) > maxBannerLen) {
			t.Fatalf("layout without a space or with an oversized banner: %+v", l)
		}
	})
}

const fuzzText32 = `c1000000 T _text
c1000000 T _stext
`

const fuzzVmcoreinfo32 = "OSRELEASE=6.1.0-fuzz\nPAGESIZE=4096\nSYMBOL(init_uts_ns)=c1a00000\n" +
	"OFFSET(uts_namespace.name)=4\nSYMBOL(swapper_pg_dir)=c1c00000\nSYMBOL(_stext)=c1000000\n"

// FuzzLocateVmcoreinfo: a table of text symbols only, located through
// VMCOREINFO's init_uts_ns and swapper_pg_dir: whatever memory holds, a
// layout or an error, never a panic.
func FuzzLocateVmcoreinfo(f *testing.F) {
	uts := make([]byte, 4+3*utsFieldLen)
	copy(uts[4:], "Linux")
	copy(uts[4+2*utsFieldLen:], "6.1.0-fuzz\x00")
	f.Add(uts, uint64(0x80050033), uint64(0x1000), uint64(0x6b0), false, uint64(64<<20))
	f.Add(uts, uint64(0), uint64(0), uint64(0), true, uint64(32<<20))
	f.Fuzz(func(t *testing.T, mem []byte, cr0, cr3, cr4 uint64, known bool, ramSize uint64) {
		syms, err := symbols.Parse([]byte(fuzzText32), "fuzz.map")
		if err != nil {
			t.Fatal(err)
		}
		in, err := vmcoreinfo.Parse([]byte(fuzzVmcoreinfo32))
		if err != nil {
			t.Fatal(err)
		}
		ramSize %= 1 << 30
		tg := &fuzzTarget{mem: mem, ram: []vmi.Range{{Start: 0, End: ramSize}}, kind: "fuzz"}
		if known {
			tg.cpu = vmi.CPUState{Known: true, CR0: cr0, CR3: cr3, CR4: cr4}
		}
		l, space, err := locate(tg, syms, in)
		if err == nil && (space == nil || len(l.Banner) > 4*utsFieldLen) {
			t.Fatalf("layout without a space or with an oversized banner: %+v", l)
		}
	})
}
