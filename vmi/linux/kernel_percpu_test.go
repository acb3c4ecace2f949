package linux

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/xascript/xascript/internal/testimages"
	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi"
)

// guestSection returns the lines the guest printed between its
// @@XA-BEGIN-name@@ and @@XA-END-name@@ markers on its console.
func guestSection(t *testing.T, variant, name string) []string {
	t.Helper()
	f, err := os.Open(testimages.Path(t, variant, "serial.log.zst"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := zstd.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var out []string
	in := false
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		switch line {
		case "@@XA-BEGIN-" + name + "@@":
			in = true
		case "@@XA-END-" + name + "@@":
			return out
		default:
			if in {
				out = append(out, line)
			}
		}
	}
	t.Fatalf("serial.log: no section %s (%v)", name, sc.Err())
	return nil
}

// TestRealPerCPU: on the committed guests (booted with -smp 1), the online
// CPUs are the ones the guest's /proc/zoneinfo lists pagesets for; each
// CPU's runqueue (percpu("runqueues", cpu)) says it is that CPU's; each
// CPU's this_cpu_off holds its own __per_cpu_offset; the task that CPU 0
// was running is one the guest listed; and what is not a per-cpu variable,
// or not a CPU, is refused.
func TestRealPerCPU(t *testing.T) {
	for _, variant := range realSymbolVariants {
		t.Run(variant, func(t *testing.T) {
			tg, _, _ := openImage(t, variant, "mem.elf.zst")
			k, err := Open(tg, Options{Unpack: unpack.Options{CacheDir: t.TempDir()}})
			if err != nil {
				t.Fatal(err)
			}
			var want []int
			for _, l := range guestSection(t, variant, "ZONES") {
				if n, ok := strings.CutPrefix(strings.TrimSpace(l), "cpu: "); ok {
					c, err := strconv.Atoi(n)
					if err != nil {
						t.Fatalf("zoneinfo line %q", l)
					}
					if !slices.Contains(want, c) {
						want = append(want, c)
					}
				}
			}
			slices.Sort(want)
			if len(want) == 0 {
				t.Fatal("the guest's zoneinfo lists no CPU")
			}
			online, err := k.CPUs("online")
			if err != nil || !slices.Equal(online, want) {
				t.Fatalf("CPUs(online) = %v, %v; the guest's zoneinfo has pagesets of CPUs %v", online, err, want)
			}
			possible, err := k.CPUs("possible")
			if err != nil || len(possible) < len(online) {
				t.Fatalf("CPUs(possible) = %v, %v", possible, err)
			}
			for _, c := range online {
				if !slices.Contains(possible, c) {
					t.Errorf("online CPU %d is not possible (%v)", c, possible)
				}
			}
			rqCPU, err := k.Offsetof("rq", "cpu")
			if err != nil {
				t.Fatal(err)
			}
			offs, err := k.Symbol("__per_cpu_offset")
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range possible {
				rq, err := k.PerCPU("runqueues", c)
				if err != nil {
					t.Fatal(err)
				}
				if n, err := k.ReadUintVirt(rq+rqCPU, 4); err != nil || n != uint64(c) {
					t.Errorf("percpu(runqueues, %d) at %#x: rq.cpu = %d, %v", c, rq, n, err)
				}
				self, err := k.PerCPU("this_cpu_off", c)
				if err != nil {
					t.Fatal(err)
				}
				v, err1 := k.ReadUintVirt(self, 8)
				o, err2 := k.ReadUintVirt(offs+uint64(8*c), 8)
				if err1 != nil || err2 != nil || v != o || v == 0 {
					t.Errorf("CPU %d: this_cpu_off = %#x (%v), __per_cpu_offset[%d] = %#x (%v)", c, v, err1, c, o, err2)
				}
			}
			// CPU 0's current task: current_task up to 6.1, pcpu_hot's
			// since 6.2.
			cur, err := k.PerCPU("current_task", 0)
			if err != nil {
				hot, herr := k.PerCPU("pcpu_hot", 0)
				off, oerr := k.Offsetof("pcpu_hot", "current_task")
				if herr != nil || oerr != nil {
					t.Fatalf("current task: %v; %v; %v", err, herr, oerr)
				}
				cur = hot + off
			}
			task, err := k.ReadUintVirt(cur, 8)
			if err != nil {
				t.Fatal(err)
			}
			pidOff, _ := k.Offsetof("task_struct", "pid")
			commOff, _ := k.Offsetof("task_struct", "comm")
			pid, err := k.ReadUintVirt(task+pidOff, 4)
			comm := make([]byte, 16)
			if err != nil || k.ReadVirt(comm, task+commOff) != nil {
				t.Fatalf("CPU 0's current task at %#x: %v", task, err)
			}
			comm, _, _ = bytes.Cut(comm, []byte{0})
			var truth struct {
				Tasks []struct {
					PID  uint64 `json:"pid"`
					Comm string `json:"comm"`
				} `json:"tasks"`
			}
			testimages.LoadTruth(t, variant, &truth)
			found := pid == 0 && strings.HasPrefix(string(comm), "swapper")
			for _, tk := range truth.Tasks {
				found = found || tk.PID == pid && tk.Comm == string(comm)
			}
			if !found {
				t.Errorf("CPU 0 was running pid %d %q, a task the guest did not list", pid, comm)
			}
			if it, _ := k.Symbol("init_task"); pid == 0 && task != it {
				t.Errorf("CPU 0's idle task at %#x, init_task at %#x", task, it)
			}
			t.Logf("CPUs online %v, possible %v; CPU 0 ran pid %d %q", online, possible, pid, comm)

			if _, err := k.PerCPU("jiffies", 0); !errors.Is(err, vmi.ErrNotFound) || !strings.Contains(err.Error(), "not a per-cpu variable") {
				t.Errorf("percpu(jiffies): %v", err)
			}
			if _, err := k.PerCPU("runqueues", len(possible)+1000); !errors.Is(err, vmi.ErrNotFound) {
				t.Errorf("percpu(runqueues, far CPU): %v", err)
			}
			if _, err := k.PerCPU("no_such_percpu_variable", 0); !errors.Is(err, vmi.ErrNotFound) {
				t.Errorf("percpu(unknown): %v", err)
			}
			if _, err := k.CPUs("bogus"); err == nil {
				t.Error("CPUs(bogus) accepted")
			}
		})
	}
}
