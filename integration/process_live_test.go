//go:build guests

package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xascript/xascript/internal/liveguest"
)

// holderText is what xa-holder TAG holds (testdata/procholder).
func holderText(tag string) string {
	return "XA-PROC-HOLDER " + tag + " " + strings.Repeat(tag+"-", 9000/(len(tag)+1))
}

// holder is one xa-holder running in the guest, as it reported itself.
type holder struct {
	tag              string
	pid              int
	heap, mmap, size uint64
	maps             string // the guest's /proc/PID/maps
	tid              int    // one of its threads other than the leader
}

// processScript prints, for each "pid:heap:len:mmap" argument, what
// process() reads: the held text in hex, each mapping as /proc/PID/maps
// would show it, and the errors of the untouched and the PROT_NONE page.
const processScript = `
print("PAGING 0 " .. guest_info().paging)
for _, a in ipairs(arg) do
  local pid, heap, len, mm, tid = a:match("^(%d+):(%w+):(%d+):(%w+):(%d+)$")
  local p = assert(process(tonumber(pid)))
  local data = assert(p:read_bytes(addr(heap), tonumber(len)))
  local th = assert(process(tonumber(tid)))
  print("THREAD " .. pid .. " " .. th.pid .. " " .. tostring(th.mm == p.mm and th.task ~= p.task) .. " " ..
    tostring(assert(th:read_bytes(addr(heap), tonumber(len))) == data))
  print("PROC " .. pid .. " " .. p.comm .. " " .. (data:gsub(".", function(c) return string.format("%02x", c:byte()) end)))
  print("FIRST " .. pid .. " " .. assert(p:read_cstring(addr(mm))))
  print("UNTOUCHED " .. pid .. " " .. select(2, p:read_u8(addr(mm) + 4096)))
  print("PROTNONE " .. pid .. " " .. select(2, p:read_u8(addr(mm) + 8192)))
  for _, v in ipairs(assert(p:vmas())) do
    print(string.format("VMA %s %s-%s %s %s %s", pid, v.start:hex(), v.stop:hex(), v.perms, v.offset:hex(), v.file or "-"))
  end
  -- The same mappings through the iterators: the maple tree (6.1 on) or
  -- the vm_next chain (before).
  local mm, w = view("mm_struct", p.mm)
  if has_member("mm_struct", "mmap") then
    w = chain(mm.mmap, "vm_area_struct", "vm_next")
  else
    w = maple(mm.mm_mt, "vm_area_struct")
  end
  for v in w do print(string.format("ITER %s %s-%s", pid, v.vm_start:hex(), v.vm_end:hex())) end
  print("ITEREND " .. pid .. " " .. (has_member("mm_struct", "mmap") and "chain" or "maple") .. " " .. tostring(w:err()))
end
`

// TestGuestLiveQEMUProcess: a live guest runs three xa-holder processes
// (static Go programs in its initramfs), each holding a known text at an
// address it printed. xascript --qemu reads each text back exactly through
// process(pid), and lists the same mappings as the guest's own
// /proc/PID/maps (start, end, permissions, offset, and the path of every
// mapped file); the never-touched page and the PROT_NONE page give the
// errors that say so; a thread id opens the same address space;
// procmem.lua and lsof.lua give each holder's /proc/PID/cmdline, environ
// and fd links (checkProcFiles). Four times: on the usual guest (4-level paging; QEMU's
// qemu64 CPU is not vulnerable to Meltdown, so no page-table isolation),
// and on one with 5-level paging (-cpu max) and PTI forced on (pti=on),
// where each process has two top-level tables and the vCPU's CR3 may be
// the user one. Then on Debian bullseye's 5.10 kernel, whose mappings are
// on the mm->mmap list (vm_next) instead of the maple tree, and on the
// 6.12 kernel, whose pidfds (each holder has one) are pidfs inodes.
func TestGuestLiveQEMUProcess(t *testing.T) {
	bin := xascriptBinary(t)
	holderBin := filepath.Join(t.TempDir(), "xa-holder")
	build := exec.Command("go", "build", "-o", holderBin, "./testdata/procholder")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build xa-holder: %v\n%s", err, out)
	}
	for _, c := range []struct {
		name   string
		cfg    liveguest.Config
		paging string
		pti    bool
		vmNext bool // mappings on the mm->mmap list, not a maple tree
	}{
		{"4-level", liveguest.Config{}, "4-level", false, false},
		// no_timer_check: with -cpu max on a loaded host the kernel's
		// IO-APIC timer check can time out under TCG and panic.
		{"5-level PTI", liveguest.Config{CPU: "max", Append: "pti=on no_timer_check"}, "5-level", true, false},
		// Debian bullseye's 5.10: before the maple tree (6.1), a process's
		// mappings are the list mm->mmap linked through vm_next.
		{"5.10 vm_next list", liveguest.Config{Kernel: "amd64-5.10"}, "4-level", false, true},
		// 6.12: the other committed layout, whose pidfds are pidfs inodes.
		{"6.12", liveguest.Config{Kernel: "amd64-6.12"}, "4-level", false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Files = []string{holderBin + ":/bin/xa-holder"}
			testLiveProcesses(t, bin, liveguest.StartWith(t, "../testdata/live-guest.sh", c.cfg), c.paging, c.pti, c.vmNext)
		})
	}
}

func testLiveProcesses(t *testing.T, bin string, g *liveguest.Guest, paging string, pti, vmNext bool) {
	// X86_FEATURE_PTI shows as the "pti" flag in /proc/cpuinfo (the sysfs
	// meltdown file says "Not affected" on a CPU that is not vulnerable
	// even when pti=on forces isolation).
	flags, err := g.Run("grep -c -w pti /proc/cpuinfo || true", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if (strings.TrimSpace(flags) != "0") != pti {
		t.Fatalf("the guest's /proc/cpuinfo has the pti flag on %s CPUs; this case wants PTI %v", strings.TrimSpace(flags), pti)
	}
	line := regexp.MustCompile(`XA-HOLDER pid=(\d+) heap=0x([0-9a-f]+) len=(\d+) mmap=0x([0-9a-f]+)`)
	var holders []*holder
	for _, tag := range []string{"alpha", "bravo7", "c"} {
		if out, err := g.Run(holderSetup(tag), 30*time.Second); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if _, err := g.Run(holderCommand(tag), 30*time.Second); err != nil {
			t.Fatal(err)
		}
		var m []string
		for deadline := time.Now().Add(60 * time.Second); m == nil; {
			out, err := g.Run("cat /tmp/"+tag+".out", 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if m = line.FindStringSubmatch(out); m == nil {
				if time.Now().After(deadline) {
					t.Fatalf("xa-holder %s printed %q", tag, out)
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
		h := &holder{tag: tag}
		h.pid, _ = strconv.Atoi(m[1])
		h.heap, _ = strconv.ParseUint(m[2], 16, 64)
		h.size, _ = strconv.ParseUint(m[3], 10, 64)
		h.mmap, _ = strconv.ParseUint(m[4], 16, 64)
		if h.size != uint64(len(holderText(tag))) {
			t.Fatalf("xa-holder %s holds %d bytes; the test expects %d", tag, h.size, len(holderText(tag)))
		}
		holders = append(holders, h)
	}
	var args []string
	for _, h := range holders {
		maps, err := g.Run(fmt.Sprintf("cat /proc/%d/maps", h.pid), 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		h.maps = maps
		tasks, err := g.Run(fmt.Sprintf("ls /proc/%d/task", h.pid), 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range strings.Fields(tasks) {
			if n, err := strconv.Atoi(f); err == nil && n != h.pid {
				h.tid = n
				break
			}
		}
		if h.tid == 0 {
			t.Fatalf("xa-holder %s (pid %d) has no thread besides its leader: %q", h.tag, h.pid, tasks)
		}
		args = append(args, fmt.Sprintf("%d:%#x:%d:%#x:%d", h.pid, h.heap, h.size, h.mmap, h.tid))
	}
	script := filepath.Join(t.TempDir(), "proc.lua")
	if err := os.WriteFile(script, []byte(processScript), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{script, "--qemu", g.Socket, "--pause", "--"}, args...)...)
	cmd.Env = cacheEnv(t)
	outb, err := cmd.CombinedOutput()
	out := string(outb)
	if err != nil {
		t.Fatalf("xascript: %v\n%s", err, tail(out, 3000))
	}
	if !strings.Contains(out, "PAGING 0 "+paging+"\n") {
		t.Errorf("xascript did not see %s paging:\n%s", paging, tail(out, 2000))
	}
	for _, h := range holders {
		pid := strconv.Itoa(h.pid)
		var vmas, iter []string
		got := map[string]string{}
		for _, l := range strings.Split(out, "\n") {
			f := strings.Fields(l)
			if len(f) < 3 || f[1] != pid {
				continue
			}
			if f[0] == "VMA" {
				vmas = append(vmas, strings.Join(f[2:], " "))
			} else if f[0] == "ITER" {
				iter = append(iter, f[2])
			} else {
				got[f[0]] = strings.Join(f[2:], " ")
			}
		}
		want := fmt.Sprintf("xa-holder %x", holderText(h.tag))
		if got["PROC"] != want {
			t.Errorf("pid %d: process(%d) read %q\nwant %q", h.pid, h.pid, tail(got["PROC"], 200), tail(want, 200))
		}
		if want := fmt.Sprintf("%d true true", h.tid); got["THREAD"] != want {
			t.Errorf("pid %d: process(%d), its thread: %q; want %q (same mm, same text)", h.pid, h.tid, got["THREAD"], want)
		}
		if got["FIRST"] != "first page "+h.tag {
			t.Errorf("pid %d: first mapped page %q", h.pid, got["FIRST"])
		}
		if !strings.Contains(got["UNTOUCHED"], "not faulted in") {
			t.Errorf("pid %d: untouched page: %q", h.pid, got["UNTOUCHED"])
		}
		if !strings.Contains(got["PROTNONE"], "PROT_NONE") {
			t.Errorf("pid %d: PROT_NONE page: %q", h.pid, got["PROTNONE"])
		}
		wantVMAs := mapsLines(t, h.maps)
		if strings.Join(vmas, "\n") != strings.Join(wantVMAs, "\n") {
			t.Errorf("pid %d: vmas()\n%s\nthe guest's /proc/%d/maps\n%s", h.pid, strings.Join(vmas, "\n"), h.pid, strings.Join(wantVMAs, "\n"))
		}
		var spans []string
		for _, v := range vmas {
			spans = append(spans, strings.Fields(v)[0])
		}
		if want := "chain nil"; vmNext != (got["ITEREND"] == want) || !strings.HasSuffix(got["ITEREND"], " nil") {
			t.Errorf("pid %d: the mappings' iterator ended %q (this kernel keeps them on the vm_next list: %v)", h.pid, got["ITEREND"], vmNext)
		}
		if strings.Join(iter, " ") != strings.Join(spans, " ") {
			t.Errorf("pid %d: %s\n%v\nvmas()\n%v", h.pid, got["ITEREND"], iter, spans)
		}
		t.Logf("pid %d (%s): %d bytes read back, %d mappings as in /proc/%d/maps (and by %s)", h.pid, h.tag, h.size, len(vmas), h.pid, strings.Fields(got["ITEREND"])[0])
	}
	checkProcFiles(t, bin, g, holders)
}

// mapsLines turns /proc/PID/maps lines into the script's VMA format:
// "0xSTART-0xEND PERMS 0xOFFSET PATH", with "-" for anonymous mappings
// and for the kernel's named ones ([heap], [stack], [vdso], [vvar]),
// which have no file.
func mapsLines(t *testing.T, maps string) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(maps), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 {
			t.Fatalf("maps line %q", l)
		}
		se := strings.SplitN(f[0], "-", 2)
		start, err1 := strconv.ParseUint(se[0], 16, 64)
		end, err2 := strconv.ParseUint(se[1], 16, 64)
		off, err3 := strconv.ParseUint(f[2], 16, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("maps line %q", l)
		}
		path := "-"
		if len(f) >= 6 && !strings.HasPrefix(f[5], "[") {
			path = strings.Join(f[5:], " ")
		}
		out = append(out, fmt.Sprintf("%#x-%#x %s %#x %s", start, end, f[1], off, path))
	}
	return out
}

// tail is the end of s, at most n bytes of it.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
