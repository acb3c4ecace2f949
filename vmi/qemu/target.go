package qemu

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xascript/xascript/vmi"
)

// Options configure Open.
type Options struct {
	// Timeout bounds the QMP greeting and every command; 10 s when zero.
	Timeout time.Duration
	// RAM chooses how guest RAM is read; RAMAuto when zero.
	RAM RAMAccess
	// Writable opens guest RAM for WritePhys (write.go): a shared RAM
	// file is opened read-write and mapped writable, and process memory
	// is written with process_vm_writev. Without it the file is opened
	// and mapped read-only and every write fails with vmi.ErrReadOnly.
	Writable bool
}

// RAMAccess chooses where a Target reads guest RAM.
type RAMAccess int

const (
	// RAMAuto reads a RAM block from its shared memory-backend-file when it
	// has one, else from QEMU's process memory.
	RAMAuto RAMAccess = iota
	// RAMFile reads only shared memory-backend-files; a block without one
	// fails Open with vmi.ErrUnsupported.
	RAMFile
	// RAMProcess reads every block from QEMU's process memory, shared files
	// included.
	RAMProcess
)

// Target is a live QEMU guest. Like every vmi.Target it is for one
// goroutine at a time.
type Target struct {
	sock    string
	opt     Options
	qmp     *Client
	pid     int
	proc    procMem
	regions []mapped // sorted, non-overlapping
	ranges  []vmi.Range
	files   [][]byte // the mmaps, unmapped by Close
	nFile   int      // regions read from a shared file
	nProc   int      // regions read from QEMU's process memory

	paused   atomic.Bool // from query-status, stop/cont and STOP/RESUME events
	pausedBy atomic.Bool // we hold a pause: Pause stopped a running guest
	// gen moves whenever the guest may have changed under what was read:
	// our stop and cont, STOP and RESUME events (an operator's too), the
	// connection's end and Close. It guards the CPU cache here and every
	// cache built over the target (vmi.Generationer).
	gen    vmi.Generation
	cpu    vmi.CPUState
	cpuGen uint64
	cpuOK  bool
	cpuErr error
	closed bool
}

// mapped is a guest-physical range of one RAM block: held in a mapped
// backend file (data), or at host address hva in QEMU's process.
type mapped struct {
	vmi.Range
	block string
	data  []byte // the range's bytes, a slice of the file mapping; nil for process memory
	hva   uint64 // where Start lives in QEMU's address space, when data is nil
}

var (
	_ vmi.Target       = (*Target)(nil)
	_ vmi.PageMapper   = (*Target)(nil)
	_ vmi.Pauser       = (*Target)(nil)
	_ vmi.Generationer = (*Target)(nil)
)

// Open connects to the QMP socket of a running QEMU and finds its RAM. A
// RAM block in a memory-backend-file with share=on (`-object
// memory-backend-file,id=mem,size=1G,mem-path=/dev/shm/vm,share=on
// -machine memory-backend=mem`) is mmapped read-only, so a read is a memory
// copy. Any other block (plain -m, memory-backend-ram or memfd, share=off)
// is read from QEMU's process with process_vm_readv, which needs the right
// to ptrace QEMU; QEMU's pid comes from the socket's peer credentials and
// each block's host address from HMP gpa2hva. opt.RAM narrows the choice.
func Open(qmpSocket string, opt Options) (*Target, error) {
	t := &Target{sock: qmpSocket, opt: opt}
	q, err := Dial(qmpSocket, opt.Timeout, t.event)
	if err != nil {
		return nil, err
	}
	t.qmp = q
	go func() {
		// Once QEMU is gone nothing may be read through a page handed out
		// before (PhysPage): move the generation so that caches let go.
		// The reader marks the client gone before it closes done.
		<-q.done
		t.gen.Bump()
	}()
	if err := t.init(); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// event follows the run state through QMP's events, which QEMU sends for
// every stop and cont, whoever asked (our commands, an operator on another
// monitor, a guest panic).
func (t *Target) event(e Event) {
	switch e.Name {
	case "STOP":
		// What was read while the guest ran is not part of the
		// consistent state the pause holds.
		t.paused.Store(true)
		t.gen.Bump()
	case "RESUME":
		t.paused.Store(false)
		t.pausedBy.Store(false) // whoever resumed it, our pause is over
		t.gen.Bump()
	}
}

func (t *Target) init() error {
	if pid, err := t.qmp.PeerPID(); err == nil {
		t.pid = pid
	}
	running, err := t.running()
	if err != nil {
		return err
	}
	t.paused.Store(!running)

	files, err := t.backendFiles()
	if err != nil {
		return err
	}
	text, err := t.qmp.HMP("info mtree -f")
	if err != nil {
		return err
	}
	regs, err := ParseFlatView(text, "memory")
	if err != nil {
		return fmt.Errorf("qemu %s: %w", t.sock, err)
	}
	ram := guestRAM(regs)
	if len(ram) == 0 {
		return fmt.Errorf("qemu %s: no RAM in the system memory map: %w", t.sock, vmi.ErrFormat)
	}
	maps := map[string][]byte{}
	var inProcess []Region
	var fileErr error // a shared file that could not be used
	for _, r := range ram {
		data, err := t.fileRange(r, files, maps)
		if err != nil {
			if t.opt.RAM == RAMFile {
				return err
			}
			if b, ok := files[r.Name]; ok && b.share && t.opt.RAM == RAMAuto && fileErr == nil {
				fileErr = err
			}
			inProcess = append(inProcess, r)
			continue
		}
		t.regions = append(t.regions, mapped{Range: vmi.Range{Start: r.Start, End: r.End + 1}, block: r.Name, data: data})
		t.nFile++
	}
	if len(inProcess) > 0 {
		if err := t.placeInProcess(inProcess, files); err != nil {
			if fileErr != nil {
				return fmt.Errorf("%w (nor could its shared file serve: %v)", err, fileErr)
			}
			return err
		}
	}
	sort.Slice(t.regions, func(i, j int) bool { return t.regions[i].Start < t.regions[j].Start })
	for _, r := range t.regions {
		if n := len(t.ranges); n > 0 && t.ranges[n-1].End == r.Start {
			t.ranges[n-1].End = r.End
		} else {
			t.ranges = append(t.ranges, r.Range)
		}
	}
	return nil
}

// running asks QEMU whether the guest runs (query-status).
func (t *Target) running() (bool, error) {
	raw, err := t.qmp.Execute("query-status", nil)
	if err != nil {
		return false, err
	}
	var st struct {
		Running *bool `json:"running"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return false, fmt.Errorf("qemu %s: query-status: %w", t.sock, err)
	}
	if st.Running == nil {
		return false, fmt.Errorf("qemu %s: query-status: no \"running\" in %s: %w", t.sock, raw, vmi.ErrFormat)
	}
	return *st.Running, nil
}

// guestRAM picks the guest's RAM out of a flat view: the "ram" ranges, and
// the "rom" ranges of the same blocks (the BIOS areas the chipset shadows
// read-only). Firmware blocks (pc.bios, option ROMs) are not guest RAM.
func guestRAM(regs []Region) []Region {
	isRAM := map[string]bool{}
	for _, r := range regs {
		if r.Type == "ram" {
			isRAM[r.Name] = true
		}
	}
	var ram []Region
	for _, r := range regs {
		if r.RAM() && isRAM[r.Name] {
			ram = append(ram, r)
		}
	}
	return ram
}

// backend is a memory backend with a file (memory-backend-file).
type backend struct {
	path  string
	share bool
}

// backendFiles maps memdev ids to the files of the file backends.
func (t *Target) backendFiles() (map[string]backend, error) {
	raw, err := t.qmp.Execute("query-memdev", nil)
	if err != nil {
		return nil, err
	}
	var devs []struct {
		ID    string `json:"id"`
		Share bool   `json:"share"`
	}
	if err := json.Unmarshal(raw, &devs); err != nil {
		return nil, fmt.Errorf("qemu %s: query-memdev: %w", t.sock, err)
	}
	files := map[string]backend{}
	for _, d := range devs {
		if d.ID == "" {
			continue
		}
		raw, err := t.qmp.Execute("qom-get", map[string]string{"path": "/objects/" + d.ID, "property": "mem-path"})
		var qe *Error
		if errors.As(err, &qe) {
			continue // not a file backend (ram, memfd)
		} else if err != nil {
			return nil, err
		}
		var path string
		if err := json.Unmarshal(raw, &path); err != nil {
			return nil, fmt.Errorf("qemu %s: qom-get %s mem-path: %w", t.sock, d.ID, err)
		}
		files[d.ID] = backend{path: path, share: d.Share}
	}
	return files, nil
}

// fileRange returns region r's bytes in its backend file, mapping the file
// on first use, or an error that says why the file cannot serve it.
func (t *Target) fileRange(r Region, files map[string]backend, maps map[string][]byte) ([]byte, error) {
	b, ok := files[r.Name]
	switch {
	case t.opt.RAM == RAMProcess:
		return nil, errors.New("process memory chosen")
	case !ok:
		return nil, fmt.Errorf("qemu %s: RAM block %q at %#x-%#x is not a shared memory-backend-file (give QEMU -object memory-backend-file,...,share=on and -machine memory-backend=ID): %w",
			t.sock, r.Name, r.Start, r.End, vmi.ErrUnsupported)
	case !b.share:
		// MAP_PRIVATE in QEMU: the guest's writes never reach the file.
		return nil, fmt.Errorf("qemu %s: memory backend %q (%s) has share=off, so its file does not follow the guest: %w",
			t.sock, r.Name, b.path, vmi.ErrUnsupported)
	}
	data, ok := maps[r.Name]
	if !ok {
		var err error
		if data, err = mapFile(b.path, t.opt.Writable); err != nil {
			return nil, fmt.Errorf("qemu %s: RAM block %q: %w", t.sock, r.Name, err)
		}
		maps[r.Name] = data
		t.files = append(t.files, data)
	}
	if r.Offset > uint64(len(data)) || r.Len() > uint64(len(data))-r.Offset {
		return nil, fmt.Errorf("qemu %s: RAM block %q: range %#x-%#x at offset %#x is beyond the %#x bytes of %s: %w",
			t.sock, r.Name, r.Start, r.End, r.Offset, len(data), b.path, vmi.ErrFormat)
	}
	return data[r.Offset : r.Offset+r.Len() : r.Offset+r.Len()], nil
}

// mapFile maps a RAM file shared: read-only, or writable (the file opened
// read-write) when writes were allowed.
func mapFile(path string, writable bool) ([]byte, error) {
	mode, prot := os.O_RDONLY, unix.PROT_READ
	if writable {
		mode, prot = os.O_RDWR, unix.PROT_READ|unix.PROT_WRITE
	}
	f, err := os.OpenFile(path, mode, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if st.Size() == 0 {
		return nil, fmt.Errorf("%s is empty", path)
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), prot, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap %s: %w", path, err)
	}
	return data, nil
}

// region returns the index of the region holding pa, or -1.
func (t *Target) region(pa uint64) int {
	i := sort.Search(len(t.regions), func(i int) bool { return t.regions[i].End > pa })
	if i < len(t.regions) && t.regions[i].Start <= pa {
		return i
	}
	return -1
}

// live returns nil while the target can be read.
func (t *Target) live() error {
	if t.closed {
		return fmt.Errorf("qemu %s: target is closed", t.sock)
	}
	if t.qmp.Gone() {
		// A shared file outlives QEMU, and a pid can be reused: once the
		// connection is gone nothing is read from either.
		return fmt.Errorf("qemu %s: the QMP connection closed: %w", t.sock, ErrGone)
	}
	return nil
}

// ReadPhys fills buf from guest-physical address pa. Bytes outside RAM fail
// the read with a *vmi.PhysError wrapping vmi.ErrNotPresent; after QEMU
// exits every read fails with one wrapping ErrGone.
func (t *Target) ReadPhys(buf []byte, pa uint64) error {
	if err := t.live(); err != nil {
		return &vmi.PhysError{Addr: pa, Err: err}
	}
	for len(buf) > 0 {
		i := t.region(pa)
		if i < 0 {
			return &vmi.PhysError{Addr: pa, Err: vmi.ErrNotPresent}
		}
		r := &t.regions[i]
		n := int(min(uint64(len(buf)), r.End-pa))
		if r.data != nil {
			copy(buf[:n], r.data[pa-r.Start:])
		} else if err := t.proc.read(buf[:n], r.hva+(pa-r.Start)); err != nil {
			return &vmi.PhysError{Addr: pa, Err: t.procErr(err, r.hva+(pa-r.Start))}
		}
		buf = buf[n:]
		pa += uint64(n)
	}
	return nil
}

// procErr explains a failed read of QEMU's memory. A QEMU on its way out
// can fail a read (its address space goes before its sockets close) before
// the QMP connection says so: for an error that does not already say why,
// wait for the connection a moment before blaming anything else.
func (t *Target) procErr(err error, hva uint64) error {
	if !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EACCES) {
		select {
		case <-t.qmp.done:
		case <-time.After(100 * time.Millisecond):
		}
	}
	if t.qmp.Gone() {
		return fmt.Errorf("qemu %s: the QMP connection closed: %w", t.sock, ErrGone)
	}
	return fmt.Errorf("qemu %s: %w", t.sock, classifyProcErr(err, t.pid, hva))
}

// PhysPage implements vmi.PageMapper for RAM in a shared file, while the
// guest is paused. A page handed out is read with no call into the Target,
// so nothing could tell its reader that QEMU has gone away: while the
// guest runs every read goes through ReadPhys, which checks, and the
// generation moves when the guest resumes, when QEMU goes away and at
// Close, so that no cache keeps the page past the pause.
func (t *Target) PhysPage(pa uint64) *[vmi.PageSize]byte {
	if t.live() != nil || !t.paused.Load() {
		return nil
	}
	pa &^= vmi.PageSize - 1
	i := t.region(pa)
	if i < 0 || t.regions[i].data == nil || t.regions[i].End-pa < vmi.PageSize {
		return nil
	}
	r := t.regions[i]
	return (*[vmi.PageSize]byte)(r.data[pa-r.Start:])
}

// MemoryMap returns the guest-physical RAM ranges, sorted and merged. The
// caller must not modify the slice.
func (t *Target) MemoryMap() []vmi.Range { return t.ranges }

// CPU returns vCPU 0's control registers. While the guest runs they are read
// afresh on every call; while it is paused the last read is reused. On error
// Known is false and Err says why.
func (t *Target) CPU() vmi.CPUState {
	s, _ := t.ReadCPU()
	return s
}

// Err returns the error of the last CPU read, nil if it succeeded.
func (t *Target) Err() error { return t.cpuErr }

// ReadCPU is CPU with the error.
func (t *Target) ReadCPU() (vmi.CPUState, error) {
	gen := t.gen.Load()
	if t.cpuOK && t.paused.Load() && gen == t.cpuGen && t.live() == nil {
		return t.cpu, nil
	}
	t.cpuOK = false
	if err := t.live(); err != nil {
		t.cpuErr = err
		return vmi.CPUState{}, err
	}
	text, err := t.qmp.HMP("info registers")
	if err == nil {
		var r Registers
		if r, err = ParseRegisters(text); err == nil {
			t.cpu, t.cpuGen, t.cpuOK, t.cpuErr = r.State(), gen, true, nil
			return t.cpu, nil
		}
	}
	t.cpuErr = fmt.Errorf("qemu %s: %w", t.sock, err)
	return vmi.CPUState{}, t.cpuErr
}

// Pause stops the guest's vCPUs (QMP stop) and moves the generation. A
// guest that is already stopped (an operator's `stop`, started with -S, or
// stopped by our own Pause) is left as it is, and Resume will not undo a
// pause that is not ours. QEMU cannot stop a guest and say whether it ran in
// one command: an operator's stop between our query-status and our stop
// would be taken for ours.
func (t *Target) Pause() error {
	if t.pausedBy.Load() {
		return nil
	}
	running, err := t.running()
	if err != nil {
		return fmt.Errorf("qemu %s: pause: %w", t.sock, err)
	}
	if !running {
		t.paused.Store(true)
		return nil
	}
	if _, err := t.qmp.Execute("stop", nil); err != nil {
		return fmt.Errorf("qemu %s: pause: %w", t.sock, err)
	}
	t.paused.Store(true)
	t.pausedBy.Store(true)
	t.gen.Bump()
	return nil
}

// Resume lets the guest run again (QMP cont) if our Pause stopped it, and
// moves the generation; a pause that is not ours is left alone.
func (t *Target) Resume() error {
	if !t.pausedBy.Load() {
		return nil
	}
	if _, err := t.qmp.Execute("cont", nil); err != nil {
		return fmt.Errorf("qemu %s: resume: %w", t.sock, err)
	}
	t.paused.Store(false)
	t.pausedBy.Store(false)
	t.gen.Bump()
	return nil
}

// Generation implements vmi.Generationer.
func (t *Target) Generation() *vmi.Generation { return &t.gen }

// Paused reports whether the guest is stopped, as far as QMP has told us.
func (t *Target) Paused() bool { return t.paused.Load() }

// PID is QEMU's process id (from the socket's peer credentials), 0 if unknown.
func (t *Target) PID() int { return t.pid }

// Kind names the target and how its RAM is read.
func (t *Target) Kind() string {
	switch {
	case t.nProc == 0:
		return "live QEMU (shared RAM file)"
	case t.nFile == 0:
		return "live QEMU (process memory)"
	}
	return "live QEMU (shared RAM file and process memory)"
}

// Close resumes the guest if our Pause holds it, and drops the QMP
// connection and the mappings; a guest that was paused by anyone else stays
// paused. Close is idempotent.
func (t *Target) Close() error {
	if t.closed {
		return nil
	}
	var err error
	if t.qmp != nil && !t.qmp.Gone() {
		err = t.Resume()
	}
	t.closed = true
	// Pages handed out by PhysPage are about to be unmapped.
	t.gen.Bump()
	if t.qmp != nil {
		if cerr := t.qmp.Close(); err == nil {
			err = cerr
		}
	}
	for _, f := range t.files {
		if e := unix.Munmap(f); e != nil && err == nil {
			err = e
		}
	}
	t.files, t.regions = nil, nil
	return err
}
