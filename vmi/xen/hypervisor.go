package xen

// hypervisor is what the target needs from Xen. The privcmd implementation
// talks to the real one; tests substitute a fake that serves a real guest
// image, so everything above the ioctls is tested without Xen.
type hypervisor interface {
	// Version is XENVER_version (major<<16 | minor) and the extraversion.
	Version() (uint32, string, error)
	// Domctl issues one domctl; buf, when not nil, is a buffer the domctl
	// names by address (a vCPU context), placed at handleOff in the union.
	Domctl(dc []byte, buf []byte, handleOff int) error
	// MaximumGpfn is XENMEM_maximum_gpfn for domain.
	MaximumGpfn(domain uint16) (uint64, error)
	// MapFrames maps frames of domain, read-only unless writable (only
	// for a write the user allowed, write.go). errs[i] is 0 or the
	// negative errno of frame i, whose bytes must then not be touched.
	MapFrames(domain uint16, frames []uint64, writable bool) (mem []byte, errs []int32, err error)
	Unmap(mem []byte) error
	Close() error
}
