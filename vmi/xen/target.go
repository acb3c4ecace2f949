package xen

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xascript/xascript/vmi"
)

// Options configure Open.
type Options struct {
	// MaxMappedChunks bounds the frame cache (chunks of 64 frames); 1024
	// (256 MiB of mappings) when zero.
	MaxMappedChunks int
	// VCPU is the vCPU whose control registers give the page-table root.
	VCPU uint32
	// Writable allows WritePhys (write.go); without it every write fails
	// with vmi.ErrReadOnly and no frame is ever mapped writable.
	Writable bool
}

// Target is a running Xen domain. Like every vmi.Target it is for one
// goroutine at a time.
type Target struct {
	hv       hypervisor
	abi      abi
	version  string // "4.17.3-pre" etc.
	domain   uint16
	name     string
	info     domainInfo
	frames   *frameCache
	ranges   []vmi.Range
	cpu      vmi.CPUState
	cpuNote  string
	pv       bool
	p2m      []uint64   // PV: guest frame -> machine frame
	m2p      []m2pEntry // PV: machine frame -> guest frame, sorted
	p2mGen   uint64     // the generation p2m and m2p were read under
	p2mErr   error      // why the p2m could not be read again, until it can
	pausedBy bool       // we hold a pause (Pause without Resume)
	writable bool       // Options.Writable
	closed   bool
	reads    uint64    // ReadPhys calls, to pace the liveness check
	checked  time.Time // the last liveness check
	gone     error     // set once the domain is found dying or destroyed
	// gen moves when the domain may have changed under what was read from
	// it: our pause and unpause, a change of its page count seen by the
	// liveness check (a balloon), the domain's end, Close, or on demand.
	// The frame cache (mapped frames and refused ones) and the PV p2m
	// follow it, as do the page walkers over the target.
	gen vmi.Generation
}

var (
	_ vmi.Target          = (*Target)(nil)
	_ vmi.FrameTranslator = (*Target)(nil)
	_ vmi.Pauser          = (*Target)(nil)
	_ vmi.Generationer    = (*Target)(nil)
)

// Open attaches to the domain named by spec: a numeric id, or a name that
// xenstore resolves. It needs root in dom0.
func Open(spec string, opt Options) (*Target, error) {
	if spec == "" {
		return nil, errors.New("--dom needs a domain id or name")
	}
	if err := needRoot(); err != nil {
		return nil, err
	}
	p, err := openPrivcmd()
	if err != nil {
		return nil, err
	}
	domain, name, err := resolveDomain(spec, XenstorePaths)
	if err != nil {
		p.Close()
		return nil, err
	}
	t, err := open(p, domain, opt)
	if err != nil {
		p.Close()
		return nil, err
	}
	t.name = name
	return t, nil
}

// resolveDomain turns an id or a name into an id, and finds the name of an
// id when xenstore can tell (for messages only).
func resolveDomain(spec string, xsPaths []string) (uint16, string, error) {
	if id, err := strconv.ParseUint(spec, 10, 16); err == nil {
		name := ""
		if xs, err := dialXenstore(xsPaths, 5*time.Second); err == nil {
			name = xs.domainName(uint16(id))
			xs.Close()
		}
		return uint16(id), name, nil
	}
	xs, err := dialXenstore(xsPaths, 5*time.Second)
	if err != nil {
		return 0, "", fmt.Errorf("domain %q: %w", spec, err)
	}
	defer xs.Close()
	id, err := xs.lookupDomain(spec)
	return id, spec, err
}

// open attaches through hv, which Open or a test provides.
func open(hv hypervisor, domain uint16, opt Options) (*Target, error) {
	ver, extra, err := hv.Version()
	if err != nil {
		return nil, err
	}
	a, err := abiFor(ver)
	if err != nil {
		return nil, err
	}
	t := &Target{hv: hv, abi: a, version: fmt.Sprintf("%d.%d%s", ver>>16, ver&0xffff, extra), domain: domain, writable: opt.Writable}
	if t.info, err = t.domainInfo(); err != nil {
		return nil, err
	}
	t.checked = time.Now()
	if t.info.dying() {
		return nil, fmt.Errorf("domain %d is dying", domain)
	}
	if t.info.shutdown() {
		return nil, fmt.Errorf("domain %d has shut down", domain)
	}
	t.pv = !t.info.hvm()
	t.frames = newFrameCache(hv, domain, opt.MaxMappedChunks, &t.gen)
	if err := t.buildMemoryMap(); err != nil {
		t.frames.flush()
		return nil, err
	}
	if err := t.readCPU(opt.VCPU); err != nil {
		t.frames.flush()
		return nil, err
	}
	return t, nil
}

func (t *Target) domctl(cmd uint32, buf []byte, handleOff int) ([]byte, error) {
	dc := t.abi.newDomctl(cmd, t.domain)
	err := t.hv.Domctl(dc, buf, handleOff)
	return dc, err
}

func (t *Target) domainInfo() (domainInfo, error) {
	dc, err := t.domctl(domctlGetDomainInfo, nil, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return domainInfo{}, fmt.Errorf("domain %d: %w", t.domain, ErrNoDomain)
		}
		return domainInfo{}, fmt.Errorf("getdomaininfo of domain %d: %w", t.domain, err)
	}
	info := t.abi.decodeDomainInfo(dc)
	// Older hypervisors answer with the next domain that exists.
	if info.ID != t.domain {
		return domainInfo{}, fmt.Errorf("domain %d: %w", t.domain, ErrNoDomain)
	}
	return info, nil
}

// readCPU reads the vCPU's control registers: from the PV context for PV
// guests, from the hvm_hw_cpu save record (which has EFER) for HVM/PVH.
func (t *Target) readCPU(vcpu uint32) error {
	if vcpu > t.info.MaxVCPUID {
		return fmt.Errorf("domain %d has no vCPU %d (highest %d)", t.domain, vcpu, t.info.MaxVCPUID)
	}
	if t.pv {
		ctx := make([]byte, t.abi.vcpuCtxSize)
		dc := t.abi.newDomctl(domctlGetVCPUContext, t.domain)
		le.PutUint32(t.abi.union(dc), vcpu)
		if err := t.hv.Domctl(dc, ctx, t.abi.domctlUnion+t.abi.vcpuCtxHandle); err != nil {
			return fmt.Errorf("getvcpucontext of domain %d vCPU %d: %w", t.domain, vcpu, err)
		}
		cr0, cr3, cr4 := t.abi.ctrlRegs(ctx)
		// CR3 names a machine frame; scripts and the page walker work in
		// the guest's own (pseudo-physical) frames.
		pfn, ok := t.PhysFrame(cr3 / pageSize)
		if !ok {
			return fmt.Errorf("domain %d vCPU %d: CR3 %#x is not a frame of the guest's p2m", t.domain, vcpu, cr3)
		}
		// A 64-bit PV guest always runs in long mode with 4-level paging
		// (Xen does not offer PV guests LA57).
		t.cpu = vmi.CPUState{Known: true, CR0: cr0 | vmi.CR0PG, CR3: pfn*pageSize | cr3%pageSize,
			CR4: (cr4 | vmi.CR4PAE) &^ vmi.CR4LA57, EFER: vmi.EFERLME | vmi.EFERLMA | vmi.EFERNXE}
		t.cpuNote = fmt.Sprintf("PV vCPU context (CR3 machine frame %#x is guest frame %#x)", cr3/pageSize, pfn)
		return nil
	}
	rec := make([]byte, t.abi.hvmCPUSize)
	dc := t.abi.newDomctl(domctlGetHVMContextPartial, t.domain)
	u := t.abi.union(dc)
	le.PutUint32(u[t.abi.partialType:], hvmSaveCodeCPU)
	le.PutUint32(u[t.abi.partialInstance:], vcpu)
	le.PutUint64(u[t.abi.partialBufSize:], uint64(len(rec)))
	if err := t.hv.Domctl(dc, rec, t.abi.domctlUnion+t.abi.partialBufHandle); err != nil {
		return fmt.Errorf("gethvmcontext_partial (CPU record) of domain %d vCPU %d: %w", t.domain, vcpu, err)
	}
	t.cpu = vmi.CPUState{Known: true,
		CR0: le.Uint64(rec[t.abi.hvmCPUCR0:]), CR3: le.Uint64(rec[t.abi.hvmCPUCR3:]),
		CR4: le.Uint64(rec[t.abi.hvmCPUCR4:]), EFER: le.Uint64(rec[t.abi.hvmCPUEFER:])}
	t.cpuNote = "HVM CPU save record"
	return nil
}

// buildMemoryMap lists the frames the guest owns: from its p2m for PV, by
// probing up to XENMEM_maximum_gpfn for auto-translated guests (probe.go).
func (t *Target) buildMemoryMap() error {
	if t.pv {
		p2m, err := readP2M(t.frames, t.abi, t.info.SharedInfoFrame, max(t.info.MaxPages, t.info.TotPages))
		if err != nil {
			return fmt.Errorf("domain %d: PV memory map: %w", t.domain, err)
		}
		t.p2m, t.m2p = p2m, invertP2M(p2m)
		t.ranges = framesToRanges(validFrames(p2m))
		return nil
	}
	maxGpfn, err := t.hv.MaximumGpfn(t.domain)
	if err != nil {
		return err
	}
	if maxGpfn >= 1<<40 {
		return fmt.Errorf("domain %d: maximum gpfn %#x: %w", t.domain, maxGpfn, vmi.ErrLimit)
	}
	if t.ranges, err = probeMemoryMap(t.hv, t.domain, maxGpfn); err != nil {
		return err
	}
	return nil
}

// syncP2M reads a PV guest's p2m again when the generation has moved since
// it was read: the guest rewrites it as it balloons. A p2m that cannot be
// read leaves the old one in place and its error in p2mErr, and is tried
// again on the next call.
func (t *Target) syncP2M() error {
	g := t.gen.Load()
	if !t.pv || g == t.p2mGen {
		return nil
	}
	p2m, err := readP2M(t.frames, t.abi, t.info.SharedInfoFrame, max(t.info.MaxPages, t.info.TotPages))
	if err != nil {
		t.p2mErr = fmt.Errorf("domain %d: read the p2m again: %w", t.domain, err)
		return t.p2mErr
	}
	t.p2mGen, t.p2mErr = g, nil
	if slices.Equal(p2m, t.p2m) {
		return nil // most rounds: no balloon, and no sort of the inverse
	}
	t.p2m, t.m2p = p2m, invertP2M(p2m)
	t.ranges = framesToRanges(validFrames(p2m))
	return nil
}

// Generation implements vmi.Generationer.
func (t *Target) Generation() *vmi.Generation { return &t.gen }

// ReadPhys reads guest-physical memory (for a PV guest: its
// pseudo-physical frames, each read from the machine frame its p2m names).
func (t *Target) ReadPhys(buf []byte, pa uint64) error {
	if t.closed {
		return fmt.Errorf("domain %d: target closed", t.domain)
	}
	if err := t.alive(); err != nil {
		return &vmi.PhysError{Addr: pa, Err: err}
	}
	if !t.pv {
		return t.orGone(t.frames.read(buf, pa), pa)
	}
	if err := t.syncP2M(); err != nil {
		return t.orGone(&vmi.PhysError{Addr: pa, Err: err}, pa)
	}
	for len(buf) > 0 {
		pfn := pa / pageSize
		if pfn >= uint64(len(t.p2m)) || t.p2m[pfn] == p2mInvalid {
			return &vmi.PhysError{Addr: pa, Err: fmt.Errorf("guest frame %#x is not in the p2m: %w", pfn, vmi.ErrNotPresent)}
		}
		f, err := t.frames.frame(t.p2m[pfn])
		if err != nil {
			return t.orGone(&vmi.PhysError{Addr: pa, Err: err}, pa)
		}
		n := copy(buf, f[pa%pageSize:])
		buf, pa = buf[n:], pa+uint64(n)
	}
	return nil
}

// ErrGone is returned by reads once the domain is dying, shut down or
// destroyed.
var ErrGone = errors.New("domain is gone")

// aliveEvery and aliveAfter pace the liveness check: frames already mapped
// stay readable after the domain dies (the mapping holds its pages), so a
// script polling a destroyed domain would read its last state for ever.
// One getdomaininfo per aliveEvery reads costs a few ns a read; but a
// script that reads little per round (a module list every 0.2 s) takes
// dozens of rounds to make that many, so the check also comes once
// aliveAfter has passed since the last one (the clock looked at every
// aliveClockEvery reads).
const (
	aliveEvery      = 4096
	aliveClockEvery = 64
	aliveAfter      = 250 * time.Millisecond
)

// alive checks, every aliveEvery reads or aliveAfter, that the domain
// still runs.
func (t *Target) alive() error {
	if t.gone != nil {
		return t.gone
	}
	t.reads++
	if t.reads%aliveEvery != 0 && (t.reads%aliveClockEvery != 0 || time.Since(t.checked) < aliveAfter) {
		return nil
	}
	return t.checkAlive()
}

// orGone turns a failed read into ErrGone when the failure is the
// domain's end (a frame that no longer maps, ESRCH).
func (t *Target) orGone(err error, pa uint64) error {
	if err == nil {
		return nil
	}
	if gone := t.checkAlive(); gone != nil && errors.Is(gone, ErrGone) {
		return &vmi.PhysError{Addr: pa, Err: gone}
	}
	return err
}

// goneOr returns ErrGone (with why) when the domain has ended, else err.
func (t *Target) goneOr(err error) error {
	if gone := t.checkAlive(); gone != nil && errors.Is(gone, ErrGone) {
		return gone
	}
	return err
}

func (t *Target) checkAlive() error {
	t.checked = time.Now()
	info, err := t.domainInfo()
	if err == nil && info.TotPages != t.info.TotPages {
		// The balloon moved: frames came and went, and a PV guest
		// rewrote its p2m.
		t.info.TotPages, t.info.MaxPages = info.TotPages, info.MaxPages
		t.gen.Bump()
	}
	if t.gone == nil {
		defer func() {
			if t.gone != nil {
				t.gen.Bump() // nothing cached from a gone domain is read again
			}
		}()
	}
	switch {
	case errors.Is(err, ErrNoDomain):
		t.gone = fmt.Errorf("%s: %w (destroyed)", t.label(), ErrGone)
	case err != nil:
		return err
	case info.dying():
		t.gone = fmt.Errorf("%s: %w (dying)", t.label(), ErrGone)
	case info.shutdown():
		t.gone = fmt.Errorf("%s: %w (shut down)", t.label(), ErrGone)
	}
	return t.gone
}

// label names the domain in errors: its id, and its name when known.
func (t *Target) label() string {
	if t.name == "" {
		return fmt.Sprintf("domain %d", t.domain)
	}
	return fmt.Sprintf("domain %d (%s)", t.domain, t.name)
}

// MachineFrames tells the page walker whether PTEs hold machine frames:
// only in PV guests.
func (t *Target) MachineFrames() bool { return t.pv }

// PhysFrame maps a machine frame of a PV guest to the guest frame it
// backs (the page walker calls it for every page-table entry); for PVH and
// HVM guests frames are not translated.
func (t *Target) PhysFrame(mfn uint64) (uint64, bool) {
	if !t.pv {
		return mfn, true
	}
	if t.syncP2M() != nil {
		return 0, false
	}
	i, ok := slices.BinarySearchFunc(t.m2p, mfn, func(e m2pEntry, mfn uint64) int { return cmp.Compare(e.mfn, mfn) })
	if !ok {
		return 0, false
	}
	return t.m2p[i].pfn, true
}

// MachineFrame returns the machine frame behind guest frame pfn of a PV
// guest (pfn itself for PVH and HVM).
func (t *Target) MachineFrame(pfn uint64) (uint64, bool) {
	if !t.pv {
		return pfn, true
	}
	if t.syncP2M() != nil {
		return 0, false
	}
	if pfn >= uint64(len(t.p2m)) || t.p2m[pfn] == p2mInvalid {
		return 0, false
	}
	return t.p2m[pfn], true
}

// MemoryMap lists the ranges the domain owns (for a PV guest, as of its
// p2m's last reading).
func (t *Target) MemoryMap() []vmi.Range {
	t.syncP2M()
	return t.ranges
}

// CPU returns the vCPU state read at Open.
func (t *Target) CPU() vmi.CPUState { return t.cpu }

// Kind names the target.
func (t *Target) Kind() string {
	kind := "HVM/PVH"
	if t.pv {
		kind = "PV"
	}
	name := ""
	if t.name != "" {
		name = " " + strconv.Quote(t.name)
	}
	return fmt.Sprintf("Xen %s domain %d%s (Xen %s)", kind, t.domain, name, t.version)
}

// Domain is the domain id.
func (t *Target) Domain() uint16 { return t.domain }

// PV tells whether the domain is paravirtualised (physical = machine).
func (t *Target) PV() bool { return t.pv }

// CPUSource says where the control registers came from.
func (t *Target) CPUSource() string { return t.cpuNote }

// Stats reports the frame cache's counters.
func (t *Target) Stats() FrameStats { return t.frames.stats }

// Pause pauses the domain (a domctl pause, counted separately from `xl
// pause`, so it never undoes an operator's pause) and moves the generation:
// what was read while it ran is not part of the state the pause holds.
// Pausing twice is one pause.
func (t *Target) Pause() error {
	if t.pausedBy {
		return nil
	}
	// A monitor pauses once a round: the place to notice that the domain
	// is being destroyed, and to let go of its frames so that it can be.
	if gone := t.checkAlive(); gone != nil {
		return fmt.Errorf("pause domain %d: %w", t.domain, gone)
	}
	if _, err := t.domctl(domctlPauseDomain, nil, 0); err != nil {
		return fmt.Errorf("pause domain %d: %w", t.domain, t.goneOr(err))
	}
	t.pausedBy = true
	t.gen.Bump()
	return nil
}

// Resume undoes Pause, and moves the generation.
func (t *Target) Resume() error {
	if !t.pausedBy {
		return nil
	}
	if _, err := t.domctl(domctlUnpauseDomain, nil, 0); err != nil {
		return fmt.Errorf("unpause domain %d: %w", t.domain, t.goneOr(err))
	}
	t.pausedBy = false
	t.gen.Bump()
	return nil
}

// Paused tells whether the domain is paused, by us or anyone else. A
// domain that is dying, shut down or destroyed is not: the toolstack pauses
// a domain as it begins to destroy it, and a caller that found it paused
// would read on without pausing it, where its Pause (which fails with
// ErrGone) ends the reading at once.
func (t *Target) Paused() bool {
	if t.pausedBy {
		return true
	}
	if t.gone != nil {
		return false
	}
	info, err := t.domainInfo()
	if err != nil || info.dying() || info.shutdown() {
		t.checkAlive() // records the end, if that is what it is
		return false
	}
	return info.paused()
}

// Close unmaps every frame, resumes a domain we paused, and releases
// privcmd.
func (t *Target) Close() error {
	if t.closed {
		return nil
	}
	t.closed = true
	var err error
	if t.pausedBy {
		err = t.Resume()
	}
	t.gen.Bump()
	t.frames.flush()
	if cerr := t.hv.Close(); err == nil {
		err = cerr
	}
	return err
}
