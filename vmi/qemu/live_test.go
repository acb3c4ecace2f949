//go:build guests

package qemu

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/xascript/xascript/internal/liveguest"
	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/dump"
)

const guestRAM128 = 128 << 20

// startGuest boots testdata/live-guest.sh's guest with its RAM where ram
// says.
func startGuest(t testing.TB, ram liveguest.RAM) *liveguest.Guest {
	return liveguest.StartRAM(t, "../../testdata/live-guest.sh", ram)
}

func openLive(t testing.TB, sock string, ram RAMAccess) *Target {
	t.Helper()
	tg, err := Open(sock, Options{Timeout: 20 * time.Second, RAM: ram})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg
}

// TestLiveQEMU: a guest with RAM in a shared file, read through the file;
// the same guest read through QEMU's process memory (on the second QMP
// socket) gives the same bytes.
func TestLiveQEMU(t *testing.T) {
	g := startGuest(t, liveguest.FileRAM)
	tg := openLive(t, g.Socket, RAMAuto)
	if tg.PID() != g.PID {
		t.Errorf("PID() = %d, want %d", tg.PID(), g.PID)
	}
	if got, want := tg.Kind(), "live QEMU (shared RAM file)"; got != want {
		t.Errorf("Kind() = %q, want %q", got, want)
	}

	cpu, err := tg.ReadCPU()
	if err != nil {
		t.Fatal(err)
	}
	if !cpu.Known || cpu.CR3&vmi.CR3Mask == 0 || cpu.CR4&vmi.CR4PAE == 0 || cpu.EFER&vmi.EFERLMA == 0 {
		t.Errorf("CPU() = %+v: want CR3 != 0, CR4.PAE and EFER.LMA", cpu)
	}

	// q35 with 128 MiB: RAM (and the shadowed-ROM areas, same block) is
	// [0, 128 MiB) with no hole.
	wantMap := []vmi.Range{{Start: 0, End: guestRAM128}}
	if got := tg.MemoryMap(); fmt.Sprint(got) != fmt.Sprint(wantMap) {
		t.Errorf("MemoryMap() = %v, want %v", got, wantMap)
	}

	// Running: no host pages are handed out (see PhysPage).
	if tg.PhysPage(0x1000) != nil {
		t.Error("PhysPage != nil while the guest runs")
	}
	if err := tg.Pause(); err != nil {
		t.Fatal(err)
	}
	if !tg.Paused() {
		t.Error("Paused() false after Pause")
	}
	file, err := os.ReadFile(g.MemPath)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 3*vmi.PageSize)
	for _, pa := range []uint64{0, 0x1000, cpu.CR3 & vmi.CR3Mask, 0x100000, 0x1000000, guestRAM128 - 3*vmi.PageSize} {
		if err := tg.ReadPhys(buf, pa); err != nil {
			t.Fatalf("ReadPhys(%#x): %v", pa, err)
		}
		if !bytes.Equal(buf, file[pa:pa+uint64(len(buf))]) {
			t.Errorf("ReadPhys(%#x) differs from %s", pa, g.MemPath)
		}
		if p := tg.PhysPage(pa + 5); p == nil || !bytes.Equal(p[:], file[pa:pa+vmi.PageSize]) {
			t.Errorf("PhysPage(%#x) differs from %s", pa+5, g.MemPath)
		}
	}
	var pe *vmi.PhysError
	if err := tg.ReadPhys(buf[:8], guestRAM128-4); !errors.As(err, &pe) || !errors.Is(err, vmi.ErrNotPresent) || pe.Addr != guestRAM128 {
		t.Errorf("read across the end of RAM: %v, want a PhysError at %#x wrapping ErrNotPresent", err, guestRAM128)
	}
	if tg.PhysPage(0xfee00000) != nil {
		t.Error("PhysPage(APIC) != nil")
	}

	// The process-memory path on the same guest: every byte equals the file.
	pm := openLive(t, g.CtlSocket, RAMProcess)
	if got, want := pm.Kind(), "live QEMU (process memory)"; got != want {
		t.Errorf("RAMProcess: Kind() = %q, want %q", got, want)
	}
	if got := pm.MemoryMap(); fmt.Sprint(got) != fmt.Sprint(wantMap) {
		t.Errorf("RAMProcess: MemoryMap() = %v, want %v", got, wantMap)
	}
	compareRAM(t, pm, func(b []byte, pa uint64) error { copy(b, file[pa:]); return nil }, g.MemPath)
	if pm.PhysPage(0x1000) != nil {
		t.Error("RAMProcess: PhysPage != nil")
	}
	placed := hvas(pm)
	pm.Close() // frees the control socket
	checkGuessedHVAs(t, placed, g.CtlSocket)

	// Paused: CPU state is cached and stable.
	c1 := tg.CPU()
	if c2 := tg.CPU(); c1 != c2 {
		t.Errorf("CPU changed while paused: %+v then %+v", c1, c2)
	}
	t0 := time.Now()
	if err := tg.Resume(); err != nil {
		t.Fatal(err)
	}
	t.Logf("resume took %v", time.Since(t0))
	if tg.Paused() {
		t.Error("Paused() true after Resume")
	}
	if c := tg.CPU(); !c.Known {
		t.Errorf("CPU after Resume: %v", tg.Err())
	}

	killAndCheck(t, tg, g.PID)
}

// TestLiveQEMUProcessMemory: a guest with plain -m RAM, read from QEMU's
// process, compared byte for byte with the ELF core QEMU itself writes.
func TestLiveQEMUProcessMemory(t *testing.T) {
	g := startGuest(t, liveguest.AnonRAM)
	tg := openLive(t, g.Socket, RAMAuto)
	if got, want := tg.Kind(), "live QEMU (process memory)"; got != want {
		t.Errorf("Kind() = %q, want %q", got, want)
	}
	if tg.PID() != g.PID {
		t.Errorf("PID() = %d, want %d", tg.PID(), g.PID)
	}
	wantMap := []vmi.Range{{Start: 0, End: guestRAM128}}
	if got := tg.MemoryMap(); fmt.Sprint(got) != fmt.Sprint(wantMap) {
		t.Errorf("MemoryMap() = %v, want %v", got, wantMap)
	}
	for _, r := range tg.regions {
		t.Logf("region %v: block %q at host %#x", r.Range, r.block, r.hva)
	}
	if _, err := Open(g.CtlSocket, Options{Timeout: 20 * time.Second, RAM: RAMFile}); !errors.Is(err, vmi.ErrUnsupported) {
		t.Errorf("RAMFile on a guest without a shared file: %v, want ErrUnsupported", err)
	} else {
		t.Logf("RAMFile: %v", err)
	}
	cpu, err := tg.ReadCPU()
	if err != nil || cpu.CR3 == 0 {
		t.Fatalf("ReadCPU: %+v, %v", cpu, err)
	}

	if err := tg.Pause(); err != nil {
		t.Fatal(err)
	}
	core := filepath.Join(t.TempDir(), "core.elf")
	t0 := time.Now()
	if _, err := tg.qmp.Execute("dump-guest-memory", map[string]any{"paging": false, "protocol": "file:" + core}); err != nil {
		t.Fatal(err)
	}
	t.Logf("dump-guest-memory: %v", time.Since(t0))
	d, err := dump.Open(core, dump.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	compareRAM(t, tg, d.ReadPhys, "QEMU's ELF core")
	checkGuessedHVAs(t, hvas(tg), g.CtlSocket)
	if tg.PhysPage(0x1000) != nil {
		t.Error("PhysPage != nil for process memory")
	}
	if err := tg.Resume(); err != nil {
		t.Fatal(err)
	}
	killAndCheck(t, tg, g.PID)
}

// TestLiveQEMUHighMem: 4.5 GiB of q35 RAM, 2 GiB below the PCI hole and
// the rest above 4 GiB, in a shared file whose offsets are not the
// guest-physical addresses above the hole. The process-memory path maps
// both parts through gpa2hva (and /proc/PID/maps alone places them alike)
// and reads what the file-backed path reads, byte for byte over all of RAM.
func TestLiveQEMUHighMem(t *testing.T) {
	g := liveguest.StartWith(t, "../../testdata/live-guest.sh", liveguest.Config{RAM: liveguest.FileRAM, Mem: "4608M"})
	tg := openLive(t, g.Socket, RAMAuto)
	wantMap := fmt.Sprint([]vmi.Range{{Start: 0, End: 2 << 30}, {Start: 4 << 30, End: 4<<30 + 2560<<20}})
	if got := fmt.Sprint(tg.MemoryMap()); got != wantMap {
		t.Fatalf("MemoryMap() = %s, want %s", got, wantMap)
	}
	pm := openLive(t, g.CtlSocket, RAMProcess)
	if got := fmt.Sprint(pm.MemoryMap()); got != wantMap {
		t.Fatalf("RAMProcess: MemoryMap() = %s, want %s", got, wantMap)
	}
	for _, r := range pm.regions {
		t.Logf("region %v: block %q at host %#x", r.Range, r.block, r.hva)
	}
	if err := tg.Pause(); err != nil {
		t.Fatal(err)
	}
	// All 4.5 GiB, the pages the guest never touched included.
	compareRAMUpTo(t, pm, tg.ReadPhys, "the shared file", 4<<30+2560<<20)
	placed := hvas(pm)
	pm.Close()
	checkGuessedHVAs(t, placed, g.CtlSocket)
	if err := tg.Resume(); err != nil {
		t.Fatal(err)
	}
}

// compareRAM reads all of the guest's RAM through tg in 1 MiB pieces and
// compares it with want.
func compareRAM(t *testing.T, tg *Target, want func([]byte, uint64) error, what string) {
	t.Helper()
	compareRAMUpTo(t, tg, want, what, guestRAM128)
}

// compareRAMUpTo is compareRAM for a guest whose RAM ends at end.
func compareRAMUpTo(t *testing.T, tg *Target, want func([]byte, uint64) error, what string, end uint64) {
	t.Helper()
	got, exp := make([]byte, 1<<20), make([]byte, 1<<20)
	t0 := time.Now()
	var n uint64
	for _, r := range tg.MemoryMap() {
		for pa := r.Start; pa < r.End; pa += uint64(len(got)) {
			k := min(uint64(len(got)), r.End-pa)
			if err := tg.ReadPhys(got[:k], pa); err != nil {
				t.Fatalf("ReadPhys(%#x, %d): %v", pa, k, err)
			}
			if err := want(exp[:k], pa); err != nil {
				t.Fatalf("%s at %#x: %v", what, pa, err)
			}
			if !bytes.Equal(got[:k], exp[:k]) {
				i := 0
				for got[i] == exp[i] {
					i++
				}
				t.Fatalf("%s: RAM differs at %#x", what, pa+uint64(i))
			}
			n += k
		}
	}
	t.Logf("%s: %d MiB equal (%v)", what, n>>20, time.Since(t0))
	// A read that crosses the end of RAM fails there.
	var pe *vmi.PhysError
	if err := tg.ReadPhys(got[:8], end-4); !errors.As(err, &pe) || !errors.Is(err, vmi.ErrNotPresent) || pe.Addr != end {
		t.Errorf("read across the end of RAM: %v, want a PhysError at %#x wrapping ErrNotPresent", err, end)
	}
}

// checkGuessedHVAs opens sock (which must be free) as if QEMU had no
// gpa2hva and checks that /proc/PID/maps alone places every region where
// gpa2hva placed it (want, from hvas).
func checkGuessedHVAs(t *testing.T, want []string, sock string) {
	t.Helper()
	forceMapsGuess = true
	guessed, err := Open(sock, Options{Timeout: 20 * time.Second, RAM: RAMProcess})
	forceMapsGuess = false
	if err != nil {
		t.Fatalf("placing RAM from /proc/PID/maps: %v", err)
	}
	defer guessed.Close()
	if got := fmt.Sprint(hvas(guessed)); got != fmt.Sprint(want) {
		t.Errorf("host addresses from /proc/PID/maps %s, from gpa2hva %s", got, want)
	} else {
		t.Logf("/proc/PID/maps places RAM where gpa2hva does: %s", got)
	}
}

func hvas(tg *Target) []string {
	if tg.nProc == 0 {
		panic("hvas needs a process-memory target")
	}
	var s []string
	for _, r := range tg.regions {
		s = append(s, fmt.Sprintf("%v@%#x", r.Range, r.hva))
	}
	return s
}

// killAndCheck kills QEMU and checks that reads, CPU state and pause then
// fail with ErrGone, within a bounded time.
func killAndCheck(t *testing.T, tg *Target, pid int) {
	t.Helper()
	buf := make([]byte, 8)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := tg.ReadPhys(buf, 0x1000)
		if err != nil {
			if !errors.Is(err, ErrGone) {
				t.Errorf("ReadPhys after kill: %v, want ErrGone", err)
			}
			t.Logf("after kill: %v", err)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ReadPhys still succeeds 5 s after QEMU was killed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := tg.ReadCPU(); !errors.Is(err, ErrGone) {
		t.Errorf("ReadCPU after kill: %v, want ErrGone", err)
	}
	if tg.CPU().Known {
		t.Error("CPU().Known after kill")
	}
	if err := tg.Pause(); !errors.Is(err, ErrGone) {
		t.Errorf("Pause after kill: %v, want ErrGone", err)
	}
}

// TestLiveQEMUPauseOwnership: a guest found paused stays paused when we
// close, an operator's stop (on the second QMP socket) is seen through its
// event and survives our Close, and our own pause is undone by Close.
func TestLiveQEMUPauseOwnership(t *testing.T) {
	g := startGuest(t, liveguest.FileRAM)
	op, err := Dial(g.CtlSocket, 20*time.Second, nil) // the operator's monitor
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	running := func() bool {
		t.Helper()
		raw, err := op.Execute("query-status", nil)
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Contains(raw, []byte(`"running": true`)) || bytes.Contains(raw, []byte(`"running":true`))
	}
	if !running() {
		t.Fatal("the guest does not run at the start")
	}

	// Our pause, undone by Close.
	tg := openLive(t, g.Socket, RAMAuto)
	if err := tg.Pause(); err != nil {
		t.Fatal(err)
	}
	if running() {
		t.Fatal("Pause did not stop the guest")
	}
	if err := tg.Close(); err != nil {
		t.Fatal(err)
	}
	if !running() {
		t.Fatal("Close left our own pause held")
	}

	// The operator stops the guest while we are attached.
	tg = openLive(t, g.Socket, RAMAuto)
	gen := tg.Generation().Load()
	if _, err := op.Execute("stop", nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !tg.Paused() || tg.Generation().Load() == gen {
		if time.Now().After(deadline) {
			t.Fatal("the operator's stop was not seen within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := tg.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := tg.Resume(); err != nil {
		t.Fatal(err)
	}
	if running() {
		t.Error("Resume undid the operator's stop")
	}
	if err := tg.Close(); err != nil {
		t.Fatal(err)
	}
	if running() {
		t.Error("Close undid the operator's stop")
	}

	// Found paused: stays paused.
	tg = openLive(t, g.Socket, RAMAuto)
	if !tg.Paused() {
		t.Error("Paused() false for a guest found paused")
	}
	tg.Pause()
	tg.Close()
	if running() {
		t.Error("Close resumed a guest found paused")
	}
	if _, err := op.Execute("cont", nil); err != nil {
		t.Fatal(err)
	}
}
