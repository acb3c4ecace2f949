package qemu

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/xascript/xascript/internal/socktest"
	"github.com/xascript/xascript/vmi"
)

func addrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(&b[0])) }

// fakeQEMU is a QMP server whose "guest RAM" is memory of this very test
// process, so that the process-memory path runs for real (the socket's
// peer is this process) with no guest. Its run state, stop, cont and
// events are socktest.QMP's.
type fakeQEMU struct {
	socktest.QMP
	sock    string
	running bool   // the state at the start
	memdevs string // query-memdev's answer
	file    string // mem-path of memdev "mem", "" for none
	mtree   string
	hva     map[string]uintptr // region name -> host address of its offset 0
	noGPA   bool               // answer gpa2hva as a QEMU without it
	ramblk  string             // info ramblock
	regs    atomic.Int64       // info registers calls; CR3 is 0x1000 times this
}

func (f *fakeQEMU) start(t *testing.T) {
	t.Helper()
	regs, err := ParseFlatView(f.mtree, "memory")
	if err != nil {
		t.Fatal(err)
	}
	f.Paused = !f.running
	f.Handle = func(cmd string, args map[string]any) (string, bool) {
		switch cmd {
		case "query-memdev":
			return f.memdevs, true
		case "qom-get":
			if args["path"] == "/objects/mem" && f.file != "" {
				b, _ := json.Marshal(f.file)
				return string(b), true
			}
			return "", false // QEMU answers GenericError; any error will do
		case "human-monitor-command":
			b, _ := json.Marshal(f.hmp(args["command-line"].(string), regs))
			return string(b), true
		}
		return "", false
	}
	f.sock = f.Serve(t)
}

// quit drops the connection, as QEMU does when it exits.
func (f *fakeQEMU) quit() { f.Quit() }

func (f *fakeQEMU) hmp(line string, regs []Region) string {
	switch {
	case line == "info mtree -f":
		return f.mtree
	case line == "info ramblock":
		return f.ramblk
	case line == "info registers":
		n := f.regs.Add(1)
		return fmt.Sprintf("CPU#0\r\nCR0=80050033 CR2=0 CR3=%016x CR4=000006f0\r\nEFER=0000000000000d01\r\n", n*0x1000)
	case strings.HasPrefix(line, "gpa2hva "):
		if f.noGPA {
			return "unknown command: 'gpa2hva'\r\n"
		}
		pa, _ := strconv.ParseUint(strings.TrimPrefix(line, "gpa2hva 0x"), 16, 64)
		for _, r := range regs {
			if pa >= r.Start && pa <= r.End && r.RAM() {
				if base, ok := f.hva[r.Name]; ok {
					return fmt.Sprintf("Host virtual address for %#x (%s) is %#x\r\n", pa, r.Name, uint64(base)+r.Offset+pa-r.Start)
				}
			}
		}
		return fmt.Sprintf("No memory is mapped at address %#x\r\n", pa)
	}
	return "unknown command\r\n"
}

// A q35-like layout, shrunk: a 3-page RAM block "pc.ram" split by a hole
// (its third page above 4 GiB, as QEMU puts RAM above the PCI hole), and a
// 2-page block "mem" from a shared file.
const fakeMtree = `FlatView #0
 AS "memory", root: system
 Root memory region: system
  0000000000000000-0000000000001fff (prio 0, ram): pc.ram
  0000000000002000-0000000000002fff (prio 0, ram): mem
  0000000000003000-0000000000003fff (prio 0, rom): mem @0000000000001000
  00000000fec00000-00000000fec00fff (prio 0, i/o): ioapic
  00000000fffc0000-00000000ffffffff (prio 0, rom): pc.bios
  0000000100000000-0000000100000fff (prio 0, ram): pc.ram @0000000000002000

FlatView #1
 AS "I/O", root: io
`

// fakeGuest returns RAM for fakeMtree: pc.ram in anonymous memory, mem in
// a file, each page filled with a byte naming it.
func fakeGuest(t *testing.T) (anon []byte, file string) {
	t.Helper()
	// Three pages between two PROT_NONE ones, the way QEMU maps a block,
	// so that the kernel cannot merge them with a neighbour.
	whole, err := unix.Mmap(-1, 0, 5*vmi.PageSize, unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(whole) })
	anon = whole[vmi.PageSize : 4*vmi.PageSize]
	if err := unix.Mprotect(anon, unix.PROT_READ|unix.PROT_WRITE); err != nil {
		t.Fatal(err)
	}
	for i := range anon {
		anon[i] = byte(0xa0 + i/vmi.PageSize)
	}
	file = filepath.Join(t.TempDir(), "mem")
	if err := os.WriteFile(file, append(bytes.Repeat([]byte{0xf0}, vmi.PageSize), bytes.Repeat([]byte{0xf1}, vmi.PageSize)...), 0o644); err != nil {
		t.Fatal(err)
	}
	return anon, file
}

func TestTargetProcessMemory(t *testing.T) {
	anon, file := fakeGuest(t)
	f := &fakeQEMU{
		running: true,
		memdevs: `[{"id": "mem", "share": true, "size": 8192}, {"id": "pc.ram", "share": false, "size": 12288}]`,
		file:    file,
		mtree:   fakeMtree,
		hva:     map[string]uintptr{"pc.ram": addrOf(anon)},
	}
	f.start(t)
	tg, err := Open(f.sock, Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	if got, want := tg.Kind(), "live QEMU (shared RAM file and process memory)"; got != want {
		t.Errorf("Kind() = %q, want %q", got, want)
	}
	if tg.PID() != os.Getpid() {
		t.Errorf("PID() = %d, want this process, %d", tg.PID(), os.Getpid())
	}
	// pc.bios is a firmware ROM, not guest RAM; mem's ROM part is.
	wantMap := "[[0x0-0x4000) [0x100000000-0x100001000)]"
	if got := fmt.Sprint(tg.MemoryMap()); got != wantMap {
		t.Errorf("MemoryMap() = %s, want %s", got, wantMap)
	}
	// One read across both blocks: pc.ram pages 0-1, then mem's two pages.
	buf := make([]byte, 4*vmi.PageSize)
	if err := tg.ReadPhys(buf, 0); err != nil {
		t.Fatal(err)
	}
	for i, want := range []byte{0xa0, 0xa1, 0xf0, 0xf1} {
		if page := buf[i*vmi.PageSize : (i+1)*vmi.PageSize]; !bytes.Equal(page, bytes.Repeat([]byte{want}, vmi.PageSize)) {
			t.Errorf("page %d: % x..., want %#x", i, page[:4], want)
		}
	}
	// Above 4 GiB: the block's third page.
	if err := tg.ReadPhys(buf[:16], 0x100000ff0); err != nil || buf[0] != 0xa2 || buf[15] != 0xa2 {
		t.Errorf("above 4 GiB: % x, %v", buf[:16], err)
	}
	// The guest changes its RAM: the next read sees it.
	anon[5] = 0x55
	if err := tg.ReadPhys(buf[:1], 5); err != nil || buf[0] != 0x55 {
		t.Errorf("after a write: %#x, %v", buf[0], err)
	}
	for _, pa := range []uint64{0x4000, 0xfec00000, 0xfffc0000, 0x100001000} {
		if err := tg.ReadPhys(buf[:1], pa); !errors.Is(err, vmi.ErrNotPresent) {
			t.Errorf("ReadPhys(%#x): %v, want ErrNotPresent", pa, err)
		}
	}
	// Running: no host pages at all. Paused: the file's, never process memory's.
	if tg.PhysPage(0x2000) != nil {
		t.Error("PhysPage while running")
	}
	if err := tg.Pause(); err != nil {
		t.Fatal(err)
	}
	if p := tg.PhysPage(0x2000); p == nil || p[0] != 0xf0 {
		t.Error("PhysPage(file page) while paused")
	}
	if tg.PhysPage(0x1000) != nil || tg.PhysPage(0x100000000) != nil {
		t.Error("PhysPage(process-memory page) != nil")
	}

	// QEMU goes away: every read fails, naming it, though the memory is
	// still there.
	f.quit()
	deadline := time.Now().Add(5 * time.Second)
	for tg.ReadPhys(buf[:1], 0) == nil {
		if time.Now().After(deadline) {
			t.Fatal("reads still succeed 5 s after QEMU left")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, pa := range []uint64{0, 0x2000, 0x100000000} {
		if err := tg.ReadPhys(buf[:1], pa); !errors.Is(err, ErrGone) || !strings.Contains(err.Error(), "QEMU has gone away") {
			t.Errorf("ReadPhys(%#x) after quit: %v, want ErrGone", pa, err)
		}
	}
	if tg.PhysPage(0x2000) != nil {
		t.Error("PhysPage after quit")
	}
}

func TestTargetRAMChoice(t *testing.T) {
	anon, file := fakeGuest(t)
	mk := func(t *testing.T, mod func(*fakeQEMU)) *fakeQEMU {
		f := &fakeQEMU{
			memdevs: `[{"id": "mem", "share": true}, {"id": "pc.ram", "share": false}]`,
			file:    file,
			mtree:   fakeMtree,
			hva:     map[string]uintptr{"pc.ram": addrOf(anon), "mem": addrOf(anon)},
		}
		if mod != nil {
			mod(f)
		}
		f.start(t)
		return f
	}
	t.Run("file only", func(t *testing.T) {
		f := mk(t, nil)
		_, err := Open(f.sock, Options{Timeout: 5 * time.Second, RAM: RAMFile})
		if !errors.Is(err, vmi.ErrUnsupported) || !strings.Contains(err.Error(), `"pc.ram"`) {
			t.Errorf("RAMFile: %v, want ErrUnsupported naming pc.ram", err)
		}
	})
	t.Run("process only", func(t *testing.T) {
		f := mk(t, nil)
		tg, err := Open(f.sock, Options{Timeout: 5 * time.Second, RAM: RAMProcess})
		if err != nil {
			t.Fatal(err)
		}
		defer tg.Close()
		if tg.Kind() != "live QEMU (process memory)" {
			t.Errorf("Kind() = %q", tg.Kind())
		}
		// mem now comes from the anonymous buffer the fake says holds it.
		buf := make([]byte, 1)
		if err := tg.ReadPhys(buf, 0x2000); err != nil || buf[0] != 0xa0 {
			t.Errorf("mem through process memory: %#x, %v", buf[0], err)
		}
	})
	t.Run("share=off", func(t *testing.T) {
		f := mk(t, func(f *fakeQEMU) {
			f.memdevs = `[{"id": "mem", "share": false}]`
		})
		tg, err := Open(f.sock, Options{Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer tg.Close()
		if tg.Kind() != "live QEMU (process memory)" {
			t.Errorf("share=off: Kind() = %q, want process memory", tg.Kind())
		}
	})
	t.Run("gpa2hva disagrees with mtree", func(t *testing.T) {
		f := mk(t, func(f *fakeQEMU) { f.hva = map[string]uintptr{} })
		if _, err := Open(f.sock, Options{Timeout: 5 * time.Second}); !errors.Is(err, vmi.ErrNotPresent) {
			t.Errorf("no HVA: %v, want ErrNotPresent", err)
		}
	})
	t.Run("not mapped in the peer", func(t *testing.T) {
		f := mk(t, func(f *fakeQEMU) { f.hva = map[string]uintptr{"pc.ram": 0x1000} })
		_, err := Open(f.sock, Options{Timeout: 5 * time.Second})
		if !errors.Is(err, vmi.ErrFormat) || !strings.Contains(err.Error(), "is that process QEMU?") {
			t.Errorf("HVA outside the peer's mappings: %v", err)
		}
	})
	t.Run("no gpa2hva, guessed from maps", func(t *testing.T) {
		f := mk(t, func(f *fakeQEMU) {
			f.noGPA = true
			f.ramblk = "Block Name PSize Offset Used Total\n pc.ram 4 KiB 0x0 0x3000 0x3000\n"
		})
		// The mapping must be found by its size: the test's own 3-page
		// mapping may not be the only one, in which case the guess must
		// refuse rather than pick.
		tg, err := Open(f.sock, Options{Timeout: 5 * time.Second})
		if err != nil {
			if !errors.Is(err, vmi.ErrUnsupported) {
				t.Fatalf("guess: %v, want success or ErrUnsupported", err)
			}
			t.Logf("guess refused: %v", err)
			return
		}
		defer tg.Close()
		buf := make([]byte, 1)
		if err := tg.ReadPhys(buf, 0x1000); err != nil || buf[0] != 0xa1 {
			t.Errorf("guessed: %#x, %v", buf[0], err)
		}
	})
}
