package xen

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// PrivcmdPath is the device the privileged domain's kernel offers for
// hypercalls and foreign mappings (the xen-privcmd module).
const PrivcmdPath = "/dev/xen/privcmd"

// ioctl numbers (Linux include/uapi/xen/privcmd.h; _IOC(_IOC_NONE, 'P', n,
// size), so the struct size is part of the number).
const (
	ioctlPrivcmdHypercall  = 0x305000 // privcmd_hypercall: op + 5 args
	ioctlPrivcmdMmapBatch2 = 0x205004 // privcmd_mmapbatch_v2, 32 bytes
)

// privcmd is the real hypervisor, reached through /dev/xen/privcmd.
type privcmd struct {
	fd int
	// scratch is mlocked memory for what hypercalls read and write by
	// address: Xen copies from the caller's virtual addresses and fails
	// with EFAULT if a page is not resident.
	scratch []byte
}

// scratchSize holds a domctl, a vCPU context (5168 bytes on 4.17) and an
// hvm_hw_cpu record.
const scratchSize = 4 * 4096

func openPrivcmd() (*privcmd, error) {
	fd, err := unix.Open(PrivcmdPath, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		switch {
		case errors.Is(err, unix.ENOENT):
			return nil, accessError{fmt.Errorf("open %s: %w (run xascript in dom0, with the xen-privcmd module loaded and xenfs mounted)", PrivcmdPath, err)}
		case errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM):
			return nil, accessError{fmt.Errorf("open %s: %w (introspecting a Xen domain needs root in dom0)", PrivcmdPath, err)}
		}
		return nil, fmt.Errorf("open %s: %w", PrivcmdPath, err)
	}
	mem, err := unix.Mmap(-1, 0, scratchSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("hypercall buffer: %w", err)
	}
	if err := unix.Mlock(mem); err != nil {
		unix.Munmap(mem)
		unix.Close(fd)
		return nil, fmt.Errorf("lock hypercall buffer: %w", err)
	}
	return &privcmd{fd: fd, scratch: mem}, nil
}

func (p *privcmd) Close() error {
	if p.scratch != nil {
		unix.Munmap(p.scratch)
		p.scratch = nil
	}
	if p.fd >= 0 {
		err := unix.Close(p.fd)
		p.fd = -1
		return err
	}
	return nil
}

// hypercall issues op with up to five arguments and returns Xen's result.
func (p *privcmd) hypercall(op uint64, args ...uint64) (uint64, error) {
	var hc struct {
		op   uint64
		args [5]uint64
	}
	hc.op = op
	copy(hc.args[:], args)
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(p.fd), ioctlPrivcmdHypercall, uintptr(unsafe.Pointer(&hc)))
	if errno != 0 {
		return 0, errno
	}
	return uint64(r), nil
}

func (p *privcmd) addr(off int) uint64 { return uint64(uintptr(unsafe.Pointer(&p.scratch[off]))) }

func (p *privcmd) Version() (uint32, string, error) {
	v, err := p.hypercall(hypercallXenVer, xenverVersion, 0)
	if err != nil {
		return 0, "", fmt.Errorf("xen_version hypercall: %w", err)
	}
	clear(p.scratch[:16])
	extra := ""
	if _, err := p.hypercall(hypercallXenVer, xenverExtraversion, p.addr(0)); err == nil {
		b := p.scratch[:16]
		n := 0
		for n < len(b) && b[n] != 0 {
			n++
		}
		extra = string(b[:n])
	}
	return uint32(v), extra, nil
}

// Domctl copies dc (and buf) into the locked scratch memory, points the
// handle at buf's copy, issues the hypercall and copies both back.
func (p *privcmd) Domctl(dc []byte, buf []byte, handleOff int) error {
	const dcOff, bufOff = 0, 1024
	if len(dc) > bufOff || bufOff+len(buf) > len(p.scratch) {
		return fmt.Errorf("domctl buffers too large (%d, %d bytes)", len(dc), len(buf))
	}
	copy(p.scratch[dcOff:], dc)
	if buf != nil {
		clear(p.scratch[bufOff : bufOff+len(buf)])
		copy(p.scratch[bufOff:], buf)
		le.PutUint64(p.scratch[dcOff+handleOff:], p.addr(bufOff))
	}
	_, err := p.hypercall(hypercallDomctl, p.addr(dcOff))
	copy(dc, p.scratch[dcOff:dcOff+len(dc)])
	if buf != nil {
		copy(buf, p.scratch[bufOff:bufOff+len(buf)])
	}
	return err
}

func (p *privcmd) MaximumGpfn(domain uint16) (uint64, error) {
	le.PutUint16(p.scratch[0:], domain)
	v, err := p.hypercall(hypercallMemoryOp, xenmemMaximumGpfn, p.addr(0))
	if err != nil {
		return 0, fmt.Errorf("XENMEM_maximum_gpfn of domain %d: %w", domain, err)
	}
	return v, nil
}

func (p *privcmd) MapFrames(domain uint16, frames []uint64, writable bool) ([]byte, []int32, error) {
	if len(frames) == 0 {
		return nil, nil, nil
	}
	prot := unix.PROT_READ
	if writable {
		prot |= unix.PROT_WRITE
	}
	mem, err := unix.Mmap(p.fd, 0, len(frames)*pageSize, prot, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("mmap %s for %d frames: %w", PrivcmdPath, len(frames), err)
	}
	arr := make([]uint64, len(frames))
	copy(arr, frames)
	errs := make([]int32, len(frames))
	batch := struct {
		num  uint32
		dom  uint16
		_    uint16
		addr uint64
		arr  uintptr
		err  uintptr
	}{
		num: uint32(len(frames)), dom: domain,
		addr: uint64(uintptr(unsafe.Pointer(&mem[0]))),
		arr:  uintptr(unsafe.Pointer(&arr[0])), err: uintptr(unsafe.Pointer(&errs[0])),
	}
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(p.fd), ioctlPrivcmdMmapBatch2, uintptr(unsafe.Pointer(&batch)))
	runtime.KeepAlive(arr) // the batch holds it as a bare address
	runtime.KeepAlive(errs)
	// ENOENT means some frames are paged out: the per-frame errors say
	// which. Any other errno fails the whole batch.
	if errno != 0 && errno != unix.ENOENT {
		unix.Munmap(mem)
		return nil, nil, fmt.Errorf("map %d frames of domain %d from %#x: %w", len(frames), domain, frames[0], errno)
	}
	return mem, errs, nil
}

func (p *privcmd) Unmap(mem []byte) error { return unix.Munmap(mem) }

var _ hypervisor = (*privcmd)(nil)

// needRoot is a hint for a caller that is not root.
func needRoot() error {
	if os.Geteuid() != 0 {
		return accessError{fmt.Errorf("introspecting a Xen domain needs root in dom0 (running as uid %d)", os.Geteuid())}
	}
	return nil
}

// ErrNoAccess marks the failures of Open that no wait cures: not root, or
// no privcmd device (not dom0). A caller that waits for a domain to appear
// (xascript serving a domU's disk before `xl create`) gives up at once on
// them.
var ErrNoAccess = errors.New("no access to Xen's privcmd")

// accessError is one of them: its message is the cause's, and it is both
// the cause and ErrNoAccess to errors.Is.
type accessError struct{ err error }

func (e accessError) Error() string   { return e.err.Error() }
func (e accessError) Unwrap() []error { return []error{e.err, ErrNoAccess} }
