package bindings

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/xascript/xascript/internal/fakeguest"
	"github.com/xascript/xascript/vmi"
)

// fakeProc is a process whose memory is one page at 0x400000.
type fakeProc struct {
	page [4096]byte
	vmas []vmi.VMA
}

func (p *fakeProc) ReadVirt(buf []byte, va uint64) error {
	if va < 0x400000 || va+uint64(len(buf)) > 0x401000 {
		return &vmi.PageFault{PID: 7, Comm: "cat", VA: va, Reason: vmi.FaultNotMapped, Err: vmi.ErrNotPresent}
	}
	copy(buf, p.page[va-0x400000:])
	return nil
}

func (p *fakeProc) ReadUintVirt(va uint64, size int) (uint64, error) {
	var b [8]byte
	if err := p.ReadVirt(b[:size], va); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

func (p *fakeProc) Translate(va uint64) (uint64, error) {
	if err := p.ReadVirt(nil, va); err != nil {
		return 0, err
	}
	return 0x9000000 + va - 0x400000, nil
}
func (p *fakeProc) PointerSize() int { return 8 }
func (p *fakeProc) Info() vmi.ProcessInfo {
	return vmi.ProcessInfo{PID: 7, Comm: "cat", Task: 0xffff888000100000, MM: 0xffff888000200000, PGD: 0xffff888000300000, Root: 0x300000}
}
func (p *fakeProc) VMAs() ([]vmi.VMA, error) { return p.vmas, nil }

// procGuestFake is a kernel (fakeguest) that opens pid 7 and refuses pid 2
// as a kernel thread.
type procGuestFake struct {
	*fakeguest.Guest
	p *fakeProc
}

func (g procGuestFake) OpenProcess(pid int) (vmi.Process, error) {
	switch pid {
	case 7:
		return g.p, nil
	case 2:
		return nil, fmt.Errorf("pid 2 (kthreadd) is a kernel thread: %w", vmi.ErrNoAddressSpace)
	}
	return nil, fmt.Errorf("no pid %d: %w", pid, vmi.ErrNotFound)
}

func (g procGuestFake) OpenProcessOf(task uint64) (vmi.Process, error) {
	if task == 0xffff888000100000 {
		return g.p, nil
	}
	return nil, fmt.Errorf("task %#x: %w", task, vmi.ErrFormat)
}

func newProcState(t *testing.T) *lua.LState {
	p := &fakeProc{vmas: []vmi.VMA{
		{Start: 0x400000, End: 0x401000, Flags: 0x75, PgOff: 1, FileAddr: 0xffff888000400000, File: "/bin/cat"},
		{Start: 0x7ffd0000, End: 0x7ffd2000, Flags: 0x100173, PgOff: 0x7ffd0},
		{Start: 0x7ffe0000, End: 0x7ffe1000, Flags: 0xff, FileAddr: 0xffff888000400100, FileErr: "read dentry: not present"},
	}}
	copy(p.page[0x10:], "process memory\x00")
	binary.LittleEndian.PutUint64(p.page[0x20:], 0xfedcba9876543210)
	L := lua.NewState()
	t.Cleanup(L.Close)
	Register(L, &Env{Guest: procGuestFake{Guest: fakeguest.New(), p: p}})
	return L
}

func TestProcessObject(t *testing.T) {
	L := newProcState(t)
	if err := L.DoString(`p = assert(process(7)); q = assert(process_of(p.task)); vs = assert(p:vmas())`); err != nil {
		t.Fatal(err)
	}
	checkTable(t, classByName(t, "xascript.process"), L.GetGlobal("p"), true)
	vs := L.GetGlobal("vs").(*lua.LTable)
	if vs.Len() != 3 {
		t.Fatalf("%d vmas", vs.Len())
	}
	checkTable(t, classByName(t, "xascript.vma"), vs.RawGetInt(1), false)
	checkTable(t, classByName(t, "xascript.vma"), vs.RawGetInt(2), false)
	checkTable(t, classByName(t, "xascript.vma"), vs.RawGetInt(3), false)
	for _, c := range []struct{ expr, want string }{
		{`p:read_cstring(0x400010)`, "process memory"},
		{`p:read_bytes(0x400010, 7)`, "process"},
		{`p:read_u8(0x400010)`, "112"},
		{`p:read_u16(0x400010)`, "29296"},
		{`p:read_u32(0x400010)`, "1668248176"},
		{`p:read_u64(0x400020)`, "0xfedcba9876543210"},
		{`p:read_addr(0x400020)`, "0xfedcba9876543210"},
		{`p:translate(0x400020)`, "0x9000020"},
		{`select(2, p:read_u32(0x500000))`, "process 7 (cat): page at 0x500000 not present: not mapped (no mapping covers it)"},
		{`p.pid .. " " .. p.comm .. " " .. tostring(p.root) .. " " .. q.comm`, "7 cat 0x300000 cat"},
		{`vs[1].perms .. " " .. tostring(vs[1].offset) .. " " .. vs[1].file .. " " .. tostring(vs[1].stop)`, "r-xp 0x1000 /bin/cat 0x401000"},
		{`vs[2].perms .. " " .. tostring(vs[2].file) .. " " .. tostring(vs[2].offset) .. " " .. tostring(vs[2].pgoff)`, "rw-p nil 0x0 0x7ffd0"},
		{`vs[3].perms .. " " .. vs[3].file_error`, "rwxs read dentry: not present"},
		{`select(2, process(2))`, "pid 2 (kthreadd) is a kernel thread: no user address space"},
		{`select(2, process(99))`, "no pid 99: not found"},
		// The kernel's own read of the same address is another space.
		{`tostring((read_u32(0x400010)))`, "nil"},
	} {
		if err := L.DoString(`r = tostring(` + c.expr + `)`); err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		if got := L.GetGlobal("r").String(); got != c.want {
			t.Errorf("%s = %q, want %q", c.expr, got, c.want)
		}
	}
	for _, c := range []struct{ src, says string }{
		{`p.read_u32(0x400010)`, "with a colon"},
		{`process(-1)`, "pid must be a whole number"},
		{`process(1.5)`, "pid must be a whole number"},
		{`process("7")`, "pid must be a whole number"},
		{`p:read_bytes(0x400000, -1)`, "n must be in"},
		{`p:read_cstring(0x400000, 1e9)`, "max must be in"},
	} {
		if err := L.DoString(c.src); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v; want an error saying %q", c.src, err, c.says)
		}
	}
}

// A guest whose profile opens no processes says so.
func TestProcessUnsupported(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	Register(L, &Env{Guest: fakeguest.New()})
	if err := L.DoString(`process(1)`); err == nil || !strings.Contains(err.Error(), "cannot open process") {
		t.Errorf("process(1) on a guest without processes: %v", err)
	}
}
