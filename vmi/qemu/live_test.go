//go:build guests

package qemu

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/xascript/xascript/internal/liveguest"
	"github.com/xascript/xascript/vmi"
)

// startGuest boots testdata/live-guest.sh's guest and returns its QMP
// socket, RAM file and QEMU pid.
func startGuest(t *testing.T) (sock, mem string, pid int) {
	g := liveguest.Start(t, "../../testdata/live-guest.sh")
	return g.Socket, g.MemPath, g.PID
}

func TestLiveQEMU(t *testing.T) {
	sock, mem, pid := startGuest(t)
	tg, err := Open(sock, Options{Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	if tg.PID() != pid {
		t.Errorf("PID() = %d, want %d", tg.PID(), pid)
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
	wantMap := []vmi.Range{{Start: 0, End: 128 << 20}}
	if got := tg.MemoryMap(); fmt.Sprint(got) != fmt.Sprint(wantMap) {
		t.Errorf("MemoryMap() = %v, want %v", got, wantMap)
	}

	if err := tg.Pause(); err != nil {
		t.Fatal(err)
	}
	if !tg.Paused() {
		t.Error("Paused() false after Pause")
	}
	file, err := os.ReadFile(mem)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 3*vmi.PageSize)
	for _, pa := range []uint64{0, 0x1000, cpu.CR3 & vmi.CR3Mask, 0x100000, 0x1000000, 128<<20 - 3*vmi.PageSize} {
		if err := tg.ReadPhys(buf, pa); err != nil {
			t.Fatalf("ReadPhys(%#x): %v", pa, err)
		}
		if !bytes.Equal(buf, file[pa:pa+uint64(len(buf))]) {
			t.Errorf("ReadPhys(%#x) differs from %s", pa, mem)
		}
		if p := tg.PhysPage(pa + 5); p == nil || !bytes.Equal(p[:], file[pa:pa+vmi.PageSize]) {
			t.Errorf("PhysPage(%#x) differs from %s", pa+5, mem)
		}
	}
	var pe *vmi.PhysError
	if err := tg.ReadPhys(buf[:8], 128<<20-4); !errors.As(err, &pe) || !errors.Is(err, vmi.ErrNotPresent) || pe.Addr != 128<<20 {
		t.Errorf("read across the end of RAM: %v, want a PhysError at %#x wrapping ErrNotPresent", err, 128<<20)
	}
	if tg.PhysPage(0xfee00000) != nil {
		t.Error("PhysPage(APIC) != nil")
	}

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

	// QEMU gone: reads and CPU fail with ErrGone.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := tg.ReadPhys(buf[:8], 0x1000)
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
