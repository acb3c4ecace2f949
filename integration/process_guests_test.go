package integration

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi"
)

// statLine is one task's /proc/PID/stat as the guest printed it.
type statLine struct {
	pid   int
	comm  string
	flags uint64
	// state (field 3), ppid (4), num_threads (20).
	state         string
	ppid, threads int
	// The fields of proc(5) from startcode (26) on, by number.
	field map[int]uint64
}

// statTasks reads the guest's TASKS section (each task's /proc/PID/stat
// line) from its serial log.
func statTasks(t *testing.T, img *Image) map[int]statLine {
	t.Helper()
	f, err := os.Open(img.Path("serial.log.zst"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := unpack.NewReader(unpack.Zstd, f)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	begin, end := strings.Index(s, "@@XA-BEGIN-TASKS@@"), strings.Index(s, "@@XA-END-TASKS@@")
	if begin < 0 || end < begin {
		t.Fatalf("%s: no TASKS section", img.Path("serial.log.zst"))
	}
	out := map[int]statLine{}
	for _, line := range strings.Split(strings.TrimSpace(s[begin+len("@@XA-BEGIN-TASKS@@"):end]), "\n") {
		line = strings.TrimSpace(line)
		lp, rp := strings.IndexByte(line, '('), strings.LastIndexByte(line, ')')
		if lp < 1 || rp < lp {
			t.Fatalf("stat line %q", line)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(line[:lp]))
		rest := strings.Fields(line[rp+1:]) // rest[0] is field 3 (state)
		if err != nil || len(rest) < 49 {
			t.Fatalf("stat line %q", line)
		}
		st := statLine{pid: pid, comm: line[lp+1 : rp], state: rest[0], field: map[int]uint64{}}
		st.ppid, err = strconv.Atoi(rest[1])
		if err == nil {
			st.threads, err = strconv.Atoi(rest[17])
		}
		if err != nil {
			t.Fatalf("stat line %q: ppid or num_threads: %v", line, err)
		}
		if st.flags, err = strconv.ParseUint(rest[6], 10, 64); err != nil {
			t.Fatalf("stat line %q: flags: %v", line, err)
		}
		for n := 26; n <= 51; n++ {
			if v, err := strconv.ParseUint(rest[n-3], 10, 64); err == nil {
				st.field[n] = v
			}
		}
		out[pid] = st
	}
	if len(out) < 10 {
		t.Fatalf("only %d tasks in the TASKS section", len(out))
	}
	return out
}

// proc(5)'s numbers of the /proc/PID/stat fields the test uses.
const (
	statStartCode  = 26
	statEndCode    = 27
	statStartStack = 28
	statArgStart   = 48
	statArgEnd     = 49
	statEnvStart   = 50
	statEnvEnd     = 51
)

// TestGuestProcess: on every committed guest (64- and 32-bit, 4- and
// 5-level, PAE and legacy paging, 6.1 and 6.12), pid 1's address space as
// process() opens it agrees with what the guest printed in /proc/1/stat:
// its code lies in an executable mapping of /bin/busybox (the shell that runs
// the rdinit script), its stack pointer in a mapping, and its argument and
// environment strings read back exactly (argv ends with rdinit, the
// environment is the kernel's for init: HOME=/ and TERM=linux) with the
// lengths the guest gave. Every kernel thread the guest listed gives the
// kernel-thread error, and an address below any mapping says it is not
// mapped.
func TestGuestProcess(t *testing.T) {
	for _, v := range Variants {
		t.Run(v, func(t *testing.T) {
			img, k := openCore(t, v)
			tasks := statTasks(t, img)
			init, ok := tasks[1]
			if !ok {
				t.Fatal("the guest listed no pid 1")
			}
			p, err := k.Process(1)
			if err != nil {
				t.Fatal(err)
			}
			if info := p.Info(); info.Comm != init.comm || info.PID != 1 {
				t.Errorf("process(1) is pid %d %q; the guest's is %q", info.PID, info.Comm, init.comm)
			}
			vmas, err := p.VMAs()
			if err != nil {
				t.Fatal(err)
			}
			if len(vmas) < 4 {
				t.Fatalf("pid 1 has %d VMAs: %+v", len(vmas), vmas)
			}
			find := func(va uint64) *vmi.VMA {
				for i := range vmas {
					if va >= vmas[i].Start && va < vmas[i].End {
						return &vmas[i]
					}
				}
				return nil
			}
			const vmExec = 0x4
			code := find(init.field[statStartCode])
			if code == nil || code.Flags&vmExec == 0 || code.File != "/bin/busybox" || init.field[statEndCode] > code.End {
				t.Errorf("code %#x-%#x: in VMA %+v; want an executable mapping of /bin/busybox holding it",
					init.field[statStartCode], init.field[statEndCode], code)
			}
			if find(init.field[statStartStack]) == nil {
				t.Errorf("the stack at %#x is in no VMA", init.field[statStartStack])
			}
			read := func(from, to int) []string {
				a, b := init.field[from], init.field[to]
				if b <= a || b-a > 4096 {
					t.Fatalf("stat fields %d..%d: %#x..%#x", from, to, a, b)
				}
				buf := make([]byte, b-a)
				if err := p.ReadVirt(buf, a); err != nil {
					t.Fatalf("read %#x..%#x: %v", a, b, err)
				}
				if buf[len(buf)-1] != 0 {
					t.Fatalf("%q does not end with NUL", buf)
				}
				return strings.Split(string(buf[:len(buf)-1]), "\x00")
			}
			args := read(statArgStart, statArgEnd)
			if want := rdinit(t, img); args[len(args)-1] != want {
				t.Errorf("argv %q; want it to end with %q", args, want)
			}
			if env := read(statEnvStart, statEnvEnd); strings.Join(env, " ") != "HOME=/ TERM=linux" {
				t.Errorf("environment %q", env)
			}
			// Below the first mapping.
			_, err = p.ReadUintVirt(vmas[0].Start-0x1000, 4)
			var pf *vmi.PageFault
			if !errors.As(err, &pf) || pf.Reason != vmi.FaultNotMapped || !errors.Is(err, vmi.ErrNotPresent) {
				t.Errorf("read below the first VMA: %v", err)
			}
			kthreads := 0
			for pid, st := range tasks {
				if st.flags&0x00200000 == 0 { // PF_KTHREAD
					continue
				}
				kthreads++
				_, err := k.Process(pid)
				if !errors.Is(err, vmi.ErrNoAddressSpace) || !strings.Contains(err.Error(), "kernel thread") {
					t.Errorf("kernel thread %d (%s): %v", pid, st.comm, err)
				}
			}
			if kthreads < 10 {
				t.Errorf("only %d kernel threads", kthreads)
			}
		})
	}
}

// TestGuestProcmapsExample: scripts/examples/procmaps.lua on pid 1 of each
// committed image emits one record per mapping, and the code the guest's
// /proc/1/stat names (startcode) lies in an r-xp mapping of /bin/busybox.
func TestGuestProcmapsExample(t *testing.T) {
	for _, v := range []string{"x86_64-4level", "x86_64-6.12", "i386-pae"} {
		t.Run(v, func(t *testing.T) {
			img, k := openCore(t, v)
			out, err := RunScript(k, "../scripts/examples/procmaps.lua", "1")
			if err != nil {
				t.Fatal(err)
			}
			recs, err := Records(out)
			if err != nil {
				t.Fatal(err)
			}
			code := statTasks(t, img)[1].field[statStartCode]
			found := false
			for _, r := range recs {
				start, err1 := Hex(fmt.Sprint(r["start"]))
				stop, err2 := Hex(fmt.Sprint(r["stop"]))
				if err1 != nil || err2 != nil || r["pid"] != float64(1) || start >= stop {
					t.Fatalf("record %v", r)
				}
				if code >= start && code < stop {
					found = r["perms"] == "r-xp" && r["file"] == "/bin/busybox"
				}
			}
			if len(recs) < 4 || !found {
				t.Errorf("procmaps.lua printed %d mappings; startcode %#x in an r-xp mapping of /bin/busybox: %v\n%s", len(recs), code, found, out)
			}
		})
	}
}
