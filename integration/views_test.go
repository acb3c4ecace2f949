package integration

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
)

// Typed views and the container iterators on the real kernels of the 6.1
// and 6.12 layouts, compared with what each guest printed about itself.
var viewVariants = []string{"x86_64-4level", "x86_64-6.12"}

// runViews runs one of testdata/views_*.lua on the variant's ELF core.
func runViews(t *testing.T, variant, script string) []map[string]any {
	t.Helper()
	_, k := openCore(t, variant)
	out, err := RunScript(k, "testdata/"+script)
	if err != nil {
		t.Fatalf("%s: %v", script, err)
	}
	recs, err := Records(out)
	if err != nil {
		t.Fatalf("%s: %v", script, err)
	}
	return recs
}

// TestViewsModules: name, size, refcount and text address of every module
// through views and list() equal the guest's /proc/modules, in order.
func TestViewsModules(t *testing.T) {
	for _, v := range viewVariants {
		t.Run(v, func(t *testing.T) {
			img, err := LoadImage(v)
			if err != nil {
				t.Fatal(err)
			}
			if len(img.Truth.ModuleList) == 0 {
				t.Fatal("truth.json has no module_list")
			}
			recs := runViews(t, v, "views_modules.lua")
			var got, want []string
			for _, r := range recs {
				got = append(got, fmt.Sprintf("%v %v %v %v", r["name"], r["size"], r["refcount"], r["address"]))
			}
			for _, m := range img.Truth.ModuleList {
				want = append(want, fmt.Sprintf("%s %d %d %s", m.Name, m.Size, m.Refcount, m.Address))
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("views_modules.lua:\n%s\nthe guest's /proc/modules:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// TestViewsTasks: the tasks by the init_task.tasks list and by the pid IDR
// (xarray walk, then each struct pid's hlist of tasks) are the tasks the
// guest listed (the list also has the idle task, pid 0, which neither /proc
// nor the IDR has), and the IDR's index of each pid is its number.
func TestViewsTasks(t *testing.T) {
	for _, v := range viewVariants {
		t.Run(v, func(t *testing.T) {
			img, err := LoadImage(v)
			if err != nil {
				t.Fatal(err)
			}
			recs := runViews(t, v, "views_tasks.lua")
			want := map[int]string{}
			for _, task := range img.Truth.Tasks {
				want[task.PID] = task.Comm
			}
			routes := map[string]map[int]string{"list": {}, "idr": {}}
			for _, r := range recs {
				route, _ := r["route"].(string)
				pid, comm := int(r["pid"].(float64)), r["comm"].(string)
				got, ok := routes[route]
				if !ok {
					t.Fatalf("record %v: no route", r)
				}
				if _, dup := got[pid]; dup {
					t.Errorf("%s: pid %d twice", route, pid)
				}
				got[pid] = comm
				if route == "idr" && (r["nr"] != r["pid"] || r["upid"] != r["pid"]) {
					t.Errorf("idr: task %d at index %v with upid %v", pid, r["nr"], r["upid"])
				}
			}
			if routes["list"][0] != "swapper/0" {
				t.Errorf("list: pid 0 is %q, want swapper/0", routes["list"][0])
			}
			delete(routes["list"], 0)
			for route, got := range routes {
				for pid, w := range want {
					if g, ok := got[pid]; !ok || !sameComm(g, w) {
						t.Errorf("%s: pid %d is %q, the guest says %q", route, pid, g, w)
					}
				}
				for pid, g := range got {
					if _, ok := want[pid]; !ok {
						t.Errorf("%s: pid %d (%s) is not in the guest's list", route, pid, g)
					}
				}
			}
		})
	}
}

// TestViewsModTree: both rbtrees of the kernel's module latch tree, walked
// in order, hold every loaded module (and nothing else) with strictly
// increasing base addresses, the module's text among them at the address
// /proc/modules gave; and the two trees agree.
func TestViewsModTree(t *testing.T) {
	for _, v := range viewVariants {
		t.Run(v, func(t *testing.T) {
			img, err := LoadImage(v)
			if err != nil {
				t.Fatal(err)
			}
			recs := runViews(t, v, "views_modtree.lua")
			trees := [2][]string{}
			var last [2]uint64
			names := map[string]bool{}
			bases := map[string]bool{}
			for _, r := range recs {
				i := int(r["tree"].(float64))
				name, base := r["name"].(string), r["base"].(string)
				b, err := Hex(base)
				if err != nil {
					t.Fatal(err)
				}
				if len(trees[i]) > 0 && b <= last[i] {
					t.Errorf("tree %d: %s at %s after %#x: not in order", i, name, base, last[i])
				}
				last[i] = b
				trees[i] = append(trees[i], name+"@"+base)
				names[name] = true
				bases[name+"@"+base] = true
			}
			if len(trees[0]) == 0 || strings.Join(trees[0], " ") != strings.Join(trees[1], " ") {
				t.Fatalf("the two trees differ or are empty:\n%v\n%v", trees[0], trees[1])
			}
			var want []string
			for _, m := range img.Truth.ModuleList {
				want = append(want, m.Name)
				if !bases[m.Name+"@"+m.Address] {
					t.Errorf("module %s: no node at its text address %s", m.Name, m.Address)
				}
			}
			var got []string
			for n := range names {
				got = append(got, n)
			}
			sort.Strings(got)
			sort.Strings(want)
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("modules in mod_tree %v, the guest's %v", got, want)
			}
		})
	}
}

// TestViewsHlistNulls: every bucket of TCP's established-socket hash ends
// its hlist_nulls chain with the bucket's own index, as tcp_init set it.
func TestViewsHlistNulls(t *testing.T) {
	for _, v := range viewVariants {
		t.Run(v, func(t *testing.T) {
			recs := runViews(t, v, "views_nulls.lua")
			if len(recs) != 1 {
				t.Fatalf("want one record, got %v", recs)
			}
			r := recs[0]
			if n, _ := r["buckets"].(float64); n < 2 {
				t.Fatalf("ehash has %v buckets", r["buckets"])
			}
			if r["mismatched"] != 0.0 {
				t.Fatalf("%v buckets end with another bucket's nulls marker (first: %v)", r["mismatched"], r["first_bad"])
			}
			t.Logf("%v buckets, %v sockets", r["buckets"], r["sockets"])
		})
	}
}

// TestViewsErrors: on a real kernel, an unknown member of task_struct
// raises an error that names the struct and the member it is near; the
// idle task's mm is NULL, so field(init_task, "mm.pgd") gives nil and an
// error naming mm; a list walked from one of its entries returns to that
// entry without error (the head is just one more node).
func TestViewsErrors(t *testing.T) {
	img, err := LoadImage("x86_64-6.12")
	if err != nil {
		t.Fatal(err)
	}
	recs := runViews(t, "x86_64-6.12", "views_errors.lua")
	if len(recs) != 3 {
		t.Fatalf("want 3 records, got %v", recs)
	}
	unknown, null, from := recs[0], recs[1], recs[2]
	msg, _ := unknown["msg"].(string)
	if unknown["ok"] != false || !strings.Contains(msg, `no member "comn" in struct task_struct`) || !strings.Contains(msg, "comm") {
		t.Errorf("unknown member: %v", unknown)
	}
	nmsg, _ := null["msg"].(string)
	if null["value"] != "nil" || null["mm"] != "nil" || !strings.Contains(nmsg, "struct task_struct.mm is NULL") {
		t.Errorf("NULL mm: %v", null)
	}
	// Walked from the first module's link: the other modules, then the
	// real head (one more node), then back at the start.
	if from["n"] != float64(len(img.Truth.ModuleList)) || from["err"] != nil {
		t.Errorf("walk from an entry: %v, want %d nodes and no error", from, len(img.Truth.ModuleList))
	}
}

// TestViewsMaple: for every user process, maple() over mm->mm_mt yields the
// same mappings (start, end), in the same order, as p:vmas() (which
// process_live_test compares with the guest's /proc/PID/maps), each at the
// index range [vm_start, vm_end - 1]; and task:space() opens the same
// address space (pid, mm, pgd, root) as process_of, for every task on the
// task list, with the same error for kernel threads.
func TestViewsMaple(t *testing.T) {
	for _, v := range viewVariants {
		t.Run(v, func(t *testing.T) {
			img, err := LoadImage(v)
			if err != nil {
				t.Fatal(err)
			}
			stat := statTasks(t, img)
			recs := runViews(t, v, "views_maple.lua")
			maple, vmas := map[int][]string{}, map[int][]string{}
			ended := map[int]bool{}
			users := 0
			for _, r := range recs {
				pid := int(r["pid"].(float64))
				switch r["route"] {
				case "space":
					for _, f := range []string{"pid", "mm", "pgd", "root", "err"} {
						if fmt.Sprint(r["s_"+f]) != fmt.Sprint(r["p_"+f]) {
							t.Errorf("task %d: space().%s is %v, process_of's %v", pid, f, r["s_"+f], r["p_"+f])
						}
					}
					if r["user"] == true {
						if r["s_pid"] != float64(pid) || r["s_err"] != nil {
							t.Errorf("task %d (user): space() gives %v", pid, r)
						}
						if _, ok := stat[pid]; !ok && pid != 0 {
							t.Errorf("user task %d is not in the guest's task list", pid)
						}
						users++
					} else if r["s_err"] == nil {
						t.Errorf("task %d without mm: space() gives no error: %v", pid, r)
					}
				case "maple":
					start, err1 := Hex(r["start"].(string))
					stop, err2 := Hex(r["stop"].(string))
					first, err3 := Hex(r["first"].(string))
					last, err4 := Hex(r["last"].(string))
					if err := errors.Join(err1, err2, err3, err4); err != nil {
						t.Fatalf("record %v: %v", r, err)
					}
					if first != start || last != stop-1 {
						t.Errorf("task %d: VMA %#x-%#x at index range %#x-%#x", pid, start, stop, first, last)
					}
					maple[pid] = append(maple[pid], fmt.Sprintf("%#x-%#x", start, stop))
				case "maple_end":
					if r["err"] != nil || r["count"] != float64(len(maple[pid])) {
						t.Errorf("task %d: maple walk ended with %v after %v entries (%d yielded)", pid, r["err"], r["count"], len(maple[pid]))
					}
					ended[pid] = true
				case "vmas":
					vmas[pid] = append(vmas[pid], fmt.Sprintf("%s-%s", r["start"], r["stop"]))
				}
			}
			if users == 0 || len(ended) != users {
				t.Fatalf("%d user processes, %d maple walks", users, len(ended))
			}
			total := 0
			for pid := range ended {
				if len(vmas[pid]) == 0 || strings.Join(maple[pid], " ") != strings.Join(vmas[pid], " ") {
					t.Errorf("task %d: maple()\n%v\nvmas()\n%v", pid, maple[pid], vmas[pid])
				}
				total += len(vmas[pid])
			}
			t.Logf("%d user processes, %d mappings", users, total)
		})
	}
}
