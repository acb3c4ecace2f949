package bindings

import (
	"fmt"

	lua "github.com/yuin/gopher-lua"

	"github.com/xascript/xascript/vmi"
)

// maxPID is one past the kernel's PID_MAX_LIMIT.
const maxPID = 1 << 22

func processArea(env *Env) Area {
	return Area{
		Name:        "process",
		Title:       "Process address spaces",
		NeedsTarget: true,
		Doc: "The global read functions read kernel virtual addresses. A process's user memory is read through its own " +
			"page tables (Linux: `mm->pgd`, the kernel's half when page-table isolation is on, which maps all of user " +
			"space; 4- and 5-level, PAE and 32-bit paging as the kernel uses), through the object that `process(pid)` " +
			"or `process_of(task)` (or `task:space()` on a view of a `task_struct`) returns: `p:read_u32(addr)` and the other methods read like the globals of the same " +
			"name (`read_u8`, `read_u16`, `read_u32`, `read_u64`, `read_addr`, `read_cstring`, `read_bytes`, `translate`), " +
			"`p:vmas()` lists the mappings in ascending order, each a table `{start, stop, perms, flags, pgoff, offset, " +
			"file, file_error}`: `stop` is one past the end (`end` is a Lua keyword), `perms` and `offset` are what " +
			"`/proc/PID/maps` prints, `file` the mapped file's path (absent for anonymous memory; named by its dentries " +
			"up to the root of its file system, without the mount point of a file system mounted elsewhere than `/`). " +
			"A page that is not present gives `nil, err`, and `err` says why: " +
			"`not mapped` (no mapping covers it), `not faulted in` (mapped, never touched or dropped), `swapped out` " +
			"(with the swap entry) or `mapped PROT_NONE`. The object reads the live guest as it is now: its mappings " +
			"may change while the guest runs (`with_paused` holds it still).",
		Bindings: []Binding{
			{Name: "process", Signature: "process(pid) -> process | nil, err",
				Doc: "Opens the user address space of the process `pid`, found on the kernel's task list (a thread's id " +
					"opens its process's address space, with the thread's `task` and `comm`). Returns `nil, err` when there is no such process, and " +
					"for a kernel thread, which has no user address space (`err` says `kernel thread`). Fields: `pid`, " +
					"`comm`, `task` (its `task_struct`), `mm`, `pgd` (the top-level table's kernel address) and `root` " +
					"(its physical address).",
				Fn: openProcess(env, false)},
			{Name: "process_of", Signature: "process_of(task) -> process | nil, err",
				Doc: "Opens the user address space of the task whose `task_struct` is at kernel address `task` (as a " +
					"walk of the task list yields them, or a view of it), like `process`. A typed view of a " +
					"`task_struct` has the same as a method: `t:space()` (see `view`).",
				Fn: openProcess(env, true)},
		},
	}
}

// procGuest reads through a process's page tables: the virtual reads are
// the process's, everything else (physical reads, symbols, layouts) the
// kernel's, so the memory bindings' helpers work on it unchanged.
type procGuest struct {
	vmi.Process
	kernel Guest
}

func (g procGuest) ReadPhys(buf []byte, pa uint64) error { return g.kernel.ReadPhys(buf, pa) }
func (g procGuest) Symbol(name string) (uint64, error)   { return g.kernel.Symbol(name) }
func (g procGuest) Offsetof(s, m string) (uint64, error) { return g.kernel.Offsetof(s, m) }
func (g procGuest) Sizeof(t string) (uint64, error)      { return g.kernel.Sizeof(t) }

func openProcess(env *Env, byTask bool) lua.LGFunction {
	return func(L *lua.LState) int {
		g := needGuest(L, env)
		po, ok := g.(vmi.ProcessOpener)
		if !ok {
			L.RaiseError("this target's OS profile cannot open process address spaces")
		}
		var p vmi.Process
		var err error
		if byTask {
			p, err = po.OpenProcessOf(checkAddress(L, 1))
		} else {
			n, ok := L.Get(1).(lua.LNumber)
			if !ok || float64(n) != float64(int(n)) || n < 0 || n >= maxPID {
				L.ArgError(1, fmt.Sprintf("pid must be a whole number from 0 to %d", maxPID-1))
			}
			p, err = po.OpenProcess(int(n))
		}
		if err != nil {
			return fault(L, err)
		}
		L.Push(processTable(L, env, procGuest{Process: p, kernel: g}))
		return 1
	}
}

// processMethods are the methods of a process object, with the signatures
// and docs that luatypes.go declares for editors.
var processMethods = []Binding{
	{Name: "read_u8", Signature: "read_u8(addr) -> number | nil, err", Doc: "Reads an unsigned byte at the process's virtual address `addr`."},
	{Name: "read_u16", Signature: "read_u16(addr) -> number | nil, err", Doc: "Reads an unsigned 16-bit integer."},
	{Name: "read_u32", Signature: "read_u32(addr) -> number | nil, err", Doc: "Reads an unsigned 32-bit integer."},
	{Name: "read_u64", Signature: "read_u64(addr) -> address | nil, err", Doc: "Reads a 64-bit value, as an address value."},
	{Name: "read_addr", Signature: "read_addr(addr) -> address | nil, err", Doc: "Reads a pointer of the kernel's size (4 or 8 bytes)."},
	{Name: "read_cstring", Signature: "read_cstring(addr [, max]) -> string | nil, err",
		Doc: fmt.Sprintf("Reads a NUL-terminated string of at most `max` bytes (default %d, at most %d).", defaultCString, maxCString)},
	{Name: "read_bytes", Signature: "read_bytes(addr, n) -> string | nil, err", Doc: fmt.Sprintf("Reads `n` bytes (at most %d).", maxReadBytes)},
	{Name: "translate", Signature: "translate(va) -> address | nil, err", Doc: "Translates the process's virtual address `va` to a guest-physical one."},
	{Name: "vmas", Signature: "vmas() -> vmas | nil, err",
		Doc: "Lists the process's memory mappings in ascending order (Linux: the maple tree `mm->mm_mt` from 6.1 on, the " +
			"`mmap` list before). A mapped file's path is the names of its dentries up to the root of its file system: " +
			"a file on a file system mounted elsewhere than `/` is named from that file system's root."},
}

// processTable builds a process object: its fields, and a closure per
// method bound to g. A method called with a dot (p.read_u32(a)) instead of
// a colon is a script bug that would read the wrong address: it raises.
// The methods' arguments start at 2, after the object (left on the stack:
// removing it costs a stack shift per call).
func processTable(L *lua.LState, env *Env, g procGuest) *lua.LTable {
	info := g.Info()
	t := L.NewTable()
	t.RawSetString("pid", lua.LNumber(info.PID))
	t.RawSetString("comm", lua.LString(info.Comm))
	for name, v := range map[string]uint64{"task": info.Task, "mm": info.MM, "pgd": info.PGD, "root": info.Root} {
		pushAddress(L, env, v)
		t.RawSetString(name, L.Get(-1))
		L.Pop(1)
	}
	method := func(name string, fn lua.LGFunction) {
		t.RawSetString(name, L.NewFunction(func(L *lua.LState) int {
			if L.Get(1) != t {
				L.RaiseError("%s: call it as p:%s(...), with a colon", name, name)
			}
			return fn(L)
		}))
	}
	for _, size := range []int{1, 2, 4, 8} {
		size := size
		method(fmt.Sprintf("read_u%d", size*8), func(L *lua.LState) int {
			v, err := readUintAt(g, false, env.scratch[:size], checkAddress(L, 2))
			if err != nil {
				return fault(L, err)
			}
			pushUint(L, env, size, v)
			return 1
		})
	}
	method("read_addr", func(L *lua.LState) int {
		v, err := readPtr(g, false, env.scratch[:], checkAddress(L, 2))
		if err != nil {
			return fault(L, err)
		}
		pushAddress(L, env, v)
		return 1
	})
	method("read_cstring", func(L *lua.LState) int {
		addr := checkAddress(L, 2)
		max := L.OptInt(3, defaultCString)
		if max < 0 || max > maxCString {
			L.ArgError(3, fmt.Sprintf("max must be in [0, %d]", maxCString))
		}
		s, err := cstring(g, false, addr, max)
		if err != nil {
			return fault(L, err)
		}
		L.Push(lua.LString(s))
		return 1
	})
	method("read_bytes", func(L *lua.LState) int {
		addr := checkAddress(L, 2)
		n := L.CheckInt(3)
		if n < 0 || n > maxReadBytes {
			L.ArgError(3, fmt.Sprintf("n must be in [0, %d]", maxReadBytes))
		}
		buf := make([]byte, n)
		if err := g.ReadVirt(buf, addr); err != nil {
			return fault(L, err)
		}
		L.Push(lua.LString(buf))
		return 1
	})
	method("translate", func(L *lua.LState) int {
		pa, err := g.Translate(checkAddress(L, 2))
		if err != nil {
			return fault(L, err)
		}
		pushAddress(L, env, pa)
		return 1
	})
	method("vmas", func(L *lua.LState) int {
		vmas, err := g.VMAs()
		if err != nil {
			return fault(L, err)
		}
		list := L.CreateTable(len(vmas), 0)
		for _, v := range vmas {
			list.Append(vmaTable(L, env, v))
		}
		L.Push(list)
		return 1
	})
	return t
}

// Linux's VM_* bits that /proc/PID/maps shows as permissions.
const (
	vmRead     = 0x1
	vmWrite    = 0x2
	vmExec     = 0x4
	vmMayShare = 0x80
)

// vmaTable is one mapping as scripts see it.
func vmaTable(L *lua.LState, env *Env, v vmi.VMA) *lua.LTable {
	t := L.CreateTable(0, 8)
	// /proc/PID/maps prints the offset of file mappings only: anonymous
	// memory's vm_pgoff is its own start address in pages.
	var offset uint64
	if v.FileAddr != 0 {
		offset = v.PgOff << 12
	}
	for name, x := range map[string]uint64{"start": v.Start, "stop": v.End, "flags": v.Flags, "pgoff": v.PgOff, "offset": offset} {
		pushAddress(L, env, x)
		t.RawSetString(name, L.Get(-1))
		L.Pop(1)
	}
	perms := []byte("---p")
	for i, bit := range []uint64{vmRead, vmWrite, vmExec} {
		if v.Flags&bit != 0 {
			perms[i] = "rwx"[i]
		}
	}
	if v.Flags&vmMayShare != 0 {
		perms[3] = 's'
	}
	t.RawSetString("perms", lua.LString(perms))
	if v.File != "" {
		t.RawSetString("file", lua.LString(v.File))
	}
	if v.FileErr != "" {
		t.RawSetString("file_error", lua.LString(v.FileErr))
	}
	return t
}
