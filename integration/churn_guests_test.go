//go:build guests

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xascript/xascript/internal/liveguest"
)

// TestLiveQEMUChurn runs long-lived monitors on one live guest whose
// state changes under them:
//
//   - root outlives its task: xascript attaches while a busy process is the
//     one running (so the vCPU's CR3 is its page tables), the process exits
//     and its memory is reused, and the module list the monitor still reads
//     equals the guest's /proc/modules; the root it reports is
//     init_top_pgt's physical address.
//   - load and churn: for XA_CHURN_SECONDS (default 300) the guest unloads
//     and reloads modules and forks and kills processes in a tight loop
//     (testdata/churn-guest.sh) while, at the same time, an unpaused monitor
//     walks the module and task lists every 100 ms (testdata/churn/unpaused.lua)
//     and modwatch.lua and ps.lua run one after the other with --pause. No
//     crash or hang; every unpaused error is one line the script handled;
//     every --pause snapshot is consistent (its list walks end at the head);
//     the unpaused monitor's RSS stays within 10% after the first minute.
func TestLiveQEMUChurn(t *testing.T) {
	bin := xascriptBinary(t)
	g := liveguest.Start(t, "../testdata/live-guest.sh")
	cache := t.TempDir() // every run of this test shares one profile cache, and no other test's
	t.Run("command port", func(t *testing.T) { testCommandPort(t, g) })
	t.Run("root outlives its task", func(t *testing.T) { testRootOutlivesTask(t, bin, cache, g) })
	t.Run("load and churn", func(t *testing.T) { testChurn(t, bin, cache, g) })
}

// xascriptCmd is bin with args, its cache in cacheDir, quiet.
func xascriptCmd(ctx context.Context, bin, cacheDir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, append([]string{"-q"}, args...)...)
	cmd.Env = append(os.Environ(), "XASCRIPT_CACHE_DIR="+cacheDir)
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// waitFile waits until path exists, failing when done reports first (the
// process ended) or after timeout.
func waitFile(t *testing.T, path string, done <-chan error, timeout time.Duration, stderr fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("xascript ended before %s existed: %v\n%s", filepath.Base(path), err, stderr)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %v\n%s", filepath.Base(path), timeout, stderr)
		}
	}
}

// waitDone waits for a process's end, failing after timeout.
func waitDone(t *testing.T, what string, done <-chan error, timeout time.Duration, stderr fmt.Stringer) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		t.Fatalf("%s still ran %v after it was told to stop\n%s", what, timeout, stderr)
		return nil
	}
}

// hexField parses "0x..." as a uint64.
func hexField(t *testing.T, what, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
	if err != nil {
		t.Fatalf("%s %q: %v", what, s, err)
	}
	return v
}

// testCommandPort: the guest's command port reads every line whole while
// orphaned background processes (the churn, the busy process) end, as the
// suites below need. Each command leaves a sleeper that pid 1 inherits and
// that ends while the next, long line is being read.
func testCommandPort(t *testing.T, g *liveguest.Guest) {
	long := strings.Repeat("0123456789abcdef", 64)
	for i := 0; i < 40; i++ {
		out, err := g.Run(fmt.Sprintf("(sleep 0.0%d &); echo %d-%s", i%10, i, long), time.Minute)
		if err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
		if want := fmt.Sprintf("%d-%s\n", i, long); out != want {
			t.Fatalf("command %d printed %q, want %q", i, out, want)
		}
	}
}

func testRootOutlivesTask(t *testing.T, bin, cache string, g *liveguest.Guest) {
	// A process that only computes: while it runs, the vCPU's CR3 is its
	// page tables (the idle task keeps the last one too).
	out, err := g.Run("sh -c 'while :; do :; done' </dev/null >/dev/null 2>&1 & echo $!", 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	busy, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("busy process: pid %q", out)
	}
	killed := false
	defer func() {
		if !killed {
			g.Run(fmt.Sprintf("kill %d", busy), 30*time.Second)
		}
	}()
	time.Sleep(500 * time.Millisecond)

	dir := t.TempDir()
	ready, stop := filepath.Join(dir, "ready"), filepath.Join(dir, "stop")
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := xascriptCmd(ctx, bin, cache, "testdata/churn/root.lua", "--qemu", g.Socket, ready, stop)
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer cmd.Process.Kill()
	waitFile(t, ready, done, 4*time.Minute, &stderr)

	// The task whose page tables were the CPU's root exits; memory is
	// filled and page tables made and freed (init_on_free zeroes what is
	// freed); the module list changes order.
	if _, err := g.Run(fmt.Sprintf("kill %d", busy), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	killed = true
	churn := "dd if=/dev/zero of=/dev/null bs=32M count=2 2>/dev/null; i=0; while [ $i -lt 40 ]; do sleep 1 & i=$((i+1)); done; wait; " +
		"rmmod nlmon && insmod /lib/modules/nlmon.ko"
	if out, err := g.Run(churn, 3*time.Minute); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	time.Sleep(time.Second) // a few more rounds
	if err := os.WriteFile(stop, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := waitDone(t, "root.lua", done, time.Minute, &stderr); err != nil {
		t.Fatalf("root.lua: %v\n%s\n%s", err, stderr.String(), stdout.String())
	}
	want, err := g.Modules()
	if err != nil {
		t.Fatal(err)
	}

	var got []string
	var root, source, textPhys, rounds string
	pgds := map[uint64][]string{} // physical pgd -> "pid comm"
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		f := strings.Split(line, "\t")
		switch {
		case f[0] == "MOD" && len(f) == 2:
			got = append(got, f[1])
		case f[0] == "ROOT" && len(f) == 4:
			root, source, textPhys = f[1], f[2], f[3]
		case f[0] == "TASK" && len(f) == 4 && strings.HasPrefix(f[3], "0x"):
			pa := hexField(t, "pgd", f[3])
			pgds[pa] = append(pgds[pa], f[1]+" "+f[2])
		case f[0] == "ROUNDS" || f[0] == "FAULT":
			rounds += line + "; "
		}
	}
	t.Logf("root %s from %s; %s", root, source, rounds)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("after the CPU's task exited, the monitor read modules %v; the guest's /proc/modules lists %v", got, want)
	}

	// The root is init_top_pgt's physical address, and the CPU's CR3 it
	// was checked against was the busy task's page tables.
	syms, err := g.Run("grep -E ' (_text|init_top_pgt)$' /proc/kallsyms; grep 'Kernel code' /proc/iomem", 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	va := map[string]uint64{}
	var codePhys uint64
	for _, line := range strings.Split(syms, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 3:
			va[f[2]] = hexField(t, f[2], f[0])
		case len(f) >= 2 && strings.HasSuffix(line, ": Kernel code"):
			start, _, _ := strings.Cut(f[0], "-")
			codePhys = hexField(t, "Kernel code", start)
		}
	}
	if va["_text"] == 0 || va["init_top_pgt"] == 0 || codePhys == 0 {
		t.Fatalf("the guest's kallsyms and iomem lack _text, init_top_pgt or Kernel code:\n%s", syms)
	}
	if tp := hexField(t, "text_phys", textPhys); tp != codePhys {
		t.Errorf("text_phys %#x; the guest's /proc/iomem has Kernel code at %#x", tp, codePhys)
	}
	wantRoot := codePhys + va["init_top_pgt"] - va["_text"]
	if r := hexField(t, "root", root); r != wantRoot {
		t.Errorf("root %#x from %s; init_top_pgt is at physical %#x", r, source, wantRoot)
	}
	m := regexp.MustCompile(`^init_top_pgt \(checked against the CPU's CR3 (0x[0-9a-f]+)\)$`).FindStringSubmatch(source)
	if m == nil {
		t.Fatalf("root source %q does not name init_top_pgt and the CPU's CR3", source)
	}
	cr3 := hexField(t, "CR3", m[1]) & 0x000f_ffff_ffff_f000
	if cr3 == wantRoot {
		t.Fatalf("the CPU's CR3 at attach was init_top_pgt itself, not a task's: the test proves nothing")
	}
	owners := pgds[cr3]
	if len(owners) != 1 || !strings.HasPrefix(owners[0], fmt.Sprint(busy)+" ") {
		t.Errorf("the CPU's CR3 %#x was the page tables of %v, want the busy process %d", cr3, owners, busy)
	}

	// Attached afresh, whatever task runs, `info` reports the same root.
	for i := 0; i < 3; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		out, err := xascriptCmd(ctx, bin, cache, "info", "--json", "--qemu", g.Socket).Output()
		cancel()
		if err != nil {
			t.Fatalf("xascript info: %v", err)
		}
		var info struct {
			Root       string `json:"page_table_root"`
			RootSource string `json:"root_source"`
		}
		if err := json.Unmarshal(out, &info); err != nil {
			t.Fatalf("xascript info --json: %v\n%s", err, out)
		}
		if hexField(t, "page_table_root", info.Root) != wantRoot || !strings.HasPrefix(info.RootSource, "init_top_pgt (checked against the CPU's CR3 ") {
			t.Errorf("xascript info: root %s from %s; init_top_pgt is at physical %#x", info.Root, info.RootSource, wantRoot)
		}
	}
}

// churnSeconds is $XA_CHURN_SECONDS, 300 when unset.
func churnSeconds(t *testing.T) int {
	s := os.Getenv("XA_CHURN_SECONDS")
	if s == "" {
		return 300
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 10 {
		t.Fatalf("XA_CHURN_SECONDS=%q: want a number of seconds >= 10", s)
	}
	return n
}

// rssSample is one reading of a process's resident set.
type rssSample struct {
	at time.Duration
	kB int
}

// vmRSS reads VmRSS (kB) from /proc/PID/status.
func vmRSS(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmRSS", pid)
}

// pausedRun is one --pause run of an example script.
type pausedRun struct {
	script string
	err    error
	out    string
	maxKB  int64
	took   time.Duration
}

func testChurn(t *testing.T, bin, cache string, g *liveguest.Guest) {
	secs := churnSeconds(t)
	dur := time.Duration(secs) * time.Second
	warmup := min(time.Minute, dur/2)
	dir := t.TempDir()
	stop := filepath.Join(dir, "stop")

	// The unpaused monitor, one process for the whole run, on the QMP
	// socket; the --pause runs take the control socket in turn.
	ctx, cancel := context.WithTimeout(context.Background(), dur+6*time.Minute)
	defer cancel()
	mon := xascriptCmd(ctx, bin, cache, "testdata/churn/unpaused.lua", "--qemu", g.Socket, stop, "0.1")
	var monOut, monErr syncBuffer
	mon.Stdout, mon.Stderr = &monOut, &monErr
	if err := mon.Start(); err != nil {
		t.Fatal(err)
	}
	monDone := make(chan error, 1)
	go func() { monDone <- mon.Wait() }()
	defer mon.Process.Kill()

	if out, err := g.Run(fmt.Sprintf("xa-churn %d >/tmp/churn.log 2>&1 </dev/null &", secs), time.Minute); err != nil {
		t.Fatalf("start the churn: %v\n%s", err, out)
	}
	start := time.Now()
	end := start.Add(dur)

	// RSS of the unpaused monitor every 5 s.
	var rss []rssSample
	var wg sync.WaitGroup
	stopSampling := make(chan struct{})
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stopSampling) }) }
	defer halt() // also when the test fails early
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-tick.C:
				if kB, err := vmRSS(mon.Process.Pid); err == nil {
					rss = append(rss, rssSample{time.Since(start), kB})
				}
			}
		}
	}()

	// modwatch.lua (one round) and ps.lua with --pause, one after the
	// other every 100 ms until the churn ends.
	var runs []pausedRun
	wg.Add(1)
	go func() {
		defer wg.Done()
		scripts := [][]string{{"../scripts/examples/modwatch.lua", "0", "1"}, {"../scripts/examples/ps.lua"}}
		for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
			s := scripts[i%2]
			rctx, rcancel := context.WithTimeout(ctx, 2*time.Minute)
			args := append([]string{s[0], "--pause", "--json", "--qemu", g.CtlSocket}, s[1:]...)
			cmd := xascriptCmd(rctx, bin, cache, args...)
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			t0 := time.Now()
			err := cmd.Run()
			rcancel()
			r := pausedRun{script: filepath.Base(s[0]), err: err, out: out.String(), took: time.Since(t0)}
			if err != nil {
				r.out += "\nstderr: " + errb.String()
			}
			if cmd.ProcessState != nil {
				if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
					r.maxKB = ru.Maxrss
				}
			}
			runs = append(runs, r)
			time.Sleep(100 * time.Millisecond)
		}
	}()

	// The churn ends by itself after secs; wait for its last line.
	var churnLog string
	for deadline := end.Add(3 * time.Minute); ; {
		time.Sleep(max(time.Until(end), 5*time.Second))
		out, err := g.Run("cat /tmp/churn.log", time.Minute)
		if err == nil && strings.Contains(out, "XA-CHURN-DONE") {
			churnLog = strings.TrimSpace(out)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the guest's churn did not finish (%v, log %q)", err, out)
		}
	}
	halt()
	wg.Wait()
	want, err := g.Modules()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stop, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	monExit := waitDone(t, "unpaused.lua", monDone, 2*time.Minute, &monErr)

	// The guest's own loop worked.
	t.Logf("guest: %s", churnLog)
	if m := regexp.MustCompile(`iterations=(\d+) .*modfail=(\d+)`).FindStringSubmatch(churnLog); m == nil || m[1] == "0" || m[2] != "0" {
		t.Errorf("the guest's churn loop did not run cleanly: %q", churnLog)
	}

	// The unpaused monitor: ran to the end, every line one of its own,
	// the final module list the guest's.
	if monExit != nil {
		t.Errorf("unpaused.lua: %v\n%s", monExit, monErr.String())
	}
	for _, bad := range []string{"panic", "internal error", "goroutine "} {
		if strings.Contains(monErr.String(), bad) {
			t.Errorf("unpaused.lua's stderr mentions %q:\n%s", bad, monErr.String())
		}
	}
	var final []string
	errs := map[string]int{}
	rounds, nerr, changes := -1, 0, 0
	hexRe := regexp.MustCompile(`0x[0-9a-f]+`)
	numRe := regexp.MustCompile(`\b\d+\b`)
	for _, line := range strings.Split(strings.TrimRight(monOut.String(), "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "+ ") || strings.HasPrefix(line, "- "):
			changes++
		case strings.HasPrefix(line, "FINAL "):
			final = append(final, strings.TrimPrefix(line, "FINAL "))
		case strings.HasPrefix(line, "ERR "):
			nerr++
			errs[numRe.ReplaceAllString(hexRe.ReplaceAllString(strings.TrimPrefix(line, "ERR "), "0x…"), "N")]++
		case strings.HasPrefix(line, "ROUNDS "):
			var e int
			if _, err := fmt.Sscanf(line, "ROUNDS %d ERRORS %d", &rounds, &e); err != nil || e != nerr {
				t.Errorf("summary %q: %d ERR lines", line, nerr)
			}
		default:
			t.Errorf("unpaused.lua printed a line that is none of its own (an error of more than one line?): %q", line)
		}
	}
	t.Logf("unpaused monitor: %d rounds in %v, %d module changes seen, %d errors, all returned as nil, err:", rounds, dur, changes, nerr)
	msgs := make([]string, 0, len(errs))
	for m := range errs {
		msgs = append(msgs, m)
	}
	slices.SortFunc(msgs, func(a, b string) int { return errs[b] - errs[a] })
	for _, m := range msgs {
		t.Logf("  %5d × %s", errs[m], m)
	}
	if rounds < secs {
		t.Errorf("unpaused.lua did %d rounds in %d s: fewer than one a second", rounds, secs)
	}
	if strings.Join(final, ",") != strings.Join(want, ",") {
		t.Errorf("after the churn the unpaused monitor read modules %v; the guest's /proc/modules lists %v", final, want)
	}

	// RSS flat within 10% after the warm-up.
	var series []string
	var base int
	for _, s := range rss {
		series = append(series, fmt.Sprintf("%ds:%d", int(s.at.Seconds()), s.kB/1024))
		if s.at < warmup {
			continue
		}
		if base == 0 {
			base = s.kB
		} else if s.kB > base*11/10 || s.kB < base*9/10 {
			t.Errorf("RSS %d kB at %v is not within 10%% of %d kB (the first after %v)", s.kB, s.at.Round(time.Second), base, warmup)
		}
	}
	t.Logf("unpaused monitor RSS (s:MiB): %s", strings.Join(series, " "))
	if base == 0 {
		t.Errorf("no RSS sample after the %v warm-up", warmup)
	}

	// Every --pause snapshot consistent: the script ended well (its walks
	// reached the head) and printed what a whole list holds.
	var maxKB []int64
	var took time.Duration
	bad := 0
	for _, r := range runs {
		maxKB, took = append(maxKB, r.maxKB), took+r.took
		if why := checkSnapshot(r); why != "" {
			if bad++; bad <= 5 {
				t.Errorf("--pause %s: %s\n%s", r.script, why, r.out)
			}
		}
	}
	if len(runs) < 2 {
		t.Fatalf("only %d --pause runs", len(runs))
	}
	slices.Sort(maxKB)
	t.Logf("--pause runs: %d (%d inconsistent or failed), %v each on average; peak RSS min %d, median %d, max %d kB",
		len(runs), bad, (took / time.Duration(len(runs))).Round(time.Millisecond), maxKB[0], maxKB[len(maxKB)/2], maxKB[len(maxKB)-1])
}

// checkSnapshot says what is wrong with a --pause run, "" when nothing: it
// must succeed, and a snapshot must hold the modules the churn leaves alone
// (modwatch.lua) or the idle task first and init (ps.lua).
func checkSnapshot(r pausedRun) string {
	if r.err != nil {
		return r.err.Error()
	}
	recs, err := Records(r.out)
	if err != nil {
		return err.Error()
	}
	if len(recs) == 0 {
		return "no records"
	}
	switch r.script {
	case "modwatch.lua":
		var loaded []string
		for _, rec := range recs {
			if rec["event"] != "loaded" {
				return fmt.Sprintf("record %v is not a loaded module", rec)
			}
			name, _ := rec["module"].(string)
			loaded = append(loaded, name)
		}
		for _, m := range []string{"ifb", "veth", "tun", "loop", "crc_itu_t"} {
			if !slices.Contains(loaded, m) {
				return "no module " + m
			}
		}
	case "ps.lua":
		if recs[0]["pid"] != 0.0 || recs[0]["comm"] != "swapper/0" {
			return fmt.Sprintf("first task %v, want the idle task", recs[0])
		}
		if !slices.ContainsFunc(recs, func(rec map[string]any) bool { return rec["pid"] == 1.0 && rec["comm"] == "init" }) {
			return "no pid 1"
		}
	}
	return ""
}

// syncBuffer is a bytes.Buffer safe for a process's writes and the test's
// reads at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
