package xen

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/xascript/xascript/integration"
	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/dump"
	"github.com/xascript/xascript/vmi/linux"
)

// sharedHV is fakeHV with machine memory that mappings share, as Xen's
// foreign mappings do: the domain's frames live in a memfd, and every
// MapFrames is a real shared mmap of it with the protection asked for, so a
// write through one mapping is seen by every other and by the domain, and a
// store through a read-only mapping would fault.
type sharedHV struct {
	*fakeHV
	fd     int
	size   uint64
	refuse map[uint64]bool // frames Xen will not map writable (a PV page table)
	// writableMaps counts MapFrames calls that asked for writes, and
	// frames written how many frames they mapped.
	writableMaps, writableFrames int
	maps                         map[*byte][]byte
}

func newSharedHV(t testing.TB, f *fakeHV) *sharedHV {
	t.Helper()
	fd, err := unix.MemfdCreate("xascript-fake-xen", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	last := f.ranges[len(f.ranges)-1].End
	size := (last/(chunkFrames*pageSize) + 2) * chunkFrames * pageSize // every chunk lies inside
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		t.Fatal(err)
	}
	page := make([]byte, pageSize)
	zero := make([]byte, pageSize)
	for _, r := range f.ranges {
		for pa := r.Start; pa < r.End; pa += pageSize {
			if err := f.mem.ReadPhys(page, pa); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(page, zero) { // the memfd stays sparse
				if _, err := unix.Pwrite(fd, page, int64(pa)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return &sharedHV{fakeHV: f, fd: fd, size: size, maps: map[*byte][]byte{}}
}

func (s *sharedHV) MapFrames(domain uint16, frames []uint64, writable bool) ([]byte, []int32, error) {
	if domain != s.domain {
		return nil, nil, unix.ESRCH
	}
	s.mapCalls++
	prot := unix.PROT_READ
	if writable {
		prot |= unix.PROT_WRITE
		s.writableMaps++
		s.writableFrames += len(frames)
	}
	// Address space for the batch, then each frame mapped over its slot;
	// a frame Xen would not map stays inaccessible there.
	mem, err := unix.Mmap(-1, 0, len(frames)*pageSize, unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, nil, err
	}
	errs := make([]int32, len(frames))
	for i, fn := range frames {
		if !s.backed(fn) || (fn+1)*pageSize > s.size || writable && s.refuse[fn] {
			errs[i] = -int32(unix.EINVAL)
			continue
		}
		if _, err := unix.MmapPtr(s.fd, int64(fn*pageSize), unsafe.Pointer(&mem[i*pageSize]), pageSize, prot, unix.MAP_SHARED|unix.MAP_FIXED); err != nil {
			unix.Munmap(mem)
			return nil, nil, err
		}
	}
	s.maps[&mem[0]] = mem
	return mem, errs, nil
}

func (s *sharedHV) Unmap(mem []byte) error {
	if _, ok := s.maps[&mem[0]]; !ok {
		return errors.New("unmap of a mapping not made")
	}
	delete(s.maps, &mem[0])
	return unix.Munmap(mem)
}

// machine reads the domain's memory as Xen holds it, past every cache.
func (s *sharedHV) machine(t testing.TB, ma uint64, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := unix.Pread(s.fd, b, int64(ma)); err != nil {
		t.Fatal(err)
	}
	return b
}

// A real kernel, served as an HVM domain, tampered through the kernel's
// page tables: init_task's comm is overwritten in place. The write reaches
// the domain's memory, reads through the frame cache (which mapped that
// frame before the write) see it, and so does a second target attached to
// the same domain.
func TestWriteRealKernelThroughXen(t *testing.T) {
	if os.Getenv("XASCRIPT_IMAGES") == "" {
		t.Setenv("XASCRIPT_IMAGES", "../../testdata/images")
	}
	img, err := integration.LoadImage("x86_64-4level")
	if err != nil {
		t.Fatal(err)
	}
	d, err := dump.Open(img.Path("mem.elf.zst"), dump.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	hv := newSharedHV(t, &fakeHV{domain: 3, version: 4<<16 | 17, mem: d, ranges: d.MemoryMap(), hvm: true,
		cpu: d.CPU(), pages: d.MemoryMap()[len(d.MemoryMap())-1].End / pageSize})

	// Read-only by default: no frame is ever mapped writable, and writes
	// fail, through the kernel and physically alike.
	ro, err := open(hv, 3, Options{})
	if err != nil {
		t.Fatal(err)
	}
	k, err := linux.Open(ro, linux.Options{})
	if err != nil {
		t.Fatal(err)
	}
	it, err := k.Symbol("init_task")
	if err != nil {
		t.Fatal(err)
	}
	commOff, err := k.Offsetof("task_struct", "comm")
	if err != nil {
		t.Fatal(err)
	}
	comm := it + commOff
	before := make([]byte, 16)
	if err := k.ReadVirt(before, comm); err != nil || !bytes.HasPrefix(before, []byte("swapper/0\x00")) {
		t.Fatalf("init_task.comm = %q, %v", before, err)
	}
	pa, err := k.Translate(comm)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.WriteVirt([]byte("tampered"), comm); !errors.Is(err, vmi.ErrReadOnly) {
		t.Errorf("write to a read-only domain: %v", err)
	}
	if err := ro.WritePhys([]byte("x"), pa); !errors.Is(err, vmi.ErrReadOnly) || !strings.Contains(err.Error(), "opened read-only") {
		t.Errorf("physical write to a read-only domain: %v", err)
	}
	if hv.writableMaps != 0 {
		t.Errorf("a read-only target mapped %d times writable", hv.writableMaps)
	}
	if got := hv.machine(t, pa, 16); !bytes.Equal(got, before) {
		t.Fatal("a refused write changed the domain")
	}
	ro.Close()

	tg, err := open(hv, 3, Options{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	k, err = linux.Open(tg, linux.Options{})
	if err != nil {
		t.Fatal(err)
	}
	k.ReadVirt(make([]byte, 16), comm) // the frame is in the cache now
	if err := k.WriteVirt([]byte("tampered\x00"), comm); err != nil {
		t.Fatal(err)
	}
	if hv.writableMaps != 1 || hv.writableFrames != 1 {
		t.Errorf("%d writable maps of %d frames for a 9-byte write, want one of one", hv.writableMaps, hv.writableFrames)
	}
	if got := hv.machine(t, pa, 9); string(got) != "tampered\x00" {
		t.Errorf("domain memory holds %q", got)
	}
	got := make([]byte, 9)
	if err := k.ReadVirt(got, comm); err != nil || string(got) != "tampered\x00" {
		t.Errorf("read after write: %q, %v", got, err)
	}
	if len(hv.maps) == 0 {
		t.Error("the frame cache holds no mapping: the read after the write was not through a cache")
	}
	if v, err := k.Validate(); err == nil {
		t.Errorf("Validate still finds %q in init_task.comm", v)
	}
	other, err := open(hv, 3, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.ReadPhys(got, pa); err != nil || string(got) != "tampered\x00" {
		t.Errorf("a second target reads %q, %v", got, err)
	}
	// A write that reaches past the domain's memory stores nothing.
	end := tg.MemoryMap()[len(tg.MemoryMap())-1].End
	last := hv.machine(t, end-4, 4)
	if err := tg.WritePhys([]byte("12345678"), end-4); !errors.Is(err, vmi.ErrNotPresent) {
		t.Errorf("write past the end: %v", err)
	}
	if !bytes.Equal(hv.machine(t, end-4, 4), last) {
		t.Error("a write that failed stored bytes")
	}
}

// A PV guest's write goes to the machine frame its p2m names, page by
// page; a frame Xen will not map writable (a page table) fails the write
// with a message that says so.
func TestWritePV(t *testing.T) {
	p2m := []uint64{0x30005, 0x30001, 0x30009, p2mInvalid}
	f, _ := newPVFake(t, p2m)
	hv := newSharedHV(t, f)
	tg, err := open(hv, 7, Options{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	// Guest frames 0 and 1 are adjacent; their machine frames are not.
	if err := tg.WritePhys([]byte("ABCDEFGH"), pageSize-4); err != nil {
		t.Fatal(err)
	}
	if a, b := hv.machine(t, 0x30005*pageSize+pageSize-4, 4), hv.machine(t, 0x30001*pageSize, 4); string(a) != "ABCD" || string(b) != "EFGH" {
		t.Errorf("machine frames hold %q and %q", a, b)
	}
	got := make([]byte, 8)
	if err := tg.ReadPhys(got, pageSize-4); err != nil || string(got) != "ABCDEFGH" {
		t.Errorf("read back %q, %v", got, err)
	}
	if err := tg.WritePhys([]byte{1}, 3*pageSize); !errors.Is(err, vmi.ErrNotPresent) {
		t.Errorf("write to an invalid p2m entry: %v", err)
	}
	hv.refuse = map[uint64]bool{0x30009: true}
	err = tg.WritePhys([]byte{1}, 2*pageSize+8)
	if !errors.Is(err, vmi.ErrReadOnly) || !strings.Contains(err.Error(), "page tables") {
		t.Errorf("write to a frame Xen will not map writable: %v", err)
	}
	tg.Close()
	if len(hv.maps) != 0 {
		t.Errorf("%d mappings left after Close", len(hv.maps))
	}
}
