package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/xascript/xascript/bindings"
	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/runtime"
	"github.com/xascript/xascript/scripts"
	"github.com/xascript/xascript/vmi/dump"
	"github.com/xascript/xascript/vmi/linux"
	"github.com/xascript/xascript/vmi/linux/symbols"
)

// The issue-10 example monitors in scripts/examples, run on the real 6.1
// and 6.12 kernels and compared with what each guest printed about itself.

// runExample runs scripts/examples/NAME on the variant's ELF core and
// returns its records.
func runExample(t *testing.T, variant, name string, args ...string) []map[string]any {
	t.Helper()
	_, k := openCore(t, variant)
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
// for SYSCALL_DEFINE0's __x64_sys_getpid, names the same function). Then,
// on a writable copy, two entries changed between rounds are reported, one
// as outside kernel text, the other by the module symbol it now leads to.
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

			// On a writable copy, between two rounds: entry 0 (read) to
			// init_task (kernel data), entry 1 (write) into a module's text.
			mod := img.Truth.ModuleList[len(img.Truth.ModuleList)/2]
			hook := fmt.Sprintf(`sleep = function()
  local t = assert(symbol("sys_call_table"))
  assert(write_u64(t, assert(symbol("init_task"))))
  assert(write_u64(t + 8, addr(%q) + 0x10))
end`, mod.Address)
			recs = runTampered(t, writableCore(t, img), hook, "syscall-watch.lua", "0", "2")
			var changed []string
			for _, r := range recs[nrSyscalls[v]:] {
				changed = append(changed, fmt.Sprintf("%v %v %v", r["event"], r["nr"], r["symbol"]))
			}
			base, _ := Hex(mod.Address)
			near, ok := kallsyms.NearestSymbol(base + 0x10)
			if !ok || near.Module != mod.Name {
				t.Fatalf("the guest's kallsyms has %v below %s+0x10", near, mod.Name)
			}
			want := fmt.Sprintf("changed 0 outside kernel text\nchanged 1 %s+%#x [%s]", near.Name, base+0x10-near.Addr, mod.Name)
			if got := strings.Join(changed, "\n"); got != want {
				t.Errorf("after hooking read and write:\n%s\nwant (the guest's kallsyms):\n%s", got, want)
			}
		})
	}
}

// writableCore opens a writable copy of the variant's ELF core (decompressed
// into the test's temporary folder) and locates its kernel.
func writableCore(t *testing.T, img *Image) *linux.Kernel {
	t.Helper()
	src, err := unpack.Open(img.Path("mem.elf.zst"), unpack.Options{NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "mem.elf")
	err = os.WriteFile(path, src.Data, 0o644)
	src.Close()
	if err != nil {
		t.Fatal(err)
	}
	target, err := dump.Open(path, dump.Options{Options: unpack.Options{Writable: true, NoCache: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { target.Close() })
	syms, btf := img.ProfileFiles()
	k, err := linux.Open(target, linux.Options{SymbolsPath: syms, BTFPath: btf, Unpack: cacheOpts(t)})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// runTampered runs scripts/examples/NAME with writes allowed, after setup
// (Lua run first in the same state: it may replace sleep, so that the guest
// "changes" between two of the monitor's rounds).
func runTampered(t *testing.T, k *linux.Kernel, setup, name string, args ...string) []map[string]any {
	t.Helper()
	var out strings.Builder
	rt := runtime.New(runtime.Config{Stdout: &out, Env: &bindings.Env{Guest: k, JSON: true, AllowWrite: true}, Libs: scripts.Libs()})
	defer rt.Close()
	if err := rt.RunString(setup, "setup", nil); err != nil {
		t.Fatalf("setup: %v", err)
	}
	if err := rt.RunFile("../scripts/examples/"+name, args); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out.String())
	}
	rt.Flush()
	recs, err := Records(out.String())
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// TestExampleLKMIntegrity: lkm-integrity.lua fingerprints the text of every
// module the guest's /proc/modules lists, at the address it printed, with
// the SHA-256 that Go computes of the same bytes; then, on a writable copy
// of the core, one byte of a module's code flipped between two rounds is
// reported as a change of that module, that byte and no other.
func TestExampleLKMIntegrity(t *testing.T) {
	for _, v := range viewVariants {
		t.Run(v, func(t *testing.T) {
			img, err := LoadImage(v)
			if err != nil {
				t.Fatal(err)
			}
			k := writableCore(t, img)
			recs := runTampered(t, k, "", "lkm-integrity.lua")
			if len(recs) != len(img.Truth.ModuleList) {
				t.Fatalf("%d records, the guest lists %d modules", len(recs), len(img.Truth.ModuleList))
			}
			for i, m := range img.Truth.ModuleList {
				r := recs[i]
				base, _ := Hex(r["base"].(string))
				want, _ := Hex(m.Address)
				size := uint64(r["size"].(float64))
				if r["event"] != "hash" || r["module"] != m.Name || base != want || size == 0 || size > m.Size {
					t.Errorf("record %v; the guest lists %s at %s, %d bytes", r, m.Name, m.Address, m.Size)
					continue
				}
				buf := make([]byte, size)
				if err := k.ReadVirt(buf, base); err != nil {
					t.Fatal(err)
				}
				if sum := sha256.Sum256(buf); r["sha256"] != hex.EncodeToString(sum[:]) {
					t.Errorf("%s: sha256 %v, Go reads %x", m.Name, r["sha256"], sum)
				}
			}
			victim := img.Truth.ModuleList[len(img.Truth.ModuleList)/2]
			base, _ := Hex(victim.Address)
			at := base + 0x123
			flip := fmt.Sprintf(`sleep = function() local a = addr(%q); assert(write_u8(a, bit.bxor(assert(read_u8(a)), 0xff))) end`, fmt.Sprintf("%#x", at))
			recs = runTampered(t, k, flip, "lkm-integrity.lua", "0", "2")
			var changed []string
			for _, r := range recs[len(img.Truth.ModuleList):] {
				changed = append(changed, fmt.Sprintf("%v %v %v %v", r["event"], r["module"], r["from"], r["to"]))
			}
			want := []string{fmt.Sprintf("changed %s %#x %#x", victim.Name, at, at+1)}
			if strings.Join(changed, "\n") != strings.Join(want, "\n") {
				t.Fatalf("after flipping the byte at %#x: %v, want %v", at, changed, want)
			}
			// A rootkit that forges a module's text size (1 GiB: beyond
			// read_bytes' 16 MiB and the module's mapped pages) does not end
			// the monitor: that module is event=unreadable, naming the
			// address that faulted, and every other one is hashed.
			forge := fmt.Sprintf(forgeTextSize, victim.Name)
			recs = runTampered(t, k, forge, "lkm-integrity.lua")
			if len(recs) != len(img.Truth.ModuleList) {
				t.Fatalf("with %s's text size forged: %d records, want %d", victim.Name, len(recs), len(img.Truth.ModuleList))
			}
			for _, r := range recs {
				bad := r["module"] == victim.Name
				if bad && (r["event"] != "unreadable" || r["size"] != float64(1<<30) || !strings.Contains(fmt.Sprint(r["error"]), "not present")) ||
					!bad && r["event"] != "hash" {
					t.Errorf("with %s's text size forged: %v", victim.Name, r)
				}
			}
		})
	}
}

// forgeTextSize sets the text size of module %q to 1 GiB (6.1's
// core_layout.text_size, 6.4+'s mem[MOD_TEXT].size).
const forgeTextSize = `
local linux = require("linux")
for _, mod in ipairs(linux.modules()) do
  if mod.name == %q then
    local m = view("module", mod.addr)
    local at = has_member("module", "core_layout") and addr(m.core_layout) + offsetof("module_layout", "text_size")
      or addr(m.mem[enum("mod_mem_type", "MOD_TEXT")]) + offsetof("module_memory", "size")
    assert(write_u32(at, 0x40000000))
  end
end`

// TestExamplePstree: pstree.lua lists the processes of the guest's /proc
// (its TASKS section: each /proc/PID/stat), each once, with the pid, parent,
// thread count and name /proc gave, each record after its parent's one
// level deeper, and uid 0 (the guests run everything as root). The state
// letter is /proc's too, except for a task that was running when the guest
// read /proc (the shell reading it, "R"), which the dump, taken later, may
// catch asleep.
func TestExamplePstree(t *testing.T) {
	for _, v := range viewVariants {
		t.Run(v, func(t *testing.T) {
			img, err := LoadImage(v)
			if err != nil {
				t.Fatal(err)
			}
			want := statTasks(t, img)
			depth := map[int]int{0: -1}
			for _, r := range runExample(t, v, "pstree.lua") {
				pid, ppid := int(r["pid"].(float64)), int(r["ppid"].(float64))
				st, ok := want[pid]
				if !ok {
					t.Errorf("%v: not in the guest's /proc", r)
					continue
				}
				delete(want, pid)
				pd, seen := depth[ppid]
				if !seen || int(r["depth"].(float64)) != pd+1 {
					t.Errorf("%v: its parent %d was not listed before it, at depth %d", r, ppid, pd)
				}
				depth[pid] = int(r["depth"].(float64))
				comm, _ := r["comm"].(string)
				if ppid != st.ppid || int(r["threads"].(float64)) != st.threads || !sameComm(comm, st.comm) ||
					r["uid"] != float64(0) || (st.state != "R" && r["state"] != st.state) {
					t.Errorf("%v; /proc/%d/stat: %s ppid %d state %s threads %d", r, pid, st.comm, st.ppid, st.state, st.threads)
				}
			}
			for pid, st := range want {
				t.Errorf("pid %d (%s) of the guest's /proc is missing", pid, st.comm)
			}
		})
	}
}

// listDel is Lua that defines list_del(node): it takes the list_head at
// node off its list as the kernel's list_del does (prev->next = next,
// next->prev = prev), as a rootkit hiding an object does.
const listDel = `
local function list_del(node)
  local next, prev = assert(read_addr(node)), assert(read_addr(node + 8))
  assert(write_u64(prev, next))
  assert(write_u64(next + 8, prev))
end
`

// unlinkTask is Lua that takes the task of pid %d off the init_task.tasks
// list; its struct pid stays in the IDR.
const unlinkTask = listDel + `
for t in list(symbol("init_task"):as("task_struct").tasks, "task_struct", "tasks") do
  if t.pid == %d then return list_del(addr(t) + offsetof("task_struct", "tasks")) end
end
error("no task %d on the list")`

// TestExamplePsxview: psxview.lua finds every process of the guest's /proc
// on both the task list and the pid IDR, and the idle task (pid 0) on the
// list only; then, on a writable copy of the core with one process
// unlinked from the task list (the newest), that process alone is
// idr=true list=false.
func TestExamplePsxview(t *testing.T) {
	for _, v := range viewVariants {
		t.Run(v, func(t *testing.T) {
			img, err := LoadImage(v)
			if err != nil {
				t.Fatal(err)
			}
			want := statTasks(t, img)
			check := func(recs []map[string]any, hidden int) {
				t.Helper()
				got := map[int]bool{}
				for _, r := range recs {
					pid := int(r["pid"].(float64))
					got[pid] = true
					wantList, wantIDR := true, true
					if pid == 0 {
						wantIDR = false
					} else if pid == hidden {
						wantList = false
					}
					comm, _ := r["comm"].(string)
					st, ok := want[pid]
					if pid != 0 && (!ok || !sameComm(comm, st.comm)) {
						t.Errorf("%v: the guest's /proc has %q", r, st.comm)
					}
					if r["list"] != wantList || r["idr"] != wantIDR {
						t.Errorf("%v: want list=%v idr=%v", r, wantList, wantIDR)
					}
				}
				for pid := range want {
					if !got[pid] {
						t.Errorf("pid %d (%s) of the guest's /proc is missing", pid, want[pid].comm)
					}
				}
				if !got[0] {
					t.Error("no pid 0")
				}
			}
			check(runExample(t, v, "psxview.lua"), -1)
			victim := 0 // the newest task (the guests' only user process is init)
			for pid := range want {
				victim = max(victim, pid)
			}
			k := writableCore(t, img)
			check(runTampered(t, k, fmt.Sprintf(unlinkTask, victim, victim), "psxview.lua"), victim)
		})
	}
}

// unlinkModule is Lua that takes module %q off the modules list, as a
// rootkit hiding from lsmod does; it stays in the mod_tree and under
// module_kset.
const unlinkModule = listDel + `
for m in list(symbol("modules"), "module", "list") do
  if m.name == %q then return list_del(addr(m) + offsetof("module", "list")) end
end
error("no such module on the list")`

// TestExampleHiddenModules: hidden-modules.lua finds every module of the
// guest's /proc/modules, in its order, on the list, in the mod_tree and
// under module_kset, and nothing else; then, on a writable copy of the
// core with one module unlinked from the list, that module alone is
// hidden=true list=false (still in the tree and the kset), listed last.
func TestExampleHiddenModules(t *testing.T) {
	for _, v := range viewVariants {
		t.Run(v, func(t *testing.T) {
			img, err := LoadImage(v)
			if err != nil {
				t.Fatal(err)
			}
			line := func(r map[string]any) string {
				return fmt.Sprintf("%v hidden=%v list=%v mod_tree=%v kset=%v", r["name"], r["hidden"], r["list"], r["mod_tree"], r["kset"])
			}
			lines := func(recs []map[string]any) string {
				var out []string
				for _, r := range recs {
					out = append(out, line(r))
				}
				return strings.Join(out, "\n")
			}
			var want []string
			for _, m := range img.Truth.ModuleList {
				want = append(want, m.Name+" hidden=false list=true mod_tree=true kset=true")
			}
			if got := lines(runExample(t, v, "hidden-modules.lua")); got != strings.Join(want, "\n") {
				t.Fatalf("hidden-modules.lua:\n%s\nwant (the guest's /proc/modules):\n%s", got, strings.Join(want, "\n"))
			}
			victim := img.Truth.ModuleList[len(img.Truth.ModuleList)/2].Name
			var hidden []string
			for _, w := range want {
				if !strings.HasPrefix(w, victim+" ") {
					hidden = append(hidden, w)
				}
			}
			hidden = append(hidden, victim+" hidden=true list=false mod_tree=true kset=true")
			k := writableCore(t, img)
			if got := lines(runTampered(t, k, fmt.Sprintf(unlinkModule, victim), "hidden-modules.lua")); got != strings.Join(hidden, "\n") {
				t.Fatalf("with %s unlinked:\n%s\nwant:\n%s", victim, got, strings.Join(hidden, "\n"))
			}
		})
	}
}

// TestExampleProcmem: for every user process of the guest's /proc (the
// guests run only init: /init, a #!/bin/sh script, so argv is the shell
// and the rdinit= path of the kernel's command line), procmem.lua reads
// exactly arg_end-arg_start and env_end-env_start bytes of strings, as
// /proc/PID/stat gave the bounds (fields 48-51); init's last argument is
// rdinit= of the guest's /proc/cmdline, and its environment holds the
// kernel's envp_init (init/main.c: HOME=/, TERM=linux).
func TestExampleProcmem(t *testing.T) {
	for _, v := range viewVariants {
		t.Run(v, func(t *testing.T) {
			img, err := LoadImage(v)
			if err != nil {
				t.Fatal(err)
			}
			rdinit := ""
			for _, f := range strings.Fields(img.Truth.Cmdline) {
				if s, ok := strings.CutPrefix(f, "rdinit="); ok {
					rdinit = s
				}
			}
			if rdinit == "" {
				t.Fatalf("the guest's command line %q has no rdinit=", img.Truth.Cmdline)
			}
			users := 0
			for pid, st := range statTasks(t, img) {
				if st.field[48] == 0 { // a kernel thread: no arg_start
					continue
				}
				users++
				strs := map[string][]string{}
				size := map[string]uint64{}
				for _, r := range runExample(t, v, "procmem.lua", fmt.Sprint(pid)) {
					kind, _ := r["kind"].(string)
					val, ok := r["value"].(string)
					if !ok || r["truncated"] != nil || r["pid"] != float64(pid) {
						t.Errorf("pid %d: %v", pid, r)
					}
					strs[kind] = append(strs[kind], val)
					size[kind] += uint64(len(val)) + 1
				}
				if size["arg"] != st.field[49]-st.field[48] || size["env"] != st.field[51]-st.field[50] {
					t.Errorf("pid %d: procmem.lua read %d bytes of arguments, %d of environment; /proc/%d/stat: %d and %d",
						pid, size["arg"], size["env"], pid, st.field[49]-st.field[48], st.field[51]-st.field[50])
				}
				if pid != 1 {
					continue
				}
				env := strings.Join(strs["env"], "\n") + "\n"
				if a := strs["arg"]; len(a) == 0 || a[len(a)-1] != rdinit || !strings.Contains(env, "HOME=/\n") ||
					!strings.Contains(env, "TERM=linux\n") {
					t.Errorf("init: argv %q, environment %q; want argv ending in %q, HOME=/ and TERM=linux", strs["arg"], strs["env"], rdinit)
				}
			}
			if users == 0 {
				t.Fatal("the guest's /proc has no user process")
			}
		})
	}
}

// dentryLoop is Lua that makes the parent of the dentry of init's fd 1
// (/dev/console: /dev) its own child, a d_parent cycle.
const dentryLoop = `
for t in list(symbol("init_task"):as("task_struct").tasks, "task_struct", "tasks") do
  if t.pid == 1 then
    local d = view("file", read_addr(t.files.fdt.fd + 8)).f_path.dentry
    return assert(write_u64(addr(d.d_parent) + offsetof("dentry", "d_parent"), addr(d)))
  end
end
error("no pid 1")`

// mountLoop is Lua that makes the root mount of init (rootfs) and the
// kernel's internal pipefs mount each other's parent, mounted on each
// other's root, and moves init's root directory to the dentry of its fd 1
// (/dev/console): a path from any other file of init climbs to the top of
// rootfs and then goes round the two mounts for ever.
const mountLoop = `
local init
for t in list(symbol("init_task"):as("task_struct").tasks, "task_struct", "tasks") do
  if t.pid == 1 then init = t end
end
local fs = assert(init).fs
local m1 = addr(fs.root.mnt) - offsetof("mount", "mnt")
local m2 = assert(read_addr(assert(symbol("pipe_mnt")))) - offsetof("mount", "mnt")
local function link(a, b)
  assert(write_u64(a + offsetof("mount", "mnt_parent"), b))
  assert(write_u64(a + offsetof("mount", "mnt_mountpoint"), assert(read_addr(b + offsetof("mount", "mnt.mnt_root")))))
end
link(m1, m2)
link(m2, m1)
local console = view("file", read_addr(init.files.fdt.fd + 8)).f_path.dentry
assert(write_u64(addr(fs) + offsetof("fs_struct", "root.dentry"), addr(console)))`

// TestExampleLsof: lsof.lua lists files of processes of the guest's /proc
// only, each well-formed and without error; init (pid 1) has fds 1 and 2
// on /dev/console (the kernel opens it for init: console_on_rootfs) and
// fd 3 on /idle (testdata/guest-lib.sh: exec 3<>/idle); `-- 1` lists the
// same records for pid 1. Then, on a writable copy of the core with a
// d_parent cycle above /dev/console, the walk ends: those descriptors are
// reported with an error, the others unchanged; and on one where two
// mounts are each other's parent and init's root is /dev/console (so no
// walk reaches it), every other file is an error and the console "/".
func TestExampleLsof(t *testing.T) {
	wellFormed := regexp.MustCompile(`^(/.*|[a-z_]+:\[\d+\]|anon_inode:.+)$`)
	line := func(r map[string]any) string {
		return fmt.Sprintf("%v %v %v %v", r["pid"], r["fd"], r["path"], r["error"])
	}
	for _, v := range viewVariants {
		t.Run(v, func(t *testing.T) {
			img, err := LoadImage(v)
			if err != nil {
				t.Fatal(err)
			}
			procs := statTasks(t, img)
			init := map[float64]string{}
			var initLines []string
			for _, r := range runExample(t, v, "lsof.lua") {
				pid, _ := r["pid"].(float64)
				path, _ := r["path"].(string)
				if _, ok := procs[int(pid)]; !ok || r["error"] != nil || !wellFormed.MatchString(path) || r["fs"] == nil {
					t.Errorf("%v", r)
				}
				if pid == 1 {
					init[r["fd"].(float64)] = path
					initLines = append(initLines, line(r))
				}
			}
			if init[1] != "/dev/console" || init[2] != "/dev/console" || init[3] != "/idle" {
				t.Errorf("init's files: %v; want 1 and 2 /dev/console, 3 /idle", init)
			}
			var one []string
			for _, r := range runExample(t, v, "lsof.lua", "1") {
				one = append(one, line(r))
			}
			if strings.Join(one, "\n") != strings.Join(initLines, "\n") {
				t.Errorf("lsof.lua -- 1:\n%s\nwant:\n%s", strings.Join(one, "\n"), strings.Join(initLines, "\n"))
			}
			k := writableCore(t, img)
			looped := 0
			for _, r := range runTampered(t, k, dentryLoop, "lsof.lua", "1") {
				fd := r["fd"].(float64)
				if init[fd] == "/dev/console" {
					looped++
					if e, _ := r["error"].(string); !strings.Contains(e, "max_depth") || r["path"] != nil {
						t.Errorf("with /dev in a d_parent cycle: %v", r)
					}
				} else if r["path"] != init[fd] {
					t.Errorf("with /dev in a d_parent cycle: %v; want path %s", r, init[fd])
				}
			}
			if looped < 2 {
				t.Errorf("%d records on /dev/console with /dev in a d_parent cycle", looped)
			}
			k = writableCore(t, img)
			looped = 0
			for _, r := range runTampered(t, k, mountLoop, "lsof.lua", "1") {
				if init[r["fd"].(float64)] == "/dev/console" {
					if r["path"] != "/" {
						t.Errorf("with init's root on /dev/console: %v; want path /", r)
					}
				} else if e, _ := r["error"].(string); !strings.Contains(e, "max_depth") || r["path"] != nil {
					t.Errorf("with two mounts each other's parent: %v", r)
				} else {
					looped++
				}
			}
			if looped < 2 {
				t.Errorf("%d records off /dev/console with two mounts each other's parent", looped)
			}
		})
	}
}
