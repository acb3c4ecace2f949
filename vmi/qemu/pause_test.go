package qemu

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/paging"
)

// An 8-page guest whose RAM is all in one shared file: page tables at
// pages 0-3 map va 0 onto page 4, and va 0x1000 onto page 5.
const pagedMtree = `FlatView #0
 AS "memory", root: system
 Root memory region: system
  0000000000000000-0000000000007fff (prio 0, ram): mem
`

// pagedGuest starts a fake QEMU for pagedMtree, running or paused, and
// returns it with the RAM file mapped writable (the guest's side of it).
func pagedGuest(t *testing.T, running bool) (*fakeQEMU, []byte) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "mem")
	ram := make([]byte, 8*vmi.PageSize)
	le := binary.LittleEndian
	le.PutUint64(ram[0x0000:], 0x1000|3) // PML4[0] -> PDPT
	le.PutUint64(ram[0x1000:], 0x2000|3) // PDPT[0] -> PD
	le.PutUint64(ram[0x2000:], 0x3000|3) // PD[0] -> PT
	le.PutUint64(ram[0x3000:], 0x4000|3) // PT[0] -> page 4
	le.PutUint64(ram[0x3008:], 0x5000|3) // PT[1] -> page 5
	le.PutUint32(ram[0x4000:], 0x44444444)
	le.PutUint32(ram[0x5000:], 0x55555555)
	le.PutUint32(ram[0x6000:], 0x66666666)
	if err := os.WriteFile(file, ram, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	guest, err := unix.Mmap(int(f.Fd()), 0, len(ram), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(guest) })
	q := &fakeQEMU{running: running, memdevs: `[{"id": "mem", "share": true, "size": 32768}]`, file: file, mtree: pagedMtree}
	q.start(t)
	return q, guest
}

func openFake(t *testing.T, f *fakeQEMU) *Target {
	t.Helper()
	tg, err := Open(f.sock, Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg
}

// waitFor polls cond (an event arrives on the QMP reader's goroutine).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5 s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A guest that was paused when we came stays paused: Pause takes no pause
// of ours, and neither Resume nor Close undoes someone else's.
func TestPauseFoundPaused(t *testing.T) {
	f, _ := pagedGuest(t, false)
	tg := openFake(t, f)
	if !tg.Paused() {
		t.Fatal("Paused() false for a guest found paused")
	}
	for range 2 {
		if err := tg.Pause(); err != nil {
			t.Fatal(err)
		}
		if err := tg.Resume(); err != nil {
			t.Fatal(err)
		}
	}
	if !f.IsPaused() || !tg.Paused() {
		t.Errorf("Resume resumed a pause that was not ours: guest paused %v, Paused() %v", f.IsPaused(), tg.Paused())
	}
	if err := tg.Close(); err != nil {
		t.Fatal(err)
	}
	if !f.IsPaused() {
		t.Error("Close resumed a guest found paused")
	}
	if stops, conts := f.Counts(); stops != 0 || conts != 0 {
		t.Errorf("%d stops and %d conts sent to a paused guest, want none", stops, conts)
	}
}

// A running guest: Pause stops it once, Resume resumes it, and Close
// resumes a pause left held.
func TestPauseFoundRunning(t *testing.T) {
	f, _ := pagedGuest(t, true)
	tg := openFake(t, f)
	if tg.Paused() {
		t.Fatal("Paused() true for a running guest")
	}
	for range 2 {
		if err := tg.Pause(); err != nil {
			t.Fatal(err)
		}
	}
	if !f.IsPaused() || !tg.Paused() {
		t.Fatalf("after Pause: guest paused %v, Paused() %v", f.IsPaused(), tg.Paused())
	}
	if stops, _ := f.Counts(); stops != 1 {
		t.Errorf("two Pauses sent %d stops that stopped the guest, want 1", stops)
	}
	if err := tg.Resume(); err != nil {
		t.Fatal(err)
	}
	if f.IsPaused() || tg.Paused() {
		t.Fatalf("after Resume: guest paused %v, Paused() %v", f.IsPaused(), tg.Paused())
	}
	if err := tg.Resume(); err != nil { // nothing of ours to undo
		t.Fatal(err)
	}
	if err := tg.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := tg.Close(); err != nil {
		t.Fatal(err)
	}
	if f.IsPaused() {
		t.Error("Close left our own pause held")
	}
	if stops, conts := f.Counts(); stops != 2 || conts != 2 {
		t.Errorf("%d stops, %d conts; want 2 and 2", stops, conts)
	}
}

// An operator pauses the guest on another monitor while we run: the pause
// is theirs, and survives our Close. If they resume our pause and pause
// again, that pause is theirs too.
func TestPauseOperator(t *testing.T) {
	t.Run("stop while running", func(t *testing.T) {
		f, _ := pagedGuest(t, true)
		tg := openFake(t, f)
		f.Stop()
		waitFor(t, "STOP event", tg.Paused)
		if err := tg.Pause(); err != nil {
			t.Fatal(err)
		}
		if err := tg.Close(); err != nil {
			t.Fatal(err)
		}
		if !f.IsPaused() {
			t.Error("Close resumed the operator's pause")
		}
	})
	t.Run("cont and stop over our pause", func(t *testing.T) {
		f, _ := pagedGuest(t, true)
		tg := openFake(t, f)
		if err := tg.Pause(); err != nil {
			t.Fatal(err)
		}
		f.Cont()
		waitFor(t, "RESUME event", func() bool { return !tg.Paused() })
		f.Stop()
		waitFor(t, "STOP event", tg.Paused)
		if err := tg.Resume(); err != nil {
			t.Fatal(err)
		}
		if err := tg.Close(); err != nil {
			t.Fatal(err)
		}
		if !f.IsPaused() {
			t.Error("the operator's second pause was undone")
		}
	})
}

// The generation moves on our stop and cont, on an operator's (through
// events), when QEMU goes away and at Close.
func TestGeneration(t *testing.T) {
	f, _ := pagedGuest(t, true)
	tg := openFake(t, f)
	g := tg.Generation()
	step := func(what string, do func()) {
		t.Helper()
		before := g.Load()
		do()
		waitFor(t, what+" moves the generation", func() bool { return g.Load() != before })
	}
	step("Pause", func() { tg.Pause() })
	step("Resume", func() { tg.Resume() })
	step("an operator's stop", f.Stop)
	step("an operator's cont", f.Cont)
	step("QEMU's exit", f.quit)
	step("Close", func() { tg.Close() })
	if tg.Generation() != g {
		t.Error("Generation() returned another counter")
	}
}

// Translations and host pages cached while paused are not used once the
// guest has run: the guest's new page tables are walked, and reads after
// QEMU is gone fail instead of reading a page handed out before.
func TestCachesFollowGeneration(t *testing.T) {
	le := binary.LittleEndian
	readAt := func(t *testing.T, s *paging.Space, va uint64) uint64 {
		t.Helper()
		v, err := s.ReadUint(va, 4)
		if err != nil {
			t.Fatalf("read va %#x: %v", va, err)
		}
		return v
	}
	for _, how := range []string{"Resume", "operator"} {
		t.Run(how, func(t *testing.T) {
			f, guest := pagedGuest(t, true)
			tg := openFake(t, f)
			s := paging.New(tg, paging.IA32e, 0)
			if how == "Resume" {
				if err := tg.Pause(); err != nil {
					t.Fatal(err)
				}
			} else {
				f.Stop() // an operator pauses it
				waitFor(t, "STOP", tg.Paused)
			}
			if tg.PhysPage(0x4000) == nil {
				t.Fatal("no host page while paused")
			}
			if v := readAt(t, s, 0); v != 0x44444444 {
				t.Fatalf("va 0 holds %#x, want 0x44444444", v)
			}
			// The guest runs, remaps va 0 onto page 6, and stops.
			if how == "Resume" {
				if err := tg.Resume(); err != nil {
					t.Fatal(err)
				}
				le.PutUint64(guest[0x3000:], 0x6000|3)
				if err := tg.Pause(); err != nil {
					t.Fatal(err)
				}
			} else {
				g := tg.Generation().Load()
				f.Cont()
				le.PutUint64(guest[0x3000:], 0x6000|3)
				f.Stop()
				waitFor(t, "RESUME and STOP", func() bool { return tg.Generation().Load() >= g+2 })
			}
			if v := readAt(t, s, 0); v != 0x66666666 {
				t.Errorf("after the guest ran and remapped va 0: read %#x, want 0x66666666 (a stale translation)", v)
			}
		})
	}
	t.Run("QEMU gone while paused", func(t *testing.T) {
		f, _ := pagedGuest(t, true)
		tg := openFake(t, f)
		s := paging.New(tg, paging.IA32e, 0)
		if err := tg.Pause(); err != nil {
			t.Fatal(err)
		}
		readAt(t, s, 0) // caches page 4's host page
		if tg.PhysPage(0x4000) == nil {
			t.Fatal("no host page while paused: the test reads nothing through one")
		}
		f.quit()
		waitFor(t, "QEMU gone", tg.qmp.Gone)
		if _, err := s.ReadUint(0, 4); !errors.Is(err, ErrGone) {
			t.Errorf("read through a page handed out before QEMU left: %v, want ErrGone", err)
		}
	})
	t.Run("Close", func(t *testing.T) {
		f, _ := pagedGuest(t, true)
		tg := openFake(t, f)
		s := paging.New(tg, paging.IA32e, 0)
		if err := tg.Pause(); err != nil {
			t.Fatal(err)
		}
		readAt(t, s, 0)
		tg.Close() // unmaps the page cached above
		if _, err := s.ReadUint(0, 4); err == nil {
			t.Error("read after Close succeeded (through an unmapped page?)")
		}
	})
}

// The CPU state is read once per pause: kept while the generation stands,
// read again once it moves (the guest ran, by our cont or an operator's),
// and read afresh on every call while the guest runs.
func TestCPUCacheFollowsGeneration(t *testing.T) {
	f, _ := pagedGuest(t, true)
	tg := openFake(t, f)
	cr3 := func() uint64 {
		t.Helper()
		c, err := tg.ReadCPU()
		if err != nil {
			t.Fatal(err)
		}
		return c.CR3
	}
	if a, b := cr3(), cr3(); a == b {
		t.Errorf("CR3 %#x read twice from a running guest: cached", a)
	}
	tg.Pause()
	paused := cr3()
	if again := cr3(); again != paused {
		t.Errorf("CR3 %#x then %#x while paused: not cached", paused, again)
	}
	g := tg.Generation().Load()
	f.Cont()
	f.Stop()
	waitFor(t, "RESUME and STOP", func() bool { return tg.Generation().Load() >= g+2 && tg.Paused() })
	if after := cr3(); after == paused {
		t.Errorf("CR3 %#x cached across an operator's cont and stop", after)
	}
}
