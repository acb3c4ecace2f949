//go:build guests

package integration

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xascript/xascript/internal/liveguest"
)

// TestGuestLiveQEMUTamper runs the issue-10 example monitors on a live
// Debian 6.1 guest (one boot for all three) while a second xascript run
// tampers with the guest's memory, and checks that each monitor reports
// exactly what was changed, within a bounded time, and nothing during a
// quiet period before:
//   - syscall-watch.lua: one sys_call_table entry (an unused number, so
//     the guest never calls it) set to another kernel function, then back,
//     then to an address outside kernel text, then back: four changes, each
//     naming that entry and what the guest's own /proc/kallsyms has there;
//   - lkm-integrity.lua: every module at the address /proc/modules gives;
//     a module loaded (a legitimate change) is one new fingerprint, not a
//     change; then one byte of a module's text (crc7, code nothing in the
//     guest calls) inverted, then put back: two changes of that byte of that
//     module, the second with the baseline's SHA-256 again;
//   - hidden-modules.lua (one pass, not a polling monitor): a module taken
//     off the `modules` list (list_del through its neighbours) is the only
//     one hidden, after the guest's own /proc/modules stopped listing it;
//     relinked, the guest lists it again and nothing is hidden.
//
// The monitors hold the guest's QMP socket; the tampering runs use the
// second one (CtlSocket). Every change is undone before the subtest ends,
// also when it fails.
func TestGuestLiveQEMUTamper(t *testing.T) {
	bin := xascriptBinary(t)
	t0 := time.Now()
	g := liveguest.Start(t, "../testdata/live-guest.sh")
	t.Logf("guest up in %v", time.Since(t0).Round(time.Millisecond))
	mods, err := g.Modules()
	if err != nil {
		t.Fatal(err)
	}
	if len(mods) < 5 {
		t.Fatalf("the guest lists only %v", mods)
	}
	// One cache for every run: the kernel's profile is derived once.
	tm := &tamperer{bin: bin, g: g, env: cacheEnv(t)}
	t.Run("syscall-watch", tm.syscallWatch)
	t.Run("lkm-integrity", func(t *testing.T) { tm.lkmIntegrity(t, mods) })
	t.Run("hidden-modules", tm.hiddenModules)
	// The guest survived it all and has the modules it had at boot (in
	// another order: the churn reloaded some).
	now, err := g.Modules()
	if slices.Sort(now); err != nil || !slices.Equal(now, slices.Sorted(slices.Values(mods))) {
		t.Errorf("at the end the guest lists %v (%v); at boot %v", now, err, mods)
	}
}

const (
	// monitorInterval is the monitors' polling interval, in seconds.
	monitorInterval = "0.2"
	// quietPeriod: how long a monitor must stay silent after its baseline
	// (many rounds of monitorInterval).
	quietPeriod = 3 * time.Second
	// reportWithin bounds the wait for a monitor's report of a change.
	reportWithin = 20 * time.Second
	// baselineWithin bounds the wait for a monitor's first pass (it
	// locates the kernel and derives its profile first).
	baselineWithin = 90 * time.Second
)

type tamperer struct {
	bin string
	g   *liveguest.Guest
	env []string
}

// tamper runs integration/testdata/tamper/SCRIPT on the guest's second QMP
// socket with writes allowed and returns its one record.
func (tm *tamperer) tamper(t *testing.T, script string, args ...string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	argv := append([]string{"testdata/tamper/" + script, "--qemu", tm.g.CtlSocket, "--allow-write", "--json", "-q", "--"}, args...)
	cmd := exec.CommandContext(ctx, tm.bin, argv...)
	cmd.Env = tm.env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	t0 := time.Now()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("xascript %s: %v\n%s", strings.Join(argv, " "), err, stderr.String())
	}
	recs, err := Records(string(out))
	if err != nil || len(recs) != 1 {
		t.Fatalf("xascript %s printed %q (%v)", strings.Join(argv, " "), out, err)
	}
	t.Logf("%s %s: %v in %v", script, strings.Join(args, " "), recs[0], time.Since(t0).Round(time.Millisecond))
	return recs[0]
}

// monitor is an example monitor running in the background on the guest.
type monitor struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when it has exited and its output is read
	err  error         // its exit, once done

	mu      sync.Mutex
	recs    []map[string]any
	bad     []string // lines that are not JSON records
	stderr  strings.Builder
	changed chan struct{} // signalled on every new record
}

// startMonitor starts scripts/examples/NAME on the guest's QMP socket,
// printing JSON records; it is stopped (by its PID) when the test ends.
func (tm *tamperer) startMonitor(t *testing.T, name string, args ...string) *monitor {
	t.Helper()
	argv := append([]string{"../scripts/examples/" + name, "--qemu", tm.g.Socket, "--json", "-q", "--"}, args...)
	m := &monitor{name: name, cmd: exec.Command(tm.bin, argv...), done: make(chan struct{}), changed: make(chan struct{}, 1)}
	m.cmd.Env = tm.env
	m.cmd.Stderr = &lockedWriter{mu: &m.mu, w: &m.stderr}
	stdout, err := m.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("started %s (pid %d)", strings.Join(argv, " "), m.cmd.Process.Pid)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		for sc.Scan() {
			recs, err := Records(sc.Text())
			m.mu.Lock()
			if err != nil || len(recs) != 1 {
				m.bad = append(m.bad, sc.Text())
			} else {
				m.recs = append(m.recs, recs[0])
			}
			m.mu.Unlock()
			select {
			case m.changed <- struct{}{}:
			default:
			}
		}
		io.Copy(io.Discard, stdout)
		m.err = m.cmd.Wait()
		close(m.done)
	}()
	t.Cleanup(func() { m.stop(t) })
	return m
}

// stop ends the monitor by its PID: SIGINT, then SIGKILL if it has not
// exited 10 s later.
func (m *monitor) stop(t *testing.T) {
	select {
	case <-m.done:
		return
	default:
	}
	m.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
		t.Errorf("%s (pid %d) still ran 10 s after SIGINT: killed", m.name, m.cmd.Process.Pid)
		m.cmd.Process.Kill()
		<-m.done
	}
	var exit *exec.ExitError
	if m.err != nil && !(errors.As(m.err, &exit) && exit.ExitCode() == 130) {
		t.Errorf("%s ended with %v, want status 130 (interrupted)\n%s", m.name, m.err, m.Stderr())
	}
}

// Stderr is what the monitor wrote to its standard error so far.
func (m *monitor) Stderr() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stderr.String()
}

// records returns a copy of the records so far.
func (m *monitor) records(t *testing.T) []map[string]any {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.bad) > 0 {
		t.Fatalf("%s printed lines that are not JSON records: %q", m.name, m.bad)
	}
	return slices.Clone(m.recs)
}

// waitFor waits up to within for ok(records) to hold and returns the
// records then. The monitor ending first, or the time running out, fails
// the test with what it printed.
func (m *monitor) waitFor(t *testing.T, within time.Duration, what string, ok func([]map[string]any) bool) []map[string]any {
	t.Helper()
	t0 := time.Now()
	deadline := time.After(within)
	for {
		recs := m.records(t)
		if ok(recs) {
			t.Logf("%s: %s after %v", m.name, what, time.Since(t0).Round(time.Millisecond))
			return recs
		}
		select {
		case <-m.changed:
		case <-m.done:
			if recs := m.records(t); ok(recs) {
				return recs
			}
			t.Fatalf("%s ended (%v) before %s; it printed %d records, the last %v\n%s", m.name, m.err, what, len(m.recs), last(m.recs), m.Stderr())
		case <-deadline:
			t.Fatalf("%s: no %s within %v; it printed %d records, the last %v\n%s", m.name, what, within, len(recs), last(recs), m.Stderr())
		}
	}
}

// quiet checks that the monitor, still running, prints nothing for d.
func (m *monitor) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	n := len(m.records(t))
	select {
	case <-m.done:
		t.Fatalf("%s ended (%v)\n%s", m.name, m.err, m.Stderr())
	case <-time.After(d):
	}
	if recs := m.records(t); len(recs) != n {
		t.Fatalf("%s reported %v while nothing was changed (a false positive)", m.name, recs[n:])
	}
}

func last(recs []map[string]any) any {
	if len(recs) == 0 {
		return nil
	}
	return recs[len(recs)-1]
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// kallsyms returns the kernel's own symbols (not modules') in the guest's
// /proc/kallsyms at address at and at the address of the symbol named
// name, by address; one pass of the guest's shell (reading kallsyms is
// slow under TCG).
func (tm *tamperer) kallsyms(t *testing.T, at uint64, name string) map[uint64][]string {
	t.Helper()
	cmd := fmt.Sprintf(`a=$(grep ' %s$' /proc/kallsyms | cut -d' ' -f1) && grep -e "^$a " -e '^%016x ' /proc/kallsyms`, name, at)
	out, err := tm.g.Run(cmd, 60*time.Second)
	if err != nil {
		t.Fatalf("the guest's /proc/kallsyms: %v", err)
	}
	syms := map[uint64][]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 { // a module's symbols have a fourth field, [module]
			continue
		}
		a, err := Hex(f[0])
		if err != nil || a == 0 {
			t.Fatalf("the guest's /proc/kallsyms has %q (run as root, kptr_restrict shows real addresses)", line)
		}
		syms[a] = append(syms[a], f[2])
	}
	return syms
}

// syscallWatch: see TestGuestLiveQEMUTamper.
func (tm *tamperer) syscallWatch(t *testing.T) {
	m := tm.startMonitor(t, "syscall-watch.lua", monitorInterval)
	base := m.waitFor(t, baselineWithin, "the whole table", func(recs []map[string]any) bool {
		return len(recs) > 0 && len(recs) == int(num(recs[0]["count"]))
	})
	// The baseline: every entry once, in order, and the victim: the last
	// unused number (it leads to sys_ni_syscall), which the guest never calls.
	victim, orig := -1, ""
	for i, r := range base {
		if r["event"] != "entry" || int(num(r["nr"])) != i {
			t.Fatalf("baseline record %d: %v", i, r)
		}
		if s, _ := r["symbol"].(string); strings.Contains(s, "ni_syscall+0x0") {
			victim, orig = i, r["address"].(string)
		}
	}
	if victim < 0 {
		t.Fatalf("no entry of %d leads to sys_ni_syscall", len(base))
	}
	origAddr, _ := Hex(orig)
	// What the monitor must say for each write, from the guest's kallsyms.
	fn := "__x64_sys_getppid"
	syms := tm.kallsyms(t, origAddr, fn)
	origNames := syms[origAddr]
	var fnAddr uint64
	for a, names := range syms {
		if slices.Contains(names, fn) {
			fnAddr = a
		}
	}
	fnNames := syms[fnAddr]
	if fnAddr == 0 || fnAddr == origAddr {
		t.Fatalf("the guest's /proc/kallsyms has %s at %#x; the entry leads to %#x", fn, fnAddr, origAddr)
	}
	if sym, _ := base[victim]["symbol"].(string); !inNames(sym, origNames) ||
		!slices.ContainsFunc(origNames, func(s string) bool { return strings.HasSuffix(s, "sys_ni_syscall") }) {
		t.Fatalf("entry %d leads to %s, where the guest's /proc/kallsyms has %v", victim, orig, origNames)
	}
	t.Logf("%d entries; entry %d (%s, %v) is the one tampered with", len(base), victim, orig, base[victim]["symbol"])
	m.quiet(t, quietPeriod)

	nr := fmt.Sprint(victim)
	restored := false
	t.Cleanup(func() {
		if !restored {
			tm.tamper(t, "syscall.lua", nr, orig)
		}
	})
	const outside = "0x41414000" // a user-space address
	steps := []struct {
		value string
		want  func(sym string) bool
		desc  string
	}{
		{fn, func(s string) bool { return inNames(s, fnNames) }, fmt.Sprintf("one of %v +0x0", fnNames)},
		{orig, func(s string) bool { return inNames(s, origNames) }, fmt.Sprintf("one of %v +0x0", origNames)},
		{outside, func(s string) bool { return s == "outside kernel text" }, "outside kernel text"},
		{orig, func(s string) bool { return inNames(s, origNames) }, fmt.Sprintf("one of %v +0x0", origNames)},
	}
	for i, st := range steps {
		w := tm.tamper(t, "syscall.lua", nr, st.value)
		restored = st.value == orig
		want, _ := Hex(w["new"].(string))
		if w["nr"] != float64(victim) || (st.value != fn && want != mustHex(t, st.value)) || (st.value == fn && want != fnAddr) {
			t.Fatalf("syscall.lua %s %s wrote %v", nr, st.value, w)
		}
		n := len(base) + i + 1
		recs := m.waitFor(t, reportWithin, fmt.Sprintf("change %d (entry %d to %s)", i+1, victim, st.value), func(recs []map[string]any) bool { return len(recs) >= n })
		r := recs[n-1]
		sym, _ := r["symbol"].(string)
		a, _ := Hex(fmt.Sprint(r["address"]))
		if len(recs) != n || r["event"] != "changed" || r["nr"] != float64(victim) || a != want || !st.want(sym) {
			t.Fatalf("after setting entry %d to %s (%#x) the monitor reported %v; want one change: entry %d, %#x, %s", victim, st.value, want, recs[len(base)+i:], victim, want, st.desc)
		}
	}
	m.quiet(t, time.Second)
	if recs := m.records(t); len(recs) != len(base)+len(steps) {
		t.Fatalf("%d records after the 4 changes, want %d", len(recs), len(base)+len(steps))
	}
}

// inNames: sym is "NAME+0x0" for one of names.
func inNames(sym string, names []string) bool {
	name, ok := strings.CutSuffix(sym, "+0x0")
	return ok && slices.Contains(names, name)
}

func mustHex(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := Hex(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func num(v any) float64 { f, _ := v.(float64); return f }

// lkmIntegrity: see TestGuestLiveQEMUTamper.
func (tm *tamperer) lkmIntegrity(t *testing.T, mods []string) {
	m := tm.startMonitor(t, "lkm-integrity.lua", monitorInterval)
	base := m.waitFor(t, baselineWithin, "a hash of every module", func(recs []map[string]any) bool { return len(recs) >= len(mods) })
	where := tm.procModules(t)
	check := func(r map[string]any) {
		t.Helper()
		a, _ := Hex(fmt.Sprint(r["base"]))
		w, ok := where[fmt.Sprint(r["module"])]
		if r["event"] != "hash" || !ok || a != w.addr || num(r["size"]) <= 0x20 || uint64(num(r["size"])) > w.size {
			t.Errorf("%v: the guest's /proc/modules has %s at %#x, %d bytes", r, r["module"], w.addr, w.size)
		}
	}
	var names []string
	var victim map[string]any
	for _, r := range base {
		names = append(names, fmt.Sprint(r["module"]))
		check(r)
		if r["module"] == "crc7" {
			victim = r
		}
	}
	if !slices.Equal(names, mods) {
		t.Fatalf("lkm-integrity.lua hashed %v; the guest lists %v", names, mods)
	}
	if victim == nil {
		t.Fatal("the guest has no crc7 loaded")
	}
	m.quiet(t, quietPeriod)

	at := fmt.Sprintf("%#x", mustHex(t, victim["base"].(string))+0x10)
	flipped := false
	t.Cleanup(func() {
		if flipped {
			tm.tamper(t, "flip-byte.lua", at)
		}
	})
	for i := range 2 {
		w := tm.tamper(t, "flip-byte.lua", at)
		flipped = !flipped
		if int(num(w["new"])) != int(num(w["old"]))^0xff {
			t.Fatalf("flip-byte.lua %s: %v", at, w)
		}
		n := len(base) + i + 1
		recs := m.waitFor(t, reportWithin, fmt.Sprintf("change %d (the byte at %s)", i+1, at), func(recs []map[string]any) bool { return len(recs) >= n })
		r := recs[n-1]
		from, _ := Hex(fmt.Sprint(r["from"]))
		to, _ := Hex(fmt.Sprint(r["to"]))
		if len(recs) != n || r["event"] != "changed" || r["module"] != "crc7" || from != mustHex(t, at) || to != from+1 {
			t.Fatalf("after flipping the byte at %s of crc7 the monitor reported %v; want one change of crc7 [%s, +1)", at, recs[len(base)+i:], at)
		}
		if restoredSum := r["sha256"] == victim["sha256"]; restoredSum != (i == 1) {
			t.Errorf("change %d: sha256 %v, the baseline's %v", i+1, r["sha256"], victim["sha256"])
		}
	}
	m.quiet(t, time.Second)
	base = m.records(t)

	// Legitimate changes are no changes: a module loaded is a new
	// fingerprint; unloaded, nothing; then modules unloaded and loaded
	// again in a tight loop for a few seconds (churn-guest.sh: nlmon dummy
	// isofs crc7, and romfs loaded and unloaded) are new fingerprints when
	// they come back elsewhere, and nothing when at the same address.
	if out, err := tm.g.Run("insmod /lib/modules/"+liveguest.HeldModule+".ko", 60*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Cleanup(func() { // a failure before the rmmod below
		tm.g.Run(fmt.Sprintf("if grep -q '^%[1]s ' /proc/modules; then rmmod %[1]s; fi", liveguest.HeldModule), 60*time.Second)
	})
	where = tm.procModules(t)
	recs := m.waitFor(t, reportWithin, "the hash of "+liveguest.HeldModule, func(recs []map[string]any) bool { return len(recs) > len(base) })
	if r := recs[len(base)]; len(recs) != len(base)+1 || r["module"] != liveguest.HeldModule {
		t.Fatalf("after insmod %s the monitor reported %v", liveguest.HeldModule, recs[len(base):])
	}
	check(recs[len(base)])
	if out, err := tm.g.Run("rmmod "+liveguest.HeldModule, 60*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	m.quiet(t, time.Second)
	out, err := tm.g.Run("xa-churn 5", 2*time.Minute)
	if err != nil || !strings.Contains(out, "XA-CHURN-DONE") || !strings.Contains(out, "modfail=0") {
		t.Fatalf("xa-churn 5: %v\n%s", err, out)
	}
	t.Logf("the guest's churn: %s", strings.TrimSpace(out))
	m.quiet(t, time.Second)
	recs = m.records(t)
	churned := []string{"nlmon", "dummy", "isofs", "crc7", liveguest.HeldModule}
	for _, r := range recs[len(base)+1:] {
		if r["event"] != "hash" || !slices.Contains(churned, fmt.Sprint(r["module"])) {
			t.Errorf("during the churn the monitor reported %v; only new fingerprints of %v may come", r, churned)
		}
	}
	t.Logf("%d new fingerprints during the churn", len(recs)-len(base)-1)
	// What the monitor saw last of each module is where the guest has it now.
	where = tm.procModules(t)
	lastBase := map[string]uint64{}
	for _, r := range recs {
		if r["event"] == "hash" {
			lastBase[fmt.Sprint(r["module"])], _ = Hex(fmt.Sprint(r["base"]))
		}
	}
	for name, w := range where {
		if lastBase[name] != w.addr {
			t.Errorf("the guest's /proc/modules has %s at %#x, the monitor last fingerprinted it at %#x", name, w.addr, lastBase[name])
		}
	}
}

type procModule struct{ addr, size uint64 }

// procModules returns the address and size the guest's /proc/modules gives
// each module.
func (tm *tamperer) procModules(t *testing.T) map[string]procModule {
	t.Helper()
	out, err := tm.g.Run("cat /proc/modules", 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	mods := map[string]procModule{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		// NAME SIZE REFS DEPS STATE ADDRESS
		f := strings.Fields(line)
		if len(f) != 6 {
			t.Fatalf("the guest's /proc/modules has %q", line)
		}
		a, err1 := Hex(f[5])
		size, err2 := strconv.ParseUint(f[1], 10, 64)
		if err1 != nil || err2 != nil || a == 0 {
			t.Fatalf("the guest's /proc/modules has %q", line)
		}
		mods[f[0]] = procModule{a, size}
	}
	return mods
}

// hiddenModules: see TestGuestLiveQEMUTamper.
func (tm *tamperer) hiddenModules(t *testing.T) {
	mods, err := tm.g.Modules()
	if err != nil {
		t.Fatal(err)
	}
	run := func() string {
		t.Helper()
		argv := []string{"../scripts/examples/hidden-modules.lua", "--qemu", tm.g.Socket, "--json", "-q"}
		out, errOut, code := runStatusEnv(t, tm.env, tm.bin, argv...)
		if code != 0 {
			t.Fatalf("hidden-modules.lua: status %d\n%s", code, errOut)
		}
		recs, err := Records(out)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, r := range recs {
			lines = append(lines, fmt.Sprintf("%v hidden=%v list=%v mod_tree=%v kset=%v", r["name"], r["hidden"], r["list"], r["mod_tree"], r["kset"]))
		}
		return strings.Join(lines, "\n")
	}
	want := func(hidden string) string {
		var lines []string
		for _, m := range mods {
			if m != hidden {
				lines = append(lines, m+" hidden=false list=true mod_tree=true kset=true")
			}
		}
		if hidden != "" {
			lines = append(lines, hidden+" hidden=true list=false mod_tree=true kset=true")
		}
		return strings.Join(lines, "\n")
	}
	if got := run(); got != want("") {
		t.Fatalf("hidden-modules.lua:\n%s\nwant (the guest's /proc/modules):\n%s", got, want(""))
	}
	victim := "dummy"
	if !slices.Contains(mods, victim) {
		t.Fatalf("the guest has no %s loaded: %v", victim, mods)
	}
	w := tm.tamper(t, "module-list.lua", "unlink", victim)
	node := w["node"].(string)
	linked := false
	t.Cleanup(func() {
		if !linked {
			tm.tamper(t, "module-list.lua", "relink", node)
		}
	})
	if now, err := tm.g.Modules(); err != nil || slices.Contains(now, victim) || len(now) != len(mods)-1 {
		t.Fatalf("with %s unlinked the guest's /proc/modules lists %v (%v)", victim, now, err)
	}
	if got := run(); got != want(victim) {
		t.Fatalf("with %s unlinked hidden-modules.lua printed:\n%s\nwant:\n%s", victim, got, want(victim))
	}
	tm.tamper(t, "module-list.lua", "relink", node)
	linked = true
	if now, err := tm.g.Modules(); err != nil || !slices.Equal(now, mods) {
		t.Fatalf("relinked, the guest lists %v (%v); want %v", now, err, mods)
	}
	if got := run(); got != want("") {
		t.Fatalf("relinked, hidden-modules.lua printed:\n%s\nwant:\n%s", got, want(""))
	}
}

// runStatusEnv runs xascript with env and returns its output and exit
// status; a run of over five minutes is killed.
func runStatusEnv(t *testing.T, env []string, bin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	t0 := time.Now()
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("xascript %s: %v", strings.Join(args, " "), err)
	}
	t.Logf("xascript %s: status %d, %v", strings.Join(args, " "), code, time.Since(t0).Round(time.Millisecond))
	return stdout.String(), stderr.String(), code
}
