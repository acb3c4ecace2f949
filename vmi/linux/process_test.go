package linux

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/linux/symbols"
	"github.com/xascript/xascript/vmi/paging"
	"github.com/xascript/xascript/vmi/types"
)

// A synthetic x86-64 guest for the edge cases that real guests do not
// show: 8 MiB of RAM, the kernel's direct map at 0xffff888000000000 through
// one 1 GiB page, and page tables and structs laid out by hand below.
const (
	direct   = 0xffff888000000000
	kRoot    = 0x1000 // kernel PML4
	kPDPT    = 0x2000
	uPML4    = 0x10000 // the process's mm->pgd
	uPDPT    = 0x11000
	uPD      = 0x12000
	uPT      = 0x13000
	dataPage = 0x20000
	initTask = 0x100000 // task_struct of init_task
	task1    = 0x101000 // pid 1
	task2    = 0x102000 // pid 2, a kernel thread
	mm1      = 0x110000
	vma1     = 0x120000
	vma2     = 0x120100
	leaf     = 0x130000 // maple leaf
	file1    = 0x140000
	dentryF  = 0x150000 // "prog"
	dentryB  = 0x150100 // "bin"
	dentryR  = 0x150200 // "/"
)

// The fake layout: offsets of the members process.go and vma.go read.
var fakeOffsets = map[string]uint64{
	"task_struct.tasks": 0x10, "task_struct.pid": 0x20, "task_struct.comm": 0x30, "task_struct.mm": 0x40,
	"mm_struct.pgd": 0x8, "mm_struct.mm_mt.ma_root": 0x18,
	"vm_area_struct.vm_start": 0, "vm_area_struct.vm_end": 8, "vm_area_struct.vm_mm": 0x10,
	"vm_area_struct.vm_flags": 0x18, "vm_area_struct.vm_pgoff": 0x20, "vm_area_struct.vm_file": 0x28,
	"file.f_path.dentry": 0x18, "dentry.d_parent": 0x8, "dentry.d_name.name": 0x20,
}

// fakeTypes is the fake layout as a type graph: every struct 0x100 bytes,
// each member path a chain of anonymous structs whose last member sits at
// its offset.
type fakeTypes struct{}

func (fakeTypes) Graph() types.Graph {
	u64 := &types.Type{Kind: types.Int, Name: "long unsigned int", Size: 8}
	set := types.NewSet("fake")
	structs := map[string]*types.Type{}
	for path, off := range fakeOffsets {
		comps := strings.Split(path, ".")
		st := structs[comps[0]]
		if st == nil {
			st = &types.Type{Kind: types.Struct, Name: comps[0], Size: 0x100}
			structs[comps[0]] = st
			set.Add(st)
		}
		for i, name := range comps[1:] {
			last := i == len(comps)-2
			var m *types.Member
			for j := range st.Members {
				if st.Members[j].Name == name {
					m = &st.Members[j]
				}
			}
			if m == nil {
				mt := u64
				bits := off * 8
				if !last {
					mt, bits = &types.Type{Kind: types.Struct, Size: 0x100}, 0
				}
				st.Members = append(st.Members, types.Member{Name: name, BitOffset: bits, Type: mt})
				m = &st.Members[len(st.Members)-1]
			}
			st = m.Type
		}
	}
	return set
}

type fakeRAM struct{ b []byte }

func (r *fakeRAM) ReadPhys(buf []byte, pa uint64) error {
	if pa > uint64(len(r.b)) || uint64(len(buf)) > uint64(len(r.b))-pa {
		return &vmi.PhysError{Addr: pa, Err: vmi.ErrNotPresent}
	}
	copy(buf, r.b[pa:])
	return nil
}
func (r *fakeRAM) MemoryMap() []vmi.Range { return []vmi.Range{{Start: 0, End: uint64(len(r.b))}} }
func (r *fakeRAM) CPU() vmi.CPUState      { return vmi.CPUState{} }
func (r *fakeRAM) Kind() string           { return "synthetic" }
func (r *fakeRAM) Close() error           { return nil }
func (r *fakeRAM) put(pa, v uint64)       { binary.LittleEndian.PutUint64(r.b[pa:], v) }

// fakeKernel builds the guest: init_task -> pid 1 -> pid 2 -> init_task on
// the task list; pid 1 has two VMAs (0x400000-0x404000 of /bin/prog, with
// pages present, swapped out, PROT_NONE and never faulted, and an
// anonymous 0x600000-0x601000); pid 2 has no mm.
func fakeKernel(t *testing.T) (*Kernel, *fakeRAM) {
	r := &fakeRAM{b: make([]byte, 8<<20)}
	const p, ps = 1, 1 << 7
	r.put(kRoot+8*((direct>>39)&0x1ff), kPDPT|p|2)
	r.put(kPDPT, 0|p|ps|2) // 1 GiB page at 0
	// The process: 0x400000 is PML4 0, PDPT 0, PD 2, PT 0..3.
	r.put(uPML4, uPDPT|p|2|4)
	r.put(uPDPT, uPD|p|2|4)
	r.put(uPD+8*2, uPT|p|2|4)
	r.put(uPT+0, dataPage|p|4)
	r.put(uPT+8, 0x5a5a0000)     // a swap entry: not present, not zero
	r.put(uPT+16, 0x21000|0x100) // _PAGE_PROTNONE
	copy(r.b[dataPage:], "user data\x00")
	tasks := []uint64{initTask, task1, task2}
	for i, task := range tasks {
		next := tasks[(i+1)%len(tasks)]
		r.put(task+0x10, direct+next+0x10)
		binary.LittleEndian.PutUint32(r.b[task+0x20:], uint32(i))
		copy(r.b[task+0x30:], []string{"swapper/0", "prog", "kthreadd"}[i])
	}
	r.put(task1+0x40, direct+mm1)
	r.put(mm1+0x8, direct+uPML4)
	r.put(mm1+0x18, direct+leaf|1<<3|4|2) // a leaf node, the root (MAPLE_ENODE_NULL, MAPLE_ROOT_NODE)
	// leaf: pivots 0x3fffff, 0x403fff, 0x5fffff, 0x600fff; slots NULL, vma1, NULL, vma2, NULL; meta.end 4.
	for i, pv := range []uint64{0x3fffff, 0x403fff, 0x5fffff, 0x600fff} {
		r.put(leaf+8+8*uint64(i), pv)
	}
	r.put(leaf+128+8, direct+vma1)
	r.put(leaf+128+24, direct+vma2)
	r.b[leaf+248] = 4
	for _, v := range []struct{ at, start, end, flags, file uint64 }{
		{vma1, 0x400000, 0x404000, 0x75, direct + file1},
		{vma2, 0x600000, 0x601000, 0x73, 0},
	} {
		r.put(v.at, v.start)
		r.put(v.at+8, v.end)
		r.put(v.at+0x10, direct+mm1)
		r.put(v.at+0x18, v.flags)
		r.put(v.at+0x28, v.file)
	}
	r.put(file1+0x18, direct+dentryF)
	for _, d := range []struct {
		at, parent uint64
		name       string
	}{{dentryF, dentryB, "prog"}, {dentryB, dentryR, "bin"}, {dentryR, dentryR, "/"}} {
		r.put(d.at+0x8, direct+d.parent)
		r.put(d.at+0x20, direct+d.at+0x80)
		copy(r.b[d.at+0x80:], d.name+"\x00")
	}
	k := &Kernel{Target: r, Space: paging.New(r, paging.IA32e, kRoot),
		Syms:   symbols.FromList("test", []symbols.Symbol{{Addr: direct + initTask, Type: 'D', Name: "init_task"}}),
		Layout: Layout{Mode: paging.IA32e}}
	k.types = fakeTypes{}
	k.typesOnce.Do(func() {})
	return k, r
}

func TestProcessSynthetic(t *testing.T) {
	k, r := fakeKernel(t)
	p, err := k.Process(1)
	if err != nil {
		t.Fatal(err)
	}
	if i := p.Info(); i.Comm != "prog" || i.Root != uPML4 || i.MM != direct+mm1 {
		t.Errorf("info %+v", i)
	}
	s, err := p.ReadUintVirt(0x400000, 8)
	if err != nil || s != binary.LittleEndian.Uint64([]byte("user dat")) {
		t.Errorf("read: %#x, %v", s, err)
	}
	vmas, err := p.VMAs()
	if got := fmt.Sprint(vmas); err != nil || got != "[{4194304 4210688 117 0 18446612682071343104 /bin/prog } {6291456 6295552 115 0 0  }]" {
		t.Errorf("VMAs: %s, %v", got, err)
	}
	for va, want := range map[uint64]vmi.PageFaultReason{
		0x401000: vmi.FaultSwappedOut, 0x402000: vmi.FaultProtNone, 0x403000: vmi.FaultNotFaulted,
		0x600000: vmi.FaultNotFaulted, 0x800000: vmi.FaultNotMapped, 0x7fff0000: vmi.FaultNotMapped,
	} {
		_, err := p.ReadUintVirt(va, 4)
		var pf *vmi.PageFault
		if !errors.As(err, &pf) || pf.Reason != want || !errors.Is(err, vmi.ErrNotPresent) || pf.VA != va {
			t.Errorf("read %#x: %v; want %v", va, err, want)
		}
	}
	if _, err := p.Translate(0x401000); !strings.Contains(fmt.Sprint(err), "swapped out (swap entry 0x5a5a0000)") {
		t.Errorf("translate of a swapped-out page: %v", err)
	}
	if _, err := k.Process(2); !errors.Is(err, vmi.ErrNoAddressSpace) || !strings.Contains(err.Error(), "pid 2 (kthreadd") {
		t.Errorf("kernel thread: %v", err)
	}
	if _, err := k.Process(3); !errors.Is(err, vmi.ErrNotFound) {
		t.Errorf("no pid 3: %v", err)
	}
	if _, err := k.Process(0); !errors.Is(err, vmi.ErrNoAddressSpace) {
		t.Errorf("pid 0 (swapper, mm NULL): %v", err)
	}

	// A task list that loops back to pid 1 instead of the head.
	r.put(task2+0x10, direct+task1+0x10)
	k.Space.Flush()
	if _, err := k.Process(3); !errors.Is(err, vmi.ErrFormat) || !strings.Contains(err.Error(), "loops back") {
		t.Errorf("cyclic task list: %v", err)
	}
	// A dentry chain that never reaches a root: bounded, and the VMA says why.
	r.put(dentryR+0x8, direct+dentryB)
	k.Space.Flush()
	vmas, err = p.VMAs()
	if err != nil || !strings.Contains(vmas[0].FileErr, "more than 2048 dentries") {
		t.Errorf("cyclic dentries: %+v, %v", vmas, err)
	}
	// A VMA of another mm.
	r.put(vma2+0x10, direct+0x999000)
	k.Space.Flush()
	if _, err := p.VMAs(); !errors.Is(err, vmi.ErrFormat) || !strings.Contains(err.Error(), "belongs to mm") {
		t.Errorf("foreign VMA: %v", err)
	}
	// A misaligned pgd.
	r.put(mm1+0x8, direct+uPML4+8)
	k.Space.Flush()
	if _, err := k.ProcessOf(direct + task1); !errors.Is(err, vmi.ErrFormat) {
		t.Errorf("misaligned pgd: %v", err)
	}
	// A kernel with neither mm_mt nor mmap.
	delete(fakeOffsets, "mm_struct.mm_mt.ma_root")
	defer func() { fakeOffsets["mm_struct.mm_mt.ma_root"] = 0x18 }()
	k.graph, k.graphOnce = nil, sync.Once{} // the graph is built once per kernel
	if _, err := p.VMAs(); !errors.Is(err, vmi.ErrNotFound) || !strings.Contains(err.Error(), "neither mm_mt nor mmap") {
		t.Errorf("no VMA container: %v", err)
	}
}

// Kernels before 6.1 list VMAs on mm->mmap through vm_next.
func TestVMAListBefore61(t *testing.T) {
	k, r := fakeKernel(t)
	delete(fakeOffsets, "mm_struct.mm_mt.ma_root")
	fakeOffsets["mm_struct.mmap"], fakeOffsets["vm_area_struct.vm_next"] = 0x30, 0x30
	defer func() {
		fakeOffsets["mm_struct.mm_mt.ma_root"] = 0x18
		delete(fakeOffsets, "mm_struct.mmap")
		delete(fakeOffsets, "vm_area_struct.vm_next")
	}()
	r.put(mm1+0x30, direct+vma1)
	r.put(vma1+0x30, direct+vma2)
	p, err := k.Process(1)
	if err != nil {
		t.Fatal(err)
	}
	vmas, err := p.VMAs()
	if got := fmt.Sprint(vmas); err != nil || got != "[{4194304 4210688 117 0 18446612682071343104 /bin/prog } {6291456 6295552 115 0 0  }]" {
		t.Errorf("VMAs: %s, %v", got, err)
	}
	r.put(vma2+0x30, direct+vma1) // a cycle
	k.Space.Flush()
	if _, err := p.VMAs(); !errors.Is(err, vmi.ErrFormat) || !strings.Contains(err.Error(), "twice") {
		t.Errorf("cyclic mmap list: %v", err)
	}
	r.put(vma2+0x30, direct+vma2+0x1000) // a later VMA that starts before the last ended
	r.put(vma2+0x1000, 0x500000)
	r.put(vma2+0x1008, 0x501000)
	r.put(vma2+0x1010, direct+mm1)
	k.Space.Flush()
	if _, err := p.VMAs(); !errors.Is(err, vmi.ErrFormat) || !strings.Contains(err.Error(), "precedes") {
		t.Errorf("unordered mmap list: %v", err)
	}
}

// A thread id is found on its leader's thread list (thread_group before
// 6.7), and a thread list that loops is an error.
func TestFindThread(t *testing.T) {
	k, r := fakeKernel(t)
	fakeOffsets["task_struct.thread_group"] = 0x50
	defer delete(fakeOffsets, "task_struct.thread_group")
	const task3 = 0x103000
	binary.LittleEndian.PutUint32(r.b[task3+0x20:], 5)
	copy(r.b[task3+0x30:], "prog-worker")
	r.put(task3+0x40, direct+mm1)
	for _, task := range []uint64{initTask, task2} { // rings of one
		r.put(task+0x50, direct+task+0x50)
	}
	r.put(task1+0x50, direct+task3+0x50)
	r.put(task3+0x50, direct+task1+0x50)
	p, err := k.Process(5)
	if err != nil {
		t.Fatal(err)
	}
	if i := p.Info(); i.PID != 5 || i.Task != direct+task3 || i.MM != direct+mm1 || i.Comm != "prog-worker" {
		t.Errorf("thread 5: %+v", i)
	}
	if _, err := k.Process(6); !errors.Is(err, vmi.ErrNotFound) {
		t.Errorf("no thread 6: %v", err)
	}
	r.put(task3+0x50, direct+task3+0x50) // a ring that never returns to its leader
	k.Space.Flush()
	if _, err := k.Process(6); !errors.Is(err, vmi.ErrFormat) || !strings.Contains(err.Error(), "loops back") {
		t.Errorf("cyclic thread list: %v", err)
	}
}
