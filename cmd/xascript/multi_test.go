package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xascript/xascript/internal/socktest"
	"github.com/xascript/xascript/vmi/linux"
	"github.com/xascript/xascript/vmi/paging"
	"github.com/xascript/xascript/vmi/qemu"
	"github.com/xascript/xascript/vmi/xen"
)

func imageTruth(t *testing.T, variant string) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "images", variant, "truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	var truth struct {
		Modules []string `json:"modules"`
	}
	if err := json.Unmarshal(raw, &truth); err != nil {
		t.Fatal(err)
	}
	if len(truth.Modules) < 5 {
		t.Fatalf("%s: truth lists %d modules", variant, len(truth.Modules))
	}
	return truth.Modules
}

// Two dumps of two different kernels and one that is missing, at once:
// every line is tagged with its guest, each guest's lines are its own
// module list in order, the missing one ends with an error line naming it,
// and the exit status is the worst (3, the target that could not be
// opened).
func TestMultiDumps(t *testing.T) {
	dir := t.TempDir()
	want := map[string][]string{}
	var args []string
	for name, variant := range map[string]string{"k61.elf.zst": "x86_64-4level", "k612.elf.zst": "x86_64-6.12"} {
		src := abs(t, filepath.Join("..", "..", "testdata", "images", variant, "mem.elf.zst"))
		if err := os.Symlink(src, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
		want[name] = imageTruth(t, variant)
		args = append(args, "--file", filepath.Join(dir, name))
	}
	args = append(args, "--file", filepath.Join(dir, "gone.elf"))
	cache := t.TempDir()
	var stdout, stderr strings.Builder
	code := run(append([]string{abs(t, "../../scripts/examples/lkm.lua"), "-q", "--cache-dir", cache}, args...), &stdout, &stderr)
	if code != exitTarget {
		t.Errorf("exit %d, want %d (the missing dump)\nstderr: %s", code, exitTarget, stderr.String())
	}
	// Text: each line is tagged, and the record in it names the same guest.
	got := map[string][]string{}
	line := regexp.MustCompile(`^\[([a-z0-9.]+)\] guest=([a-z0-9.]+) +name=([a-z0-9_]+)$`)
	for _, l := range strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil || m[1] != m[2] {
			t.Fatalf("line %q is not one module record tagged with its guest", l)
		}
		got[m[1]] = append(got[m[1]], m[3])
	}
	checkPerGuest(t, got, want)
	if e := stderr.String(); !strings.HasPrefix(e, "xascript: [gone.elf] ") || !strings.Contains(e, "no such file") || strings.Count(e, "\n") != 1 {
		t.Errorf("stderr: %q, want one line naming gone.elf", e)
	}

	// --json: JSON Lines, untagged; each record names its guest, and the
	// missing dump's failure is a record too.
	stdout.Reset()
	stderr.Reset()
	code = run(append([]string{abs(t, "../../scripts/examples/lkm.lua"), "-q", "--json", "--cache-dir", cache}, args...), &stdout, &stderr)
	if code != exitTarget {
		t.Errorf("--json: exit %d", code)
	}
	got = map[string][]string{}
	failed := 0
	for _, l := range strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n") {
		var r struct {
			Guest, Name, Error string
			Status             int
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("--json line %q: %v", l, err)
		}
		if r.Error != "" {
			if r.Guest != "gone.elf" || r.Status != exitTarget || !strings.Contains(r.Error, "no such file") {
				t.Errorf("error record %q", l)
			}
			failed++
			continue
		}
		got[r.Guest] = append(got[r.Guest], r.Name)
	}
	checkPerGuest(t, got, want)
	if failed != 1 {
		t.Errorf("%d error records, want 1", failed)
	}
}

func checkPerGuest(t *testing.T, got, want map[string][]string) {
	t.Helper()
	for name, mods := range want {
		if strings.Join(got[name], " ") != strings.Join(mods, " ") {
			t.Errorf("%s: got %v\nwant %v", name, got[name], mods)
		}
	}
	if len(got) != len(want) {
		t.Errorf("output from %d guests, want %d", len(got), len(want))
	}
}

// lockedBuilder is stdout for runGuests: a test reads it while guests
// write, and watch sees each write (lineMux writes whole lines).
type lockedBuilder struct {
	mu    sync.Mutex
	b     strings.Builder
	watch func(string)
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.watch != nil {
		l.watch(string(p))
	}
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// fakeGuests serves n fake live QEMU guests (pause_test.go's fakeLive) and
// returns them with an opener that opens each by its name ("a", "b", ...),
// pausing it first when pause is set, as --pause does.
func fakeGuests(t *testing.T, n int, pause bool) ([]guestSpec, map[string]*socktest.QMP, func(guestSpec) (*guest, error)) {
	qs := map[string]*socktest.QMP{}
	socks := map[string]string{}
	var specs []guestSpec
	for i := range n {
		name := string(rune('a' + i))
		q, _ := fakeLive(t, false)
		qs[name], socks[name] = q, q.Serve(t)
		specs = append(specs, guestSpec{flag: "qemu", value: socks[name], name: name})
	}
	open := func(s guestSpec) (*guest, error) {
		tg, err := qemu.Open(s.value, qemu.Options{Timeout: 5 * time.Second})
		if err != nil {
			return nil, err
		}
		if pause {
			if err := tg.Pause(); err != nil {
				tg.Close()
				return nil, err
			}
		}
		return &guest{target: tg, kernel: &linux.Kernel{Target: tg, Space: paging.New(tg, paging.IA32e, 0)}}, nil
	}
	return specs, qs, open
}

func writeScript(t *testing.T, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "mon.lua")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Guest a's QEMU goes away mid-run: its state ends with an error line (and,
// with --json, an error record) naming it; guest b runs to its end.
func TestMultiGuestGone(t *testing.T) {
	specs, qs, open := fakeGuests(t, 2, false)
	script := writeScript(t, `
for i = 1, 30 do
  local v = assert(read_u32(0))
  print(i, string.format("%x", v))
  sleep(0.02)
end`)
	var once sync.Once
	stdout := &lockedBuilder{watch: func(s string) {
		if strings.Contains(s, "[a] 3\t") {
			once.Do(func() { go qs["a"].Quit() })
		}
	}}
	var stderr lockedBuilder
	codes := runGuests(context.Background(), specs, open, multiConfig{
		script: script, stdout: stdout, stderr: &stderr, json: true,
		interrupted: func() int { return exitInterrupted },
	})
	if codes[0] != exitScript || codes[1] != exitOK {
		t.Errorf("statuses %v, want [1 0]\nstderr: %s", codes, stderr.String())
	}
	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	count := map[string]int{}
	record := 0
	re := regexp.MustCompile(`^\[([ab])\] ([0-9]+)\t44444444$`)
	for _, l := range lines {
		if m := re.FindStringSubmatch(l); m != nil {
			count[m[1]]++
			if fmt.Sprint(count[m[1]]) != m[2] {
				t.Errorf("guest %s: line %q out of order", m[1], l)
			}
			continue
		}
		var rec struct {
			Guest  string `json:"guest"`
			Error  string `json:"error"`
			Status int    `json:"status"`
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec.Guest != "a" || rec.Status != exitScript || !strings.Contains(rec.Error, "QMP connection closed") {
			t.Errorf("line %q: neither a tagged line nor a's error record", l)
		}
		record++
	}
	if count["b"] != 30 || count["a"] < 3 || count["a"] >= 30 || record != 1 {
		t.Errorf("a printed %d lines, b %d, %d error records; want a cut short, b all 30, 1 record", count["a"], count["b"], record)
	}
	if e := stderr.String(); !strings.HasPrefix(e, "xascript: [a] ") || !strings.Contains(e, "QMP connection closed") || strings.Count(e, "\n") != 1 {
		t.Errorf("stderr %q: want one line naming a and why", e)
	}
}

// Ctrl-C (the context) ends every guest's run at once, with the signal's
// status, and every guest paused by --pause runs again.
func TestMultiInterrupt(t *testing.T) {
	specs, qs, open := fakeGuests(t, 3, true)
	script := writeScript(t, `while true do print(read_u32(0)); sleep(0.05) end`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := map[string]bool{}
	stdout := &lockedBuilder{}
	stdout.watch = func(s string) {
		seen[s[:3]] = true
		if len(seen) == 3 {
			cancel()
		}
	}
	var stderr lockedBuilder
	done := make(chan []int)
	go func() {
		done <- runGuests(ctx, specs, open, multiConfig{script: script, stdout: stdout, stderr: &stderr,
			interrupted: func() int { return exitTerminated }})
	}()
	select {
	case codes := <-done:
		if fmt.Sprint(codes) != "[143 143 143]" {
			t.Errorf("statuses %v, want 143 each", codes)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the guests' runs did not end after the interrupt")
	}
	if stderr.String() != "" {
		t.Errorf("stderr: %q", stderr.String())
	}
	for name, q := range qs {
		if stops, conts := q.Counts(); q.IsPaused() || stops != 1 || conts != 1 {
			t.Errorf("guest %s: paused %v after %d stops and %d conts; want resumed", name, q.IsPaused(), stops, conts)
		}
	}
}

// A panic in one guest's run is that guest's internal error (70); the
// others finish.
func TestMultiPanicFirewall(t *testing.T) {
	specs, _, open := fakeGuests(t, 2, false)
	panicky := func(s guestSpec) (*guest, error) {
		if s.name == "a" {
			panic("parser bug")
		}
		return open(s)
	}
	var stdout, stderr lockedBuilder
	codes := runGuests(context.Background(), specs, panicky, multiConfig{
		script: writeScript(t, `print(read_u32(0))`), stdout: &stdout, stderr: &stderr,
		interrupted: func() int { return exitInterrupted },
	})
	if codes[0] != exitInternal || codes[1] != exitOK || stdout.String() != "[b] 1145324612\n" {
		t.Errorf("statuses %v, stdout %q", codes, stdout.String())
	}
	if e := stderr.String(); !strings.HasPrefix(e, "xascript: [a] internal error in opening the target (cmd/xascript, multi_test.go:") || !strings.Contains(e, "parser bug") {
		t.Errorf("stderr %q", e)
	}
}

// Lines never mix: a guest's writes are cut into whole lines, each tagged,
// whatever the runtime's buffer boundaries; JSON records stay untagged
// with --json; a line that never ends is written when the run ends.
func TestGuestWriter(t *testing.T) {
	var out lockedBuilder
	mux := &lineMux{w: &out}
	w := &guestWriter{mux: mux, prefix: "[g] ", json: true}
	for _, p := range []string{"one\ntw", "o\n{\"guest\":\"g\"}\n", "", "th", "ree"} {
		if n, err := w.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatal(n, err)
		}
	}
	if got := out.String(); got != "[g] one\n[g] two\n{\"guest\":\"g\"}\n" {
		t.Errorf("got %q", got)
	}
	w.Close()
	if got := out.String(); !strings.HasSuffix(got, "[g] three\n") {
		t.Errorf("after Close: %q", got)
	}
	// A line longer than the bound goes out in pieces of maxPartialLine.
	out.b.Reset()
	w.Write([]byte(strings.Repeat("x", maxPartialLine+10)))
	w.Close()
	if got := out.String(); strings.Count(got, "\n") != 2 || len(got) != maxPartialLine+10+2*(len("[g] ")+1) {
		t.Errorf("long line: %d bytes, %d lines", len(got), strings.Count(got, "\n"))
	}
}

// --dom all expands to every running domU, named from xenstore; dom0, a
// dying and a crashed domain are left out; a command other than a script
// refuses several targets.
func TestMultiTargets(t *testing.T) {
	saved := listXen
	defer func() { listXen = saved }()
	listXen = func() ([]xen.Domain, error) {
		return []xen.Domain{
			{ID: 0, Name: "Domain-0", Type: "PV", State: "r-----"},
			{ID: 1, Name: "xa-pv", Type: "PV", State: "-b----"},
			{ID: 2, Name: "xa-pvh", Type: "PVH", State: "r-----"},
			{ID: 3, Name: "oops", Type: "PV", State: "---sc-"},
			{ID: 4, Name: "", Type: "HVM", State: "--p---"},
			{ID: 5, Name: "going", Type: "PV", State: "-----d"},
		}, nil
	}
	files := &options{files: []string{"a/mem.elf", "b/mem.elf", "c.raw"}}
	if !files.splitTargets() {
		t.Fatal("not multi")
	}
	o := &options{doms: []string{"all", "xa-pv"}}
	if !o.splitTargets() {
		t.Fatal("not multi")
	}
	var got []string
	for _, opts := range []*options{files, o} {
		specs, err := expandTargets(opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range specs {
			got = append(got, s.flag+":"+s.value+"="+s.name)
		}
	}
	want := "file:a/mem.elf=a/mem.elf file:b/mem.elf=b/mem.elf file:c.raw=c.raw dom:1=xa-pv dom:2=xa-pvh dom:4=4 dom:xa-pv=xa-pv#2"
	if strings.Join(got, " ") != want {
		t.Errorf("targets:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	one := &options{doms: []string{"web1"}}
	if one.splitTargets() || one.dom != "web1" {
		t.Errorf("one --dom: multi or dom %q", one.dom)
	}
	// Different kinds are not several guests: opening refuses them.
	mixed := &options{doms: []string{"all"}, files: []string{"a"}}
	if mixed.splitTargets() || mixed.dom != "all" || mixed.file != "a" {
		t.Errorf("--file with --dom all: %+v", mixed)
	}
	var stdout, stderr strings.Builder
	if code := run([]string{"info", "--file", "a", "--file", "b"}, &stdout, &stderr); code != exitUsage || !strings.Contains(stderr.String(), "info takes one target") {
		t.Errorf("info with two targets: %d %q", code, stderr.String())
	}
}

// A script in a busy loop on every guest (no sleep, no binding call) ends
// too when interrupted: the runtime's kill context reaches every state.
func TestMultiInterruptBusyLoop(t *testing.T) {
	specs, _, open := fakeGuests(t, 2, false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr lockedBuilder
	done := make(chan []int)
	go func() {
		done <- runGuests(ctx, specs, open, multiConfig{script: writeScript(t, `while true do end`), stdout: &stdout, stderr: &stderr,
			interrupted: func() int { return exitInterrupted }})
	}()
	time.Sleep(300 * time.Millisecond)
	t0 := time.Now()
	cancel()
	select {
	case codes := <-done:
		if fmt.Sprint(codes) != "[130 130]" {
			t.Errorf("statuses %v, want 130 each", codes)
		}
		t.Logf("both states ended %v after the interrupt", time.Since(t0))
	case <-time.After(10 * time.Second):
		t.Fatal("busy loops still ran 10 s after the interrupt")
	}
}
