package qemu

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/xascript/xascript/vmi"
)

func TestParseGPA2HVA(t *testing.T) {
	hva, name, err := ParseGPA2HVA("Host virtual address for 0x100000 (pc.ram) is 0x7f7d43f00000\r\n")
	if err != nil || hva != 0x7f7d43f00000 || name != "pc.ram" {
		t.Errorf("got %#x %q %v", hva, name, err)
	}
	// Region names may hold spaces and parentheses.
	hva, name, err = ParseGPA2HVA("Host virtual address for 0xfd000000 (vga.vram (x)) is 0x7f00000000\n")
	if err != nil || hva != 0x7f00000000 || name != "vga.vram (x)" {
		t.Errorf("odd name: got %#x %q %v", hva, name, err)
	}
	for text, want := range map[string]error{
		"No memory is mapped at address 0x8000000\r\n": vmi.ErrNotPresent,
		"Memory at address 0xfee00000 is not RAM\r\n":  vmi.ErrNotPresent,
		"unknown command: 'gpa2hva'\r\n":               vmi.ErrUnsupported,
		"":                                             vmi.ErrFormat,
		"Host virtual address for 0x0 (pc.ram) is 0xzz\r\n":            vmi.ErrFormat,
		"Host virtual address for 0x0 (pc.ram) is 0x1ffffffffffffffff": vmi.ErrFormat,
	} {
		if _, _, err := ParseGPA2HVA(text); !errors.Is(err, want) {
			t.Errorf("%q: %v, want %v", text, err, want)
		}
	}
	if _, _, err := ParseGPA2HVA("unknown command: 'gpa2hva'"); !errors.Is(err, errNoGPA2HVA) {
		t.Errorf("unknown command: %v, want errNoGPA2HVA", err)
	}
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseMaps(t *testing.T) {
	maps, err := ParseMaps(readTestdata(t, "proc-maps-qemu-anon.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(maps) != 320 {
		t.Errorf("%d mappings, want 320", len(maps))
	}
	var ram Mapping
	for _, m := range maps {
		if m.Start == 0x7f7d43e00000 {
			ram = m
		}
	}
	if ram != (Mapping{Start: 0x7f7d43e00000, End: 0x7f7d4be00000, Perms: "rw-p"}) {
		t.Errorf("RAM mapping %+v", ram)
	}
	for i := 1; i < len(maps); i++ {
		if maps[i].Start < maps[i-1].End {
			t.Fatalf("mappings %d and %d overlap", i-1, i)
		}
	}

	maps, err = ParseMaps("7f0000000000-7f0008000000 rw-s 00001000 00:1b 4    /dev/shm/a b (deleted)\n" +
		"7ffd1000-7ffd2000 r--p 00000000 00:00 0                  [vvar]\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []Mapping{
		{Start: 0x7f0000000000, End: 0x7f0008000000, Perms: "rw-s", Offset: 0x1000, Path: "/dev/shm/a b (deleted)"},
		{Start: 0x7ffd1000, End: 0x7ffd2000, Perms: "r--p", Path: "[vvar]"},
	}
	if len(maps) != 2 || maps[0] != want[0] || maps[1] != want[1] {
		t.Errorf("got %+v, want %+v", maps, want)
	}
	for _, bad := range []string{
		"7f00-7e00 rw-p 0 00:00 0\n",     // ends before it starts
		"7f00 rw-p 0 00:00 0\n",          // no range
		"7f00-7f10 rw 0 00:00 0\n",       // short perms
		"7f00-7f10 rw-p zz 00:00 0\n",    // offset
		"7f00-7f10 rw-p 0 00:00\n",       // too few fields
		"0-1ffffffffffffffff rw-p 0 0 0", // overflow
	} {
		if _, err := ParseMaps(bad); !errors.Is(err, vmi.ErrFormat) {
			t.Errorf("%q: %v, want ErrFormat", bad, err)
		}
	}
}

func TestParseRAMBlocks(t *testing.T) {
	blocks, err := ParseRAMBlocks(readTestdata(t, "info-ramblock-q35-anon.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 6 {
		t.Fatalf("%d blocks: %+v", len(blocks), blocks)
	}
	if b := blocks[0]; b != (RAMBlock{Name: "pc.ram", PageSize: "4 KiB", Offset: 0, Used: 0x8000000, Total: 0x8000000}) {
		t.Errorf("block 0: %+v", b)
	}
	if b := blocks[1]; b.Name != "/rom@etc/acpi/tables" || b.Used != 0x20000 || b.Total != 0x200000 || b.Offset != 0x8080000 {
		t.Errorf("block 1: %+v", b)
	}
	blocks, err = ParseRAMBlocks(readTestdata(t, "info-ramblock-q35.txt"))
	if err != nil || blocks[0].Name != "mem" {
		t.Errorf("q35 with a memdev: %+v, %v", blocks, err)
	}
	if b, ok := blockFor(blocks, "/rom@etc/acpi/tables"); !ok || b.Used != 0x20000 {
		t.Errorf("blockFor: %+v %v", b, ok)
	}
	dev := []RAMBlock{{Name: "pc.ram"}, {Name: "0000:00:02.0/vga.vram", Total: 0x1000000}}
	if b, ok := blockFor(dev, "vga.vram"); !ok || b.Total != 0x1000000 {
		t.Errorf("blockFor a device's block: %+v %v", b, ok)
	}
	if _, ok := blockFor(blocks, "pc.ram"); ok {
		t.Error("blockFor found pc.ram in a guest without one")
	}
	for _, bad := range []string{
		"",
		"Block Name PSize Offset Used Total\n",
		"pc.ram 4 KiB 0x0 0x8000000\n",
		"pc.ram 4 KiB 0x0 0x8000000 8000000\n",
		"pc.ram 4 KiB 0x0 0x8000000 0xzz\n",
	} {
		if _, err := ParseRAMBlocks(bad); !errors.Is(err, vmi.ErrFormat) {
			t.Errorf("%q: %v, want ErrFormat", bad, err)
		}
	}
}

func TestGuessBlockHVA(t *testing.T) {
	maps, err := ParseMaps(readTestdata(t, "proc-maps-qemu-anon.txt"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := ParseRAMBlocks(readTestdata(t, "info-ramblock-q35-anon.txt"))
	if err != nil {
		t.Fatal(err)
	}
	// What gpa2hva said for this QEMU.
	for name, want := range map[string]uint64{"pc.ram": 0x7f7d43e00000, "pc.bios": 0x7f7d98200000} {
		b, _ := blockFor(blocks, name)
		got, err := GuessBlockHVA(maps, b, "")
		if err != nil || got != want {
			t.Errorf("%s: %#x, %v; want %#x", name, got, err, want)
		}
	}

	ram := RAMBlock{Name: "mem", Total: 0x8000000}
	file := []Mapping{
		{Start: 0x7f0000000000, End: 0x7f0008000000, Perms: "rw-p"},
		{Start: 0x7f0010000000, End: 0x7f0018000000, Perms: "rw-s", Path: "/dev/shm/vm (deleted)"},
		{Start: 0x7f0018000000, End: 0x7f0018001000, Perms: "---p"},
	}
	if got, err := GuessBlockHVA(file, ram, "/dev/shm/vm"); err != nil || got != 0x7f0010000000 {
		t.Errorf("file backend: %#x, %v", got, err)
	}
	// No guard page, but the only candidate.
	if got, err := GuessBlockHVA(file, ram, ""); err != nil || got != 0x7f0000000000 {
		t.Errorf("one anonymous candidate: %#x, %v", got, err)
	}
	two := []Mapping{
		{Start: 0x1000000, End: 0x9000000, Perms: "rw-p"}, {Start: 0x9000000, End: 0x9001000, Perms: "---p"},
		{Start: 0x10000000, End: 0x18000000, Perms: "rw-p"}, {Start: 0x18000000, End: 0x18001000, Perms: "---p"},
	}
	if _, err := GuessBlockHVA(two, ram, ""); !errors.Is(err, vmi.ErrUnsupported) {
		t.Errorf("two candidates: %v, want ErrUnsupported", err)
	}
	if _, err := GuessBlockHVA(two[:1], RAMBlock{Name: "x", Total: 0x1000}, ""); !errors.Is(err, vmi.ErrNotFound) {
		t.Errorf("no candidate: %v, want ErrNotFound", err)
	}
	// Read-only mappings and mappings of other files never count.
	ro := []Mapping{{Start: 0, End: 0x8000000, Perms: "r--p"}, {Start: 0x8000000, End: 0x10000000, Perms: "rw-p", Path: "/lib/x"}}
	if _, err := GuessBlockHVA(ro, ram, ""); !errors.Is(err, vmi.ErrNotFound) {
		t.Errorf("read-only: %v, want ErrNotFound", err)
	}
}

func TestCheckMapped(t *testing.T) {
	maps := []Mapping{
		{Start: 0x1000, End: 0x3000, Perms: "rw-p"},
		{Start: 0x3000, End: 0x5000, Perms: "r--p"}, // split but contiguous
		{Start: 0x6000, End: 0x7000, Perms: "rw-p"}, // after a gap
		{Start: 0x7000, End: 0x8000, Perms: "---p"},
	}
	for _, c := range []struct {
		hva, n uint64
		ok     bool
	}{
		{0x1000, 0x2000, true},
		{0x2000, 0x2000, true},
		{0x1000, 0x4000, true},
		{0x1000, 0x4001, false}, // into the gap
		{0x6000, 0x1000, true},
		{0x6000, 0x1001, false}, // into PROT_NONE
		{0x0, 0x10, false},
		{0x9000, 0x10, false},
		{^uint64(0), 2, false},
	} {
		if err := checkMapped(maps, c.hva, c.n); (err == nil) != c.ok {
			t.Errorf("checkMapped(%#x, %#x) = %v, want ok=%v", c.hva, c.n, err, c.ok)
		}
	}
}

func TestClassifyProcErr(t *testing.T) {
	dir := t.TempDir()
	old := ptraceScopeFile
	defer func() { ptraceScopeFile = old }()
	ptraceScopeFile = filepath.Join(dir, "none")

	if err := classifyProcErr(unix.ESRCH, 42, 0); !errors.Is(err, ErrGone) || !strings.Contains(err.Error(), "pid 42") {
		t.Errorf("ESRCH: %v", err)
	}
	if err := classifyProcErr(&fs.PathError{Op: "open", Path: "/proc/42/maps", Err: unix.ENOENT}, 42, 0); !errors.Is(err, ErrGone) {
		t.Errorf("no /proc/PID: %v", err)
	}
	err := classifyProcErr(unix.EPERM, 42, 0x1000)
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "root") || strings.Contains(err.Error(), "ptrace_scope") {
		t.Errorf("EPERM without Yama: %v", err)
	}
	for scope, want := range map[string]string{
		"0": "as the user QEMU runs as",
		"1": "kernel.yama.ptrace_scope is 1",
		"2": "only root",
		"3": "until reboot",
	} {
		os.WriteFile(ptraceScopeFile, []byte(scope+"\n"), 0o644)
		if err := classifyProcErr(unix.EPERM, 42, 0); !strings.Contains(err.Error(), want) {
			t.Errorf("ptrace_scope %s: %v, want it to say %q", scope, err, want)
		}
	}
	if err := classifyProcErr(&fs.PathError{Op: "open", Path: "/proc/42/maps", Err: unix.EACCES}, 42, 0); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("EACCES: %v", err)
	}
	if err := classifyProcErr(unix.EFAULT, 42, 0x7f00); !errors.Is(err, unix.EFAULT) || !strings.Contains(err.Error(), "0x7f00") {
		t.Errorf("EFAULT: %v", err)
	}
	if err := classifyProcErr(unix.ENOSYS, 42, 0); !strings.Contains(err.Error(), "process_vm_readv") {
		t.Errorf("ENOSYS: %v", err)
	}
	if err := classifyProcErr(unix.EIO, 42, 0x10); !errors.Is(err, unix.EIO) {
		t.Errorf("EIO: %v", err)
	}
}

// TestProcMemRead reads this process's own memory through process_vm_readv.
func TestProcMemRead(t *testing.T) {
	mem, err := unix.Mmap(-1, 0, 3*4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	for i := range mem {
		mem[i] = byte(i * 7)
	}
	if err := unix.Mprotect(mem[2*4096:], unix.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	base := uint64(addrOf(mem))
	p := procMem{pid: os.Getpid()}
	buf := make([]byte, 2*4096)
	if err := p.read(buf, base); err != nil {
		t.Fatal(err)
	}
	for i := range buf {
		if buf[i] != byte(i*7) {
			t.Fatalf("byte %d = %d, want %d", i, buf[i], byte(i*7))
		}
	}
	if err := p.read(buf[:3], base+4095); err != nil || buf[0] != mem[4095] || buf[2] != mem[4097] {
		t.Errorf("read across pages: %v %v", buf[:3], err)
	}
	// Up to the PROT_NONE page, then EFAULT.
	if err := p.read(buf, base+4096); !errors.Is(err, unix.EFAULT) {
		t.Errorf("read into PROT_NONE: %v, want EFAULT", err)
	}
	if p.local[0].Base != nil {
		t.Error("read keeps a pointer to the caller's buffer")
	}
}
