//go:build guests

package integration

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xascript/xascript/internal/liveguest"
	"github.com/xascript/xascript/vmi/linux"
	"github.com/xascript/xascript/vmi/qemu"
)

// TestGuestLiveSMP boots the live guest with two vCPUs and checks, against
// what the guest itself prints: the online CPUs (cpus()) are those of
// /sys/devices/system/cpu/online; each CPU's runqueue (percpu) says it is
// that CPU's and each CPU's this_cpu_off holds its own, distinct,
// __per_cpu_offset; the module symbols read from memory are the module
// lines of its /proc/kallsyms; and after the guest loads one more module
// and the target is flushed, that module's symbols are there too, each
// named back by symbol_at.
func TestGuestLiveSMP(t *testing.T) {
	g := liveguest.StartWith(t, "../testdata/live-guest.sh", liveguest.Config{SMP: 2})
	online, err := g.Run("cat /sys/devices/system/cpu/online", 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(online) != "0-1" {
		t.Fatalf("the guest booted with -smp 2 says CPUs %q are online", online)
	}
	target, err := qemu.Open(g.Socket, qemu.Options{Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := target.Pause(); err != nil {
		t.Fatal(err)
	}
	k, err := linux.Open(target, linux.Options{Unpack: cacheOpts(t)})
	if err != nil {
		t.Fatal(err)
	}
	cpus, err := k.CPUs("online")
	if err != nil || !slices.Equal(cpus, []int{0, 1}) {
		t.Fatalf("CPUs(online) = %v, %v; the guest says 0-1", cpus, err)
	}
	rqCPU, err := k.Offsetof("rq", "cpu")
	if err != nil {
		t.Fatal(err)
	}
	offs, _ := k.Symbol("__per_cpu_offset")
	seen := map[uint64]bool{}
	for _, c := range cpus {
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
		if err1 != nil || err2 != nil || v != o || seen[v] {
			t.Errorf("CPU %d: this_cpu_off %#x (%v), __per_cpu_offset[%d] %#x (%v), seen before %v", c, v, err1, c, o, err2, seen[v])
		}
		seen[v] = true
	}
	if err := target.Resume(); err != nil {
		t.Fatal(err)
	}

	checkLiveModuleSymbols(t, g, k, "")
	if out, err := g.Run("insmod /lib/modules/"+liveguest.HeldModule+".ko", 60*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	k.Flush() // the guest ran: modules may have come and gone
	if n := checkLiveModuleSymbols(t, g, k, liveguest.HeldModule); n == 0 {
		t.Errorf("no symbols of %s after it was loaded", liveguest.HeldModule)
	}
}

// checkLiveModuleSymbols compares the module symbols read from memory with
// the guest's /proc/kallsyms, and names each of mod's (when not "") back
// with SymbolAt; it returns how many mod has.
func checkLiveModuleSymbols(t *testing.T, g *liveguest.Guest, k *linux.Kernel, mod string) int {
	t.Helper()
	out, err := g.Run("grep '\\[' /proc/kallsyms", 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) != 4 {
			t.Fatalf("kallsyms line %q", l)
		}
		want = append(want, fmt.Sprintf("%s 0x%s %s %s", strings.Trim(f[3], "[]"), strings.TrimLeft(f[0], "0"), f[1], f[2]))
	}
	tab, err := k.ModuleSymbols()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	n := 0
	for _, m := range tab.Modules {
		for _, s := range m.Symbols {
			got = append(got, fmt.Sprintf("%s %#x %c %s", m.Name, s.Addr, s.Type, s.Name))
			if m.Name != mod || s.Name[0] == '.' {
				continue
			}
			n++
			info, err := k.SymbolAt(s.Addr)
			if err != nil || info.Module != mod || info.Addr != s.Addr || info.Offset != 0 {
				t.Errorf("SymbolAt(%#x) (%s [%s]) = %+v, %v", s.Addr, s.Name, mod, info, err)
			}
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("module symbols: %d read, %d in the guest's /proc/kallsyms; first difference %s", len(got), len(want), firstDifference(got, want))
	}
	t.Logf("%d module symbols as the guest's /proc/kallsyms lists them; %d of %q named back", len(got), n, mod)
	return n
}

func firstDifference(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("read %q, kallsyms %q", got[i], want[i])
		}
	}
	return "one list is a prefix of the other"
}
