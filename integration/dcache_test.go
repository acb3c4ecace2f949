package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestGuestDcache: scripts/lib/linux.lua's dentry-cache walk (6.1's
// d_subdirs list, 6.12's d_children hlist) against what each captured guest
// did to its own tree. The guest's /init (testdata/guest-lib.sh) listed
// /proc/[0-9]* and read each pid's stat, so /proc's cached pid folders are
// exactly the tasks it printed; it mounted proc, sysfs and devtmpfs on
// folders of its initramfs root, read /proc files with cat, made a FIFO and
// keeps it open as fd 3 of pid 1 (and as its stdin while it waits in its
// last loop). Each of those facts is read from guest-lib.sh, guest-init.sh
// and truth.json, not written here; which tasks are kernel threads comes
// from the flags of the guest's own /proc/PID/stat lines.
func TestGuestDcache(t *testing.T) {
	lib, err := os.ReadFile(filepath.Join("..", "testdata", "guest-lib.sh"))
	if err != nil {
		t.Fatal(err)
	}
	facts := guestLibFacts(t, string(lib))
	// The memory was taken while pid 1 waited in guest-init.sh's last loop,
	// `read -r _ <&N`: its stdin is then a duplicate of fd N.
	initSh, err := os.ReadFile(filepath.Join("..", "testdata", "guest-init.sh"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^while :; do read -r _ <&(\d); done$`).FindStringSubmatch(string(initSh))
	if m == nil {
		t.Fatal("guest-init.sh no longer ends in its read loop: update this test")
	}
	fd, _ := strconv.Atoi(m[1])
	if facts.fds[fd] == "" {
		t.Fatalf("guest-init.sh reads fd %d, which guest-lib.sh does not open", fd)
	}
	facts.fds[0] = facts.fds[fd]
	for _, v := range Variants {
		t.Run(v, func(t *testing.T) {
			img, k := openCore(t, v)
			out, err := RunScript(k, "testdata/dcache.lua", "/", "/proc", "@"+facts.fifo)
			if err != nil {
				t.Fatalf("dcache.lua: %v", err)
			}
			d := parseDcache(t, out)
			checkDcache(t, img, facts, d)
		})
	}
}

// libFacts is what guest-lib.sh makes every captured guest do.
type libFacts struct {
	mounts   []string       // folders it mounts a file system on
	procRead []string       // /proc files it reads (xa_section)
	fifo     string         // the FIFO it makes
	fds      map[int]string // fd -> path pid 1 keeps open
}

func guestLibFacts(t *testing.T, lib string) libFacts {
	t.Helper()
	f := libFacts{fds: map[int]string{}}
	for _, m := range regexp.MustCompile(`(?m)^\s*mount -t \S+ \S+ (/\S+)$`).FindAllStringSubmatch(lib, -1) {
		f.mounts = append(f.mounts, m[1])
	}
	for _, m := range regexp.MustCompile(`(?m)^\s*xa_section \S+ (/proc/\S+)$`).FindAllStringSubmatch(lib, -1) {
		f.procRead = append(f.procRead, m[1])
	}
	if m := regexp.MustCompile(`(?m)^\s*mkfifo (/\S+)$`).FindStringSubmatch(lib); m != nil {
		f.fifo = m[1]
	}
	for _, m := range regexp.MustCompile(`(?m)^\s*exec (\d)<>(/\S+)$`).FindAllStringSubmatch(lib, -1) {
		fd, _ := strconv.Atoi(m[1])
		f.fds[fd] = m[2]
	}
	if len(f.mounts) < 3 || len(f.procRead) < 3 || f.fifo == "" || len(f.fds) == 0 {
		t.Fatalf("guest-lib.sh no longer says what the test expects (mounts %v, /proc reads %v, fifo %q, fds %v): update this test",
			f.mounts, f.procRead, f.fifo, f.fds)
	}
	return f
}

type dentryLine struct {
	ino     uint64
	typ     string
	mounted bool
}

type dcacheOut struct {
	entries map[string]map[string]dentryLine // dir -> name -> entry
	fds     map[int]map[int][2]string        // pid -> fd -> {path, ino}
	cwd     map[int]string
	kthread map[int]bool
	holders map[string][][2]int // path -> {pid, fd}
	indir   map[string][]int    // dir -> user processes working there
}

func parseDcache(t *testing.T, out string) dcacheOut {
	t.Helper()
	d := dcacheOut{entries: map[string]map[string]dentryLine{}, fds: map[int]map[int][2]string{}, cwd: map[int]string{},
		kthread: map[int]bool{}, holders: map[string][][2]int{}, indir: map[string][]int{}}
	atoi := func(s, line string) int {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		return n
	}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 6 && f[0] == "ENTRY":
			ino, err := strconv.ParseUint(f[3], 10, 64)
			if err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			if d.entries[f[1]] == nil {
				d.entries[f[1]] = map[string]dentryLine{}
			}
			if _, dup := d.entries[f[1]][f[2]]; dup {
				t.Errorf("%s/%s listed twice", f[1], f[2])
			}
			d.entries[f[1]][f[2]] = dentryLine{ino: ino, typ: f[4], mounted: f[5] == "true"}
		case len(f) == 5 && f[0] == "FD":
			pid, err1 := strconv.Atoi(f[1])
			fd, err2 := strconv.Atoi(f[2])
			if err1 != nil || err2 != nil {
				t.Fatalf("line %q", line)
			}
			if d.fds[pid] == nil {
				d.fds[pid] = map[int][2]string{}
			}
			d.fds[pid][fd] = [2]string{f[3], f[4]}
		case len(f) == 3 && f[0] == "CWD":
			pid, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatalf("line %q", line)
			}
			d.cwd[pid] = f[2]
		case len(f) == 3 && f[0] == "KTHREAD":
			d.kthread[atoi(f[1], line)] = f[2] == "true"
		case len(f) == 4 && f[0] == "HOLDER":
			d.holders[f[1]] = append(d.holders[f[1]], [2]int{atoi(f[2], line), atoi(f[3], line)})
		case len(f) == 3 && f[0] == "INDIR":
			d.indir[f[1]] = append(d.indir[f[1]], atoi(f[2], line))
		case len(f) == 2 && f[0] == "TRUNCATED":
			t.Errorf("%s: more children than the bound", f[1])
		default:
			t.Fatalf("dcache.lua printed %q", line)
		}
	}
	return d
}

func checkDcache(t *testing.T, img *Image, facts libFacts, d dcacheOut) {
	t.Helper()
	// /proc: one folder per task the guest listed, and no other pid.
	var want, got []int
	for _, task := range img.Truth.Tasks {
		want = append(want, task.PID)
	}
	inos := map[uint64]string{}
	for name, e := range d.entries["/proc"] {
		if prev, dup := inos[e.ino]; dup {
			t.Errorf("/proc/%s and /proc/%s share inode %d", name, prev, e.ino)
		}
		inos[e.ino] = name
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		if e.typ != "dir" || e.ino == 0 {
			t.Errorf("/proc/%s: %s inode %d, want a folder", name, e.typ, e.ino)
		}
		got = append(got, pid)
	}
	sort.Ints(want)
	sort.Ints(got)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("/proc's cached pid folders:\n%v\nthe guest listed /proc/[0-9]*:\n%v", got, want)
	}
	for _, p := range facts.procRead {
		if e, ok := d.entries["/proc"][strings.TrimPrefix(p, "/proc/")]; !ok || e.typ != "file" {
			t.Errorf("%s (read by the guest): %+v, %v; want a cached file", p, e, ok)
		}
	}
	// /: the initramfs root with the guest's mount points, its /init and FIFO.
	root := d.entries["/"]
	for _, m := range facts.mounts {
		if e, ok := root[strings.TrimPrefix(m, "/")]; !ok || e.typ != "dir" || !e.mounted {
			t.Errorf("%s (mounted on by the guest): %+v, %v; want a folder with a mount on it", m, e, ok)
		}
	}
	if e, ok := root[strings.TrimPrefix(facts.fifo, "/")]; !ok || e.typ != "fifo" {
		t.Errorf("%s (mkfifo by the guest): %+v, %v; want a FIFO", facts.fifo, e, ok)
	}
	init := rdinit(t, img)
	if e, ok := root[strings.TrimPrefix(init, "/")]; !ok || e.typ != "file" {
		t.Errorf("%s (rdinit on the guest's command line): %+v, %v; want a file", init, e, ok)
	}
	// pid 1's open FIFO, by path and by inode number, and its cwd.
	for fd, path := range facts.fds {
		f, ok := d.fds[1][fd]
		if !ok || f[0] != path {
			t.Errorf("pid 1 fd %d: %v, want %s (open files %v)", fd, f, path, d.fds[1])
			continue
		}
		if e := root[strings.TrimPrefix(path, "/")]; f[1] != strconv.FormatUint(e.ino, 10) {
			t.Errorf("pid 1 fd %d: inode %s, the dentry of %s has %d", fd, f[1], path, e.ino)
		}
	}
	if d.cwd[1] != "/" {
		t.Errorf("pid 1 cwd %q, want /", d.cwd[1])
	}
	// Who holds the FIFO open: exactly the descriptors guest-lib.sh opened.
	var wantHolders [][2]int
	for fd, path := range facts.fds {
		if path == facts.fifo {
			wantHolders = append(wantHolders, [2]int{1, fd})
		}
	}
	sort.Slice(wantHolders, func(i, j int) bool { return wantHolders[i][1] < wantHolders[j][1] })
	if fmt.Sprint(d.holders[facts.fifo]) != fmt.Sprint(wantHolders) {
		t.Errorf("holders of %s: %v, want %v", facts.fifo, d.holders[facts.fifo], wantHolders)
	}
	// Kernel threads as the guest's /proc/PID/stat flags said; the user
	// processes working in / are the guest's non-kernel tasks with cwd /.
	flags := statKthreads(t, img)
	var wantIn []int
	for pid, kt := range flags {
		if got, ok := d.kthread[pid]; !ok || got != kt {
			t.Errorf("pid %d: is_kthread %v (listed %v), the guest's stat flags say %v", pid, got, ok, kt)
		}
		if !kt && d.cwd[pid] == "/" {
			wantIn = append(wantIn, pid)
		}
	}
	sort.Ints(wantIn)
	gotIn := append([]int(nil), d.indir["/"]...)
	sort.Ints(gotIn)
	if len(wantIn) == 0 || fmt.Sprint(gotIn) != fmt.Sprint(wantIn) {
		t.Errorf("user processes in /: %v, want %v", gotIn, wantIn)
	}
}

// statKthreads reads the guest's TASKS section (each task's /proc/PID/stat
// line) from its serial log: pid -> PF_KTHREAD set in the flags field.
func statKthreads(t *testing.T, img *Image) map[int]bool {
	t.Helper()
	const pfKthread = 0x00200000
	out := map[int]bool{}
	for pid, st := range statTasks(t, img) {
		out[pid] = st.flags&pfKthread != 0
	}
	return out
}

// rdinit is the init program on the guest's kernel command line.
func rdinit(t *testing.T, img *Image) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(img.Dir, "truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tr struct {
		Cmdline string `json:"cmdline"`
	}
	if err := json.Unmarshal(raw, &tr); err != nil {
		t.Fatal(err)
	}
	for _, w := range strings.Fields(tr.Cmdline) {
		if v, ok := strings.CutPrefix(w, "rdinit="); ok {
			return v
		}
	}
	t.Fatalf("no rdinit= in the guest's command line %q", tr.Cmdline)
	return ""
}
