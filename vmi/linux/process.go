package linux

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/paging"
)

// Process address spaces: a task found by pid on the kernel's task list,
// its mm_struct, and a page walk rooted at mm->pgd.
//
// The root is mm->pgd, the kernel's half of the process's page tables. With
// page-table isolation (PTI) a process has two top-level tables side by
// side: the kernel's (mm->pgd), which maps both kernel and user space, and
// the user's (the next page), which CR3 holds while the CPU runs in user
// mode and which maps user space and only a trampoline of the kernel. Both
// share the lower-level tables of user space (the kernel's marks them NX, a
// bit introspection ignores), so the kernel's half reads all of user memory
// with or without PTI, and a CR3 taken from a vCPU is never needed. The
// paging mode (4- or 5-level, PAE, legacy 32-bit) is the kernel's own: every
// process of a kernel uses the same.

// maxTasks bounds the walk of the task list: the kernel's PID_MAX_LIMIT
// (4,194,304) is the most tasks there can be.
const maxTasks = 1 << 22

// Process is one process's user address space. It reads through its own
// page walk, whose translation cache follows the target's generation as
// the kernel's does.
type Process struct {
	k     *Kernel
	info  vmi.ProcessInfo
	space *paging.Space
	// faultVMAs are the VMAs that fault() last looked an address up in,
	// read under generation faultGen (kept while the target has not run),
	// so that a script probing many absent pages walks the tree once.
	faultVMAs []vmi.VMA
	faultGen  uint64
}

// Process opens the address space of the process with this pid (or thread
// id: a thread shares its leader's address space), found by FindTask.
func (k *Kernel) Process(pid int) (*Process, error) {
	task, err := k.FindTask(pid)
	if err != nil {
		return nil, err
	}
	return k.ProcessOf(task)
}

// OpenProcess is Process for callers that know only vmi.Process.
func (k *Kernel) OpenProcess(pid int) (vmi.Process, error) {
	p, err := k.Process(pid)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// OpenProcessOf is ProcessOf for callers that know only vmi.Process.
func (k *Kernel) OpenProcessOf(task uint64) (vmi.Process, error) {
	p, err := k.ProcessOf(task)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// readPtr reads a kernel pointer.
func (k *Kernel) readPtr(va uint64) (uint64, error) {
	return k.Space.ReadUint(va, k.PointerSize())
}

// offsets looks up several members of one struct.
func (k *Kernel) offsets(structName string, members ...string) ([]uint64, error) {
	out := make([]uint64, len(members))
	for i, m := range members {
		off, err := k.Offsetof(structName, m)
		if err != nil {
			return nil, err
		}
		out[i] = off
	}
	return out, nil
}

// FindTask returns the address of the task_struct whose pid (a thread id,
// to the kernel) is this: a thread group leader on the list that starts at
// init_task, or one of a leader's threads (task_struct.thread_group before
// 6.7, signal->thread_head with thread_node from 6.7 on). pid 0 is
// init_task itself. Every walk is bounded and stops at a node seen before,
// so a corrupted or cyclic list ends with an error.
func (k *Kernel) FindTask(pid int) (uint64, error) {
	if pid < 0 || pid >= maxTasks {
		return 0, fmt.Errorf("find pid %d: pids run from 0 to %d: %w", pid, maxTasks-1, vmi.ErrNotFound)
	}
	head, err := k.Symbol("init_task")
	if err != nil {
		return 0, fmt.Errorf("find pid %d: %w", pid, err)
	}
	if pid == 0 {
		return head, nil
	}
	off, err := k.offsets("task_struct", "tasks", "pid")
	if err != nil {
		return 0, fmt.Errorf("find pid %d: %w", pid, err)
	}
	tasksOff, pidOff := off[0], off[1]
	threads := k.threadLists()
	budget := maxTasks
	isPid := func(task uint64) (bool, error) {
		v, err := k.Space.ReadUint(task+pidOff, 4)
		if err != nil {
			return false, fmt.Errorf("read pid of task %#x: %w", task, err)
		}
		return int32(v) == int32(pid), nil
	}
	var found uint64
	leaders, err := k.walkList(head+tasksOff, &budget, func(node uint64) (bool, error) {
		task := node - tasksOff
		if ok, err := isPid(task); ok || err != nil {
			found = task
			return true, err
		}
		if threads == nil {
			return false, nil
		}
		listHead, memberOff, err := threads(task)
		if err != nil || listHead == 0 {
			return false, err
		}
		_, err = k.walkList(listHead, &budget, func(node uint64) (bool, error) {
			t := node - memberOff
			if t == task {
				return false, nil
			}
			ok, err := isPid(t)
			if ok {
				found = t
			}
			return ok, err
		})
		return found != 0, err
	})
	switch {
	case err != nil:
		return 0, fmt.Errorf("find pid %d: %w", pid, err)
	case found != 0:
		return found, nil
	}
	return 0, fmt.Errorf("find pid %d: no such task (%d processes on the task list): %w", pid, leaders, vmi.ErrNotFound)
}

// threadLists says where a leader's threads are listed: a function giving
// the list's head (a list_head to walk from) and the offset of the
// list_head in each thread's task_struct. Nil when the layout has neither
// kind of list.
func (k *Kernel) threadLists() func(leader uint64) (head, memberOff uint64, err error) {
	if off, err := k.Offsetof("task_struct", "thread_group"); err == nil {
		// A ring through every thread, the leader's node included.
		return func(leader uint64) (uint64, uint64, error) { return leader + off, off, nil }
	}
	off, err := k.offsets("task_struct", "signal", "thread_node")
	if err != nil {
		return nil
	}
	headOff, err := k.Offsetof("signal_struct", "thread_head")
	if err != nil {
		return nil
	}
	return func(leader uint64) (uint64, uint64, error) {
		sig, err := k.readPtr(leader + off[0])
		if err != nil {
			return 0, 0, fmt.Errorf("read signal of task %#x: %w", leader, err)
		}
		if sig == 0 {
			return 0, 0, nil
		}
		return sig + headOff, off[1], nil
	}
}

// walkList calls fn with each node of the circular list_head list at head
// (head itself excluded) until fn returns true or an error, or the list
// ends. It counts the nodes against *budget and stops at a node seen twice.
// It returns how many nodes it visited.
func (k *Kernel) walkList(head uint64, budget *int, fn func(node uint64) (bool, error)) (int, error) {
	seen := map[uint64]bool{head: true}
	node, n := head, 0
	for {
		next, err := k.readPtr(node)
		if err != nil {
			return n, fmt.Errorf("read list node at %#x: %w", node, err)
		}
		if next == head {
			return n, nil
		}
		if seen[next] {
			return n, fmt.Errorf("the list at %#x loops back to %#x (from %#x) before its head: %w", head, next, node, vmi.ErrFormat)
		}
		if *budget <= 0 {
			return n, fmt.Errorf("more than %d tasks: %w", maxTasks, vmi.ErrLimit)
		}
		*budget--
		seen[next] = true
		n++
		if stop, err := fn(next); stop || err != nil {
			return n, err
		}
		node = next
	}
}

// ProcessOf opens the user address space of the task at this address (a
// struct task_struct): the page walk rooted at its mm->pgd. A kernel thread
// (mm NULL) gives an error wrapping vmi.ErrNoAddressSpace.
func (k *Kernel) ProcessOf(task uint64) (*Process, error) {
	off, err := k.offsets("task_struct", "pid", "comm", "mm")
	if err != nil {
		return nil, fmt.Errorf("process of task %#x: %w", task, err)
	}
	pgdOff, err := k.Offsetof("mm_struct", "pgd")
	if err != nil {
		return nil, fmt.Errorf("process of task %#x: %w", task, err)
	}
	pid, err := k.Space.ReadUint(task+off[0], 4)
	if err != nil {
		return nil, fmt.Errorf("process of task %#x: read pid: %w", task, err)
	}
	var comm [16]byte // TASK_COMM_LEN
	if err := k.Space.Read(comm[:], task+off[1]); err != nil {
		return nil, fmt.Errorf("process of task %#x: read comm: %w", task, err)
	}
	name := string(comm[:])
	if i := bytes.IndexByte(comm[:], 0); i >= 0 {
		name = string(comm[:i])
	}
	info := vmi.ProcessInfo{PID: int(int32(pid)), Comm: name, Task: task}
	what := fmt.Sprintf("pid %d (%s, task %#x)", info.PID, name, task)
	if info.MM, err = k.readPtr(task + off[2]); err != nil {
		return nil, fmt.Errorf("%s: read mm: %w", what, err)
	}
	if info.MM == 0 {
		return nil, fmt.Errorf("%s is a kernel thread (or has exited): task_struct.mm is NULL: %w", what, vmi.ErrNoAddressSpace)
	}
	if info.PGD, err = k.readPtr(info.MM + pgdOff); err != nil {
		return nil, fmt.Errorf("%s: read mm->pgd (mm %#x): %w", what, info.MM, err)
	}
	// A top-level table is page-aligned, but for PAE's 32-byte PDPT.
	align := uint64(0xfff)
	if k.Space.Mode() == paging.PAE {
		align = 0x1f
	}
	if info.PGD == 0 || info.PGD&align != 0 {
		return nil, fmt.Errorf("%s: mm->pgd %#x (mm %#x) is not a page table's address: %w", what, info.PGD, info.MM, vmi.ErrFormat)
	}
	if info.Root, err = k.Space.Translate(info.PGD); err != nil {
		return nil, fmt.Errorf("%s: translate mm->pgd %#x: %w", what, info.PGD, err)
	}
	return &Process{k: k, info: info, space: paging.New(k.Target, k.Space.Mode(), info.Root)}, nil
}

// Info names the process and its page-table root.
func (p *Process) Info() vmi.ProcessInfo { return p.info }

// Space is the process's page walk.
func (p *Process) Space() *paging.Space { return p.space }

// PointerSize is the kernel's (a 32-bit process on a 64-bit kernel reads
// 8-byte pointers with read_u32 itself).
func (p *Process) PointerSize() int { return p.k.PointerSize() }

// ReadVirt reads the process's virtual memory. A page that is not present
// gives a *vmi.PageFault saying why.
func (p *Process) ReadVirt(buf []byte, va uint64) error {
	if err := p.space.Read(buf, va); err != nil {
		return p.fault(err)
	}
	return nil
}

// ReadUintVirt reads a little-endian integer of 1, 2, 4 or 8 bytes.
func (p *Process) ReadUintVirt(va uint64, size int) (uint64, error) {
	v, err := p.space.ReadUint(va, size)
	if err != nil {
		return 0, p.fault(err)
	}
	return v, nil
}

// Translate maps a virtual address of the process to a guest-physical one.
func (p *Process) Translate(va uint64) (uint64, error) {
	pa, err := p.space.Translate(va)
	if err != nil {
		return 0, p.fault(err)
	}
	return pa, nil
}

// Linux x86 PTE bits of a page that is not present to the CPU.
const pteProtNone = 1 << 8 // _PAGE_PROTNONE (the global bit's place)

// fault turns a walk that found no page into a *vmi.PageFault that says
// why: no mapping, a mapping never faulted in, a swap entry, PROT_NONE.
// Other errors (a table that could not be read, a malformed entry) pass
// through with the process named.
func (p *Process) fault(err error) error {
	var te *paging.TranslateError
	if !errors.As(err, &te) || te.Err != vmi.ErrNotPresent {
		return fmt.Errorf("process %d (%s): %w", p.info.PID, p.info.Comm, err)
	}
	pf := &vmi.PageFault{PID: p.info.PID, Comm: p.info.Comm, VA: te.VA, Entry: te.Entry, Err: err}
	switch {
	case te.Level == paging.LevelPT && te.Entry&pteProtNone != 0:
		pf.Reason = vmi.FaultProtNone
	case te.Level == paging.LevelPT && te.Entry != 0:
		pf.Reason = vmi.FaultSwappedOut
	default:
		pf.Reason = vmi.FaultNotFaulted
		if vmas, ok := p.vmasForFault(); ok && !covers(vmas, te.VA) {
			pf.Reason = vmi.FaultNotMapped
		}
	}
	return pf
}

// vmasForFault returns the VMAs, read again only when the target has run
// since they were last read (a dump never runs).
func (p *Process) vmasForFault() ([]vmi.VMA, bool) {
	var gen uint64
	g, live := p.k.Target.(vmi.Generationer)
	if live {
		gen = g.Generation().Load()
	}
	if p.faultVMAs != nil && (!live || gen == p.faultGen) {
		return p.faultVMAs, true
	}
	vmas, err := p.VMAs()
	if err != nil {
		return nil, false
	}
	if vmas == nil {
		vmas = []vmi.VMA{}
	}
	p.faultVMAs, p.faultGen = vmas, gen
	return vmas, true
}

func covers(vmas []vmi.VMA, va uint64) bool {
	for _, v := range vmas {
		if va >= v.Start && va < v.End {
			return true
		}
	}
	return false
}
