package xen

import (
	"encoding/binary"
	"fmt"
)

// Hypercall numbers and sub-operations (xen/include/public/xen.h,
// version.h, memory.h). These are stable across releases.
const (
	hypercallMemoryOp  = 12
	hypercallXenVer    = 17
	hypercallDomctl    = 36
	xenverVersion      = 0
	xenverExtraversion = 1
	xenmemMaximumGpfn  = 14
)

// Domctl commands (xen/include/public/domctl.h).
const (
	domctlPauseDomain          = 3
	domctlUnpauseDomain        = 4
	domctlGetDomainInfo        = 5
	domctlGetVCPUContext       = 13
	domctlGetHVMContextPartial = 55
)

// Flags of xen_domctl_getdomaininfo.flags.
const (
	dominfDying    = 1 << 0
	dominfHVM      = 1 << 1 // HVM or PVH: auto-translated physical addresses
	dominfShutdown = 1 << 2
	dominfPaused   = 1 << 3
	dominfBlocked  = 1 << 4
	dominfRunning  = 1 << 5
	// The shutdown reason (SHUTDOWN_* of sched.h) sits in bits 16-23.
	dominfShutdownShift = 16
)

// Emulation flags of xen_arch_domainconfig (arch-x86/xen.h): a PVH domain
// has the local APIC emulated and nothing of a PC's chipset (a PVH dom0 may
// add vPCI); an HVM domain has the rest.
const (
	x86EmuLAPIC = 1 << 0
	x86EmuVPCI  = 1 << 10
)

// hvmSaveCodeCPU is HVM_SAVE_CODE(CPU), the hvm_hw_cpu record.
const hvmSaveCodeCPU = 2

// abi is what changes between Xen releases: the domctl interface version
// and the layout of the structures this package reads. Every offset was
// read with offsetof() from that release's public headers (Debian's
// libxen-dev), not transcribed by hand.
type abi struct {
	release          string
	domctlVersion    uint32
	domctlSize       int // sizeof(struct xen_domctl)
	domctlUnion      int // offsetof(struct xen_domctl, u)
	infoFlags        int // xen_domctl_getdomaininfo offsets
	infoTotPages     int
	infoMaxPages     int
	infoSharedInfo   int
	infoMaxVCPUID    int
	infoOutstanding  int
	infoOnlineVCPUs  int
	infoEmulation    int // arch_config.emulation_flags
	vcpuCtxHandle    int // offsetof(xen_domctl_vcpucontext, ctxt)
	vcpuCtxSize      int // sizeof(struct vcpu_guest_context), x86_64
	vcpuCtxFlags     int
	vcpuCtxCtrlreg   int // ctrlreg[8] of unsigned long
	sharedMaxPFN     int // shared_info.arch.max_pfn
	sharedFLL        int // shared_info.arch.pfn_to_mfn_frame_list_list
	sharedP2MCR3     int // shared_info.arch.p2m_cr3
	sharedP2MVaddr   int // shared_info.arch.p2m_vaddr
	hvmCPUSize       int // sizeof(struct hvm_hw_cpu)
	hvmCPUCR0        int
	hvmCPUCR3        int
	hvmCPUCR4        int
	hvmCPUEFER       int
	partialType      int // xen_domctl_hvmcontext_partial offsets
	partialInstance  int
	partialBufSize   int
	partialBufHandle int
}

// abis are the supported releases, keyed by major<<16|minor as
// XENVER_version returns it. Adding a release is adding a row, after
// checking every offset against its headers.
var abis = map[uint32]abi{
	4<<16 | 17: {
		release: "4.17", domctlVersion: 0x15, domctlSize: 144, domctlUnion: 16,
		infoFlags: 4, infoTotPages: 8, infoMaxPages: 16, infoSharedInfo: 48, infoMaxVCPUID: 68,
		infoOutstanding: 24, infoOnlineVCPUs: 64, infoEmulation: 104,
		vcpuCtxHandle: 8, vcpuCtxSize: 5168, vcpuCtxFlags: 512, vcpuCtxCtrlreg: 4984,
		sharedMaxPFN: 3088, sharedFLL: 3096, sharedP2MCR3: 3112, sharedP2MVaddr: 3120,
		hvmCPUSize: 1032, hvmCPUCR0: 656, hvmCPUCR3: 672, hvmCPUCR4: 680, hvmCPUEFER: 992,
		partialType: 0, partialInstance: 4, partialBufSize: 8, partialBufHandle: 16,
	},
}

// abiFor returns the table of a hypervisor version, or an error naming the
// version and those supported.
func abiFor(version uint32) (abi, error) {
	if a, ok := abis[version]; ok {
		return a, nil
	}
	return abi{}, fmt.Errorf("Xen %d.%d is not supported (its domctl interface differs between releases; supported: %s)",
		version>>16, version&0xffff, supportedReleases())
}

func supportedReleases() string {
	s := ""
	for _, a := range abis {
		if s != "" {
			s += ", "
		}
		s += a.release
	}
	return s
}

// domainInfo is the part of xen_domctl_getdomaininfo this package uses.
type domainInfo struct {
	ID              uint16
	Flags           uint32
	TotPages        uint64
	MaxPages        uint64
	SharedInfoFrame uint64 // GMFN: a machine frame for PV, a guest frame for HVM/PVH
	MaxVCPUID       uint32
	Outstanding     uint64 // pages claimed but not yet allocated
	OnlineVCPUs     uint32
	Emulation       uint32 // x86 emulation flags: HVM or PVH
}

func (d domainInfo) dying() bool    { return d.Flags&dominfDying != 0 }
func (d domainInfo) hvm() bool      { return d.Flags&dominfHVM != 0 }
func (d domainInfo) paused() bool   { return d.Flags&dominfPaused != 0 }
func (d domainInfo) shutdown() bool { return d.Flags&dominfShutdown != 0 }

// newDomctl returns a zeroed xen_domctl for cmd on domain.
func (a abi) newDomctl(cmd uint32, domain uint16) []byte {
	b := make([]byte, a.domctlSize)
	le.PutUint32(b[0:], cmd)
	le.PutUint32(b[4:], a.domctlVersion)
	le.PutUint16(b[8:], domain)
	return b
}

// union is the domctl's command-specific part.
func (a abi) union(b []byte) []byte { return b[a.domctlUnion:] }

func (a abi) decodeDomainInfo(b []byte) domainInfo {
	u := a.union(b)
	return domainInfo{
		ID:              le.Uint16(b[8:]), // the domctl's domain field is echoed
		Flags:           le.Uint32(u[a.infoFlags:]),
		TotPages:        le.Uint64(u[a.infoTotPages:]),
		MaxPages:        le.Uint64(u[a.infoMaxPages:]),
		SharedInfoFrame: le.Uint64(u[a.infoSharedInfo:]),
		MaxVCPUID:       le.Uint32(u[a.infoMaxVCPUID:]),
		Outstanding:     le.Uint64(u[a.infoOutstanding:]),
		OnlineVCPUs:     le.Uint32(u[a.infoOnlineVCPUs:]),
		Emulation:       le.Uint32(u[a.infoEmulation:]),
	}
}

// pvCtrlRegs decodes ctrlreg[0], [3] and [4] of a vcpu_guest_context.
func (a abi) ctrlRegs(ctx []byte) (cr0, cr3, cr4 uint64) {
	c := ctx[a.vcpuCtxCtrlreg:]
	return le.Uint64(c[0:]), le.Uint64(c[24:]), le.Uint64(c[32:])
}

var le = binary.LittleEndian
