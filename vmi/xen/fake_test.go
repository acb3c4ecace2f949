package xen

import (
	"fmt"
	"slices"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/xascript/xascript/vmi"
)

// fakeHV is a hypervisor that serves one domain from a vmi.PhysReader. Its
// replies are encoded with the offsets read by offsetof() from Xen 4.17's
// public headers, written out here as literals on purpose: a wrong entry in
// the abi table then fails these tests instead of agreeing with itself.
type fakeHV struct {
	domain  uint16
	version uint32
	mem     vmi.PhysReader
	ranges  []vmi.Range // frames outside these fail to map
	hvm     bool
	cpu     vmi.CPUState
	shared  uint64 // shared_info frame (PV)
	pages   uint64
	dying   bool

	paused      int
	onDomctl    func(f *fakeHV) // called before each domctl is answered (a test's clock)
	mapped      map[*byte]int   // outstanding mappings
	mapCalls    int
	unmapCalls  int
	closeCalled bool
}

func (f *fakeHV) Version() (uint32, string, error) { return f.version, ".0-fake", nil }

func (f *fakeHV) Domctl(dc []byte, buf []byte, handleOff int) error {
	if f.onDomctl != nil {
		f.onDomctl(f)
	}
	if le.Uint32(dc[4:]) != 0x15 {
		return unix.EACCES // what Xen answers to a wrong interface_version
	}
	if le.Uint16(dc[8:]) != f.domain {
		return unix.ESRCH
	}
	u := dc[16:]
	switch le.Uint32(dc[0:]) {
	case 5: // getdomaininfo
		var flags uint32
		if f.hvm {
			flags |= 1 << 1
		}
		if f.paused > 0 {
			flags |= 1 << 3
		}
		if f.dying {
			flags |= 1 << 0
		}
		le.PutUint16(u[0:], f.domain)
		le.PutUint32(u[4:], flags)
		le.PutUint64(u[8:], f.pages)
		le.PutUint64(u[16:], f.pages)
		le.PutUint64(u[48:], f.shared)
		le.PutUint32(u[68:], 0) // max_vcpu_id
	case 13: // getvcpucontext: PV only
		if f.hvm || handleOff != 16+8 || len(buf) < 5168 {
			return unix.EINVAL
		}
		le.PutUint64(buf[4984:], f.cpu.CR0)
		le.PutUint64(buf[4984+24:], f.cpu.CR3)
		le.PutUint64(buf[4984+32:], f.cpu.CR4)
	case 55: // gethvmcontext_partial
		if !f.hvm || le.Uint32(u[0:]) != 2 || le.Uint32(u[4:]) != 0 || le.Uint64(u[8:]) < 1032 || handleOff != 16+16 {
			return unix.EINVAL
		}
		le.PutUint64(buf[656:], f.cpu.CR0)
		le.PutUint64(buf[672:], f.cpu.CR3)
		le.PutUint64(buf[680:], f.cpu.CR4)
		le.PutUint64(buf[992:], f.cpu.EFER)
	case 3:
		f.paused++
	case 4:
		if f.paused == 0 {
			return unix.EINVAL
		}
		f.paused--
	default:
		return unix.ENOSYS
	}
	return nil
}

func (f *fakeHV) MaximumGpfn(domain uint16) (uint64, error) {
	last := f.ranges[len(f.ranges)-1]
	return last.End/pageSize - 1, nil
}

func (f *fakeHV) backed(fn uint64) bool {
	for _, r := range f.ranges {
		if r.Contains(fn * pageSize) {
			return true
		}
	}
	return false
}

func (f *fakeHV) MapFrames(domain uint16, frames []uint64, writable bool) ([]byte, []int32, error) {
	if domain != f.domain {
		return nil, nil, unix.ESRCH
	}
	if writable {
		// Its maps are copies: a write there would reach nobody.
		// Writes are tested with sharedHV (write_test.go).
		return nil, nil, unix.EPERM
	}
	f.mapCalls++
	mem := make([]byte, len(frames)*pageSize)
	errs := make([]int32, len(frames))
	for i, fn := range frames {
		if !f.backed(fn) || f.mem.ReadPhys(mem[i*pageSize:(i+1)*pageSize], fn*pageSize) != nil {
			errs[i] = -int32(unix.EINVAL)
		}
	}
	if f.mapped == nil {
		f.mapped = map[*byte]int{}
	}
	f.mapped[&mem[0]] = len(frames)
	return mem, errs, nil
}

func (f *fakeHV) Unmap(mem []byte) error {
	f.unmapCalls++
	if _, ok := f.mapped[&mem[0]]; !ok {
		return fmt.Errorf("unmap of %p: not mapped", unsafe.Pointer(&mem[0]))
	}
	delete(f.mapped, &mem[0])
	return nil
}

func (f *fakeHV) Close() error { f.closeCalled = true; return nil }

// pageMem is machine memory made of individual pages, for PV tests.
type pageMem map[uint64]*[pageSize]byte

func (m pageMem) ReadPhys(buf []byte, pa uint64) error {
	for len(buf) > 0 {
		p, ok := m[pa/pageSize]
		if !ok {
			return &vmi.PhysError{Addr: pa, Err: vmi.ErrNotPresent}
		}
		n := copy(buf, p[pa%pageSize:])
		buf, pa = buf[n:], pa+uint64(n)
	}
	return nil
}

func (m pageMem) ranges() []vmi.Range {
	var frames []uint64
	for f := range m {
		frames = append(frames, f)
	}
	slices.Sort(frames)
	return framesToRanges(frames)
}
