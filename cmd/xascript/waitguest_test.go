package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xascript/xascript/bindings"
	"github.com/xascript/xascript/runtime"
	"github.com/xascript/xascript/vmi/xen"
)

// With --nbd, a QMP socket that never appears is waited for up to the
// limit, then reported with the last error; an interrupt ends the wait at
// once; without --nbd nothing is waited for.
func TestOpenGuestForDiskWaits(t *testing.T) {
	every := guestRetryEvery
	t.Cleanup(func() { guestRetryEvery = every })
	guestRetryEvery = 50 * time.Millisecond
	limit := 600 * time.Millisecond
	missing := filepath.Join(t.TempDir(), "qmp.sock")

	var stderr strings.Builder
	start := time.Now()
	_, err := openGuestForDisk(context.Background(), &options{qemu: missing, nbd: "nbd.sock", disk: "d.img", waitGuest: limit}, &stderr)
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "waited") || !strings.Contains(err.Error(), missing) {
		t.Fatalf("err = %v", err)
	}
	if took < limit || took > limit+5*time.Second {
		t.Errorf("gave up after %v, limit %v", took, limit)
	}
	if !strings.Contains(stderr.String(), "waiting for the guest behind "+missing) {
		t.Errorf("stderr %q does not say what it waits for", stderr.String())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = openGuestForDisk(ctx, &options{qemu: missing, nbd: "nbd.sock", disk: "d.img", quiet: true, waitGuest: time.Minute}, &stderr)
	if err == nil || !strings.Contains(err.Error(), "interrupted") || time.Since(start) > 10*time.Second {
		t.Fatalf("interrupted wait: %v after %v", err, time.Since(start))
	}

	start = time.Now()
	_, err = openGuestForDisk(context.Background(), &options{qemu: missing, waitGuest: time.Minute}, &stderr)
	if err == nil || strings.Contains(err.Error(), "waited") || time.Since(start) > 10*time.Second {
		t.Fatalf("without --nbd: %v after %v", err, time.Since(start))
	}
}

// snapshotWriter records, with each line written to it (stderr), what the
// script's stdout held at that moment.
type snapshotWriter struct {
	stdout *strings.Builder
	lines  []string
	seen   []string
}

func (s *snapshotWriter) Write(p []byte) (int, error) {
	s.lines = append(s.lines, string(p))
	s.seen = append(s.seen, s.stdout.String())
	return len(p), nil
}

// A --dom guest whose disk xascript serves starts after xascript: the
// script runs at once, and its first memory access waits (here: two
// attempts find no domain, the third opens the committed guest image) and
// then reads what the guest holds. What the script printed before reached
// stdout before the wait was announced; the wait and its end are on stderr.
func TestWaitingGuestWaitsForDomain(t *testing.T) {
	every := guestRetryEvery
	t.Cleanup(func() { guestRetryEvery = every })
	guestRetryEvery = 20 * time.Millisecond
	img := imagePath(t, "mem.elf.zst")
	cache := t.TempDir()

	direct, err := openGuest(&options{file: img, cacheDir: cache, quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	wantBanner := direct.kernel.Describe().Banner
	direct.Close()

	o := &options{dom: "xa-disk", disk: "/tmp/disk.img", nbdDevice: "/dev/nbd0", waitGuest: time.Minute}
	calls := 0
	open := func(got *options) (*guest, error) {
		calls++
		if calls < 3 {
			return nil, fmt.Errorf("domain %q: %w (domains: Domain-0)", got.dom, xen.ErrNoDomain)
		}
		return openGuest(&options{file: img, cacheDir: cache, quiet: true})
	}
	var stdout strings.Builder
	stderr := &snapshotWriter{stdout: &stdout}
	env := &bindings.Env{Ctx: context.Background()}
	w := &waitingGuest{ctx: context.Background(), o: o, stderr: stderr, open: open, beforeWait: env.BlockingPoint}
	defer w.Close()
	env.Guest = w
	rt := runtime.New(runtime.Config{Stdout: &stdout, Env: env})
	defer rt.Close()
	if calls != 0 {
		t.Fatalf("the guest was opened %d times before the script asked", calls)
	}
	src := `print("before") print(guest_info().banner) print(read_u32(symbol("init_task")) ~= nil)`
	if err := rt.RunString(src, "wait.lua", nil); err != nil {
		t.Fatal(err)
	}
	rt.Flush()
	if want := "before\n" + wantBanner + "\ntrue\n"; stdout.String() != want {
		t.Errorf("stdout %q, want %q", stdout.String(), want)
	}
	if calls != 3 {
		t.Errorf("%d attempts, want 3", calls)
	}
	if len(stderr.lines) != 2 || !strings.HasPrefix(stderr.lines[0], "xascript: waiting up to 1m0s for domain xa-disk to run (serving /tmp/disk.img meanwhile): ") ||
		!strings.Contains(stderr.lines[0], "no such domain") || !strings.HasPrefix(stderr.lines[1], "xascript: domain xa-disk runs: kernel found after ") {
		t.Fatalf("stderr %q", stderr.lines)
	}
	if stderr.seen[0] != "before\n" {
		t.Errorf("when the wait began stdout held %q, want the line printed before it", stderr.seen[0])
	}
}

// The wait ends: at the limit (with the last reason, and every later access
// fails with it at once), on an interrupt, and at once on what no wait
// cures (not root, no privcmd: xen.ErrNoAccess) or with --wait-guest 0.
func TestWaitingGuestGivesUp(t *testing.T) {
	every := guestRetryEvery
	t.Cleanup(func() { guestRetryEvery = every })
	guestRetryEvery = 20 * time.Millisecond
	noDomain := fmt.Errorf("domain %q: %w", "xa-disk", xen.ErrNoDomain)
	for _, c := range []struct {
		name     string
		wait     time.Duration
		cause    error
		cancel   bool
		want     string
		maxCalls int
	}{
		{name: "limit", wait: 300 * time.Millisecond, cause: noDomain, want: "waited 300ms for domain xa-disk to run: domain \"xa-disk\": no such domain", maxCalls: 100},
		{name: "interrupt", wait: time.Minute, cause: noDomain, cancel: true, want: "interrupted while waiting for domain xa-disk to run", maxCalls: 100},
		{name: "no-access", wait: time.Minute, cause: fmt.Errorf("open /dev/xen/privcmd: %w", xen.ErrNoAccess), want: "open /dev/xen/privcmd", maxCalls: 1},
		{name: "no-wait", wait: 0, cause: noDomain, want: "domain \"xa-disk\": no such domain", maxCalls: 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if c.cancel {
				time.AfterFunc(200*time.Millisecond, cancel)
			}
			calls := 0
			var stderr strings.Builder
			w := &waitingGuest{ctx: ctx, o: &options{dom: "xa-disk", nbdDevice: "/dev/nbd0", waitGuest: c.wait}, stderr: &stderr,
				open: func(*options) (*guest, error) { calls++; return nil, c.cause }}
			start := time.Now()
			_, err := w.Symbol("init_task")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			if took := time.Since(start); took > c.wait+10*time.Second || c.name == "limit" && took < c.wait {
				t.Errorf("gave up after %v (limit %v)", took, c.wait)
			}
			if calls < 1 || calls > c.maxCalls {
				t.Errorf("%d attempts", calls)
			}
			before := calls
			if err2 := w.ReadPhys(make([]byte, 4), 0); err2 == nil || err2.Error() != err.Error() || calls != before {
				t.Errorf("later access: %v after %d more attempts, want the same error at once", err2, calls-before)
			}
			if w.Pause() == nil || w.Paused() || w.Resume() != nil || w.Close() != nil {
				t.Error("pause of a guest that never opened succeeded, or resume/close failed")
			}
			if info := w.Describe(); !strings.Contains(info.Target, "not opened") || len(info.Notes) != 1 {
				t.Errorf("Describe = %+v", info)
			}
		})
	}
}

// A script that waits for its guest can do what a script on an open guest
// does: each area of the API whose binding looks for an optional interface
// (symbols by address, per-cpu, processes, typed views and iterators,
// writes, the target's state) gives the same output through waitingGuest,
// opened on first use, as on the kernel itself.
func TestWaitingGuestRunsEveryArea(t *testing.T) {
	img := imagePath(t, "mem.elf.zst")
	cache := t.TempDir()
	src := `
print(guest_info().banner)
print((symbol_at(symbol("init_task") + 8)))
print(#cpus("possible"), percpu("runqueues", 0))
local n = 0
for t in list(symbol("init_task"):as("task_struct").tasks, "task_struct", "tasks") do n = n + 1 end
print(n > 1, view("task_struct", symbol("init_task")).comm)
local p, err = process(1)
print(p and p.pid, p and p.comm, err)
print(p and #p:vmas() > 0)
print(pcall(write_u8, symbol("init_task"), 0))
print(with_paused(function() return read_u32(symbol("init_task")) ~= nil end))
flush_cache()
`
	run := func(g bindings.Guest) string {
		var stdout strings.Builder
		env := &bindings.Env{Ctx: context.Background(), Guest: g, AllowWrite: true}
		rt := runtime.New(runtime.Config{Stdout: &stdout, Env: env})
		defer rt.Close()
		if err := rt.RunString(src, "every.lua", nil); err != nil {
			t.Fatalf("script: %v", err)
		}
		rt.Flush()
		return stdout.String()
	}
	direct, err := openGuest(&options{file: img, cacheDir: cache, quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	want := run(direct.kernel)
	direct.Close()

	o := &options{dom: "xa-disk", disk: "/tmp/disk.img", nbdDevice: "/dev/nbd0", waitGuest: time.Minute, quiet: true}
	w := &waitingGuest{ctx: context.Background(), o: o, stderr: io.Discard,
		open: func(*options) (*guest, error) { return openGuest(&options{file: img, cacheDir: cache, quiet: true}) }}
	defer w.Close()
	got := run(w)
	if got != want {
		t.Errorf("through the wait:\n%s\nopen guest:\n%s", got, want)
	}
	if strings.Count(want, "\n") != 8 || !strings.Contains(want, "init_task+0x8") || !strings.Contains(want, "\n1\tinit\tnil\n") || !strings.Contains(want, "cannot be written") {
		t.Errorf("the script did not run every area on the open guest:\n%s", want)
	}
}
