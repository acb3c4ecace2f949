package integration

import (
	"strings"
	"testing"

	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi/linux/symbols"
)

// The issue-10 example monitors in scripts/examples, run on the real 6.1
// and 6.12 kernels and compared with what each guest printed about itself.

// runExample runs scripts/examples/NAME on the variant's ELF core and
// returns its records.
func runExample(t *testing.T, variant, name string, args ...string) []map[string]any {
	t.Helper()
	img, err := LoadImage(variant)
	if err != nil {
		t.Fatal(err)
	}
	target, k, err := openKernel(t, img, "mem.elf.zst")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	out, err := RunScript(k, "../scripts/examples/"+name, args...)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	recs, err := Records(out)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return recs
}

// nrSyscalls is each kernel's NR_syscalls: one more than the last number of
// arch/x86/entry/syscalls/syscall_64.tbl (6.1: 450 set_mempolicy_home_node;
// 6.12: 462 mseal). The script finds it in memory; this is the source's.
var nrSyscalls = map[string]int{"x86_64-4level": 451, "x86_64-6.12": 463}

// TestExampleSyscallWatch: on a dump, syscall-watch.lua reports every entry
// of sys_call_table once, NR_syscalls of them; each points to the start of
// a system-call function of the guest's own /proc/kallsyms (a __x64_sys_*
// symbol, or __x64_sys_ni_syscall/sys_ni_syscall for an unused number),
// which symbol_at names (an alias at that address, such as __do_sys_getpid
// for SYSCALL_DEFINE0's __x64_sys_getpid, names the same function).
func TestExampleSyscallWatch(t *testing.T) {
	for _, v := range viewVariants {
		t.Run(v, func(t *testing.T) {
			img, err := LoadImage(v)
			if err != nil {
				t.Fatal(err)
			}
			kallsyms, err := symbols.Load(img.Path("kallsyms.zst"), unpack.Options{CacheDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer kallsyms.Close()
			syscalls := map[uint64]string{} // address of a system call -> its __x64_sys_ name
			names := map[uint64][]string{}  // every name at those addresses
			kallsyms.Each(func(s symbols.Symbol) bool {
				if s.Module == "" && (strings.HasPrefix(s.Name, "__x64_sys_") || s.Name == "sys_ni_syscall") {
					syscalls[s.Addr] = s.Name
				}
				return true
			})
			kallsyms.Each(func(s symbols.Symbol) bool {
				if _, ok := syscalls[s.Addr]; ok && s.Module == "" {
					names[s.Addr] = append(names[s.Addr], s.Name)
				}
				return true
			})
			recs := runExample(t, v, "syscall-watch.lua")
			if len(recs) != nrSyscalls[v] {
				t.Fatalf("%d entries, NR_syscalls is %d", len(recs), nrSyscalls[v])
			}
			ni := 0
			for i, r := range recs {
				if r["event"] != "entry" || int(r["nr"].(float64)) != i || int(r["count"].(float64)) != nrSyscalls[v] {
					t.Fatalf("record %d: %v", i, r)
				}
				a, err := Hex(r["address"].(string))
				if err != nil {
					t.Fatal(err)
				}
				sys, ok := syscalls[a]
				if !ok {
					t.Errorf("entry %d -> %s (%v): no system call of the guest's kallsyms is there", i, r["address"], r["symbol"])
					continue
				}
				if strings.HasSuffix(sys, "ni_syscall") {
					ni++
				}
				sym, _ := r["symbol"].(string)
				name, off, _ := strings.Cut(sym, "+")
				if off != "0x0" || !strings.Contains(" "+strings.Join(names[a], " ")+" ", " "+name+" ") {
					t.Errorf("entry %d: symbol_at says %q, kallsyms has %v there", i, sym, names[a])
				}
			}
			if ni == 0 || ni > len(recs)/4 {
				t.Errorf("%d entries lead to sys_ni_syscall", ni)
			}
		})
	}
}
