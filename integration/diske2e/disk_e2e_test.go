//go:build disk

package diske2e

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var filesystems = []string{"ext2", "ext3", "ext4"}

// TestDiskEvents runs the events scenario on each filesystem through the tap
// and checks what doc.go lists: the guest's own run, its list against the
// image, fsck, and (with XA_DISK_TAP=xascript) the events under the
// comparison rule.
func TestDiskEvents(t *testing.T) {
	for _, fs := range filesystems {
		t.Run(fs, func(t *testing.T) { runEvents(t, fs) })
	}
}

func runEvents(t *testing.T, fs string) {
	dir := workDir(t)
	img := filepath.Join(dir, "disk.img")
	mkimage(t, fs, img, "64M")
	before, err := ReadTree(img)
	if err != nil {
		t.Fatal(err)
	}
	tp := startTap(t, dir, img, watchArgs)
	g := boot(t, dir, tp.drive(), "xa.mode=events xa.fs="+fs)
	up, upAt, err := g.waitFor("XA-UP", bootTimeout, func(l *GuestLog) bool { return l.Up })
	if err != nil {
		t.Fatal(err)
	}
	if up.FS != fs || up.Mode != "events" {
		t.Fatalf("guest runs %s on %s, want events on %s", up.Mode, up.FS, fs)
	}
	gl, doneAt, err := g.waitFor("XA-DONE", runTimeout, func(l *GuestLog) bool { return l.Done })
	if err != nil {
		t.Fatal(err)
	}
	if err := g.waitExit(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: boot %.1fs (guest uptime %ss at mount), scenario %.1fs, %d ops in %d steps",
		fs, upAt.Sub(g.started).Seconds(), up.UpTime, doneAt.Sub(upAt).Seconds(), len(gl.Ops), gl.Ops[len(gl.Ops)-1].Step)
	// The tap flushes and closes on SIGTERM; only xascript is held to a
	// clean exit here (qemu-nbd's status on a signal is its own business).
	t.Logf("%s: tap peak RSS %s", tapKind, tp.peakRSS())
	clean := tp.stop(30 * time.Second)
	// xascript ends on SIGTERM with the shell's 128+15 after delivering the
	// last rescan's events (cmd/xascript); anything else is not clean.
	if tapKind == "xascript" && (!clean || (tp.err != nil && !exitedWith(tp.err, 143))) {
		t.Errorf("xascript did not exit cleanly on SIGTERM (ended by itself: %v, status %v); stderr:\n%s", clean, tp.err, tail(tp.stderr, 20))
	}
	if len(gl.Fails) > 0 {
		t.Fatalf("guest: %q", gl.Fails)
	}

	// The guest's list against the image.
	after, err := ReadTree(img)
	if err != nil {
		t.Fatal(err)
	}
	model, err := Replay(before, gl.Ops)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range CompareTrees(model, after) {
		t.Errorf("image vs guest's list: %s", e)
	}
	if ix, err := DirIndexed(img, "/root/big"); err != nil || !ix {
		t.Errorf("/root/big after 10,000 files is not an htree: indexed %v, %v", ix, err)
	}
	if rc, out := fsck(t, img, "-fn"); rc != 0 {
		t.Errorf("e2fsck -fn after shutdown: status %d:\n%s", rc, out)
	}

	if tapKind != "xascript" {
		return
	}
	data, err := os.ReadFile(tp.stdout)
	if err != nil {
		t.Fatal(err)
	}
	ev := ParseEvents(string(data))
	ws, _ := ParseWatch(watchArgs)
	want := Expected(gl.Ops, ws)
	t.Logf("%d events (%d attribute events ignored, %d other lines) for %d expected", len(ev.List), ev.Ignored, len(ev.Untouched), len(want))
	for _, u := range ev.Unknown {
		t.Errorf("event line of no known op: %q", u)
	}
	errs := Compare(want, ev.List, map[int]bool{1: true})
	for _, e := range errs {
		t.Error(e)
	}
	if len(errs)+len(ev.Unknown) > 0 {
		t.Logf("xascript's stderr (tail):\n%s", tail(tp.stderr, 20))
	}
}

// killResult is one kill trial, for the summary.
type killResult struct {
	fs             string
	delay          time.Duration
	synced, intact int
	bytes          int64
	ioerr          bool
	fsckRC         int
	repairBroke    int // synced files intact before e2fsck -fy and not after
}

// TestDiskKill: XA_KILL_TRIALS times (default 21), the filesystems in turn
// (XA_KILL_FS, default ext4,ext2,ext3):
// the kill scenario, SIGKILL of the tap after a random XA_KILL_MIN_MS ..
// XA_KILL_MAX_MS (default 2000..12000) of writing, then SIGKILL of QEMU; every
// file the guest reported synced must be on the image, intact.
// XA_KILL_SEED repeats a run's delays; xascript watches XA_KILL_WATCH
// (default "-r /kill", the folder being written) meanwhile.
func TestDiskKill(t *testing.T) {
	trials := envInt(t, "XA_KILL_TRIALS", 21)
	lo, hi := envInt(t, "XA_KILL_MIN_MS", 2000), envInt(t, "XA_KILL_MAX_MS", 12000)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("XA_KILL_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("XA_KILL_SEED: %v", err)
		}
	}
	if trials < 1 || lo < 0 || hi < lo {
		t.Fatalf("XA_KILL_TRIALS %d, XA_KILL_MIN_MS %d, XA_KILL_MAX_MS %d", trials, lo, hi)
	}
	t.Logf("seed %d (XA_KILL_SEED), %d trials, kill after %d..%d ms of writing", seed, trials, lo, hi)
	rng := rand.New(rand.NewPCG(seed, 0x58415354))
	fss := []string{"ext4", "ext2", "ext3"}
	if v := os.Getenv("XA_KILL_FS"); v != "" {
		fss = strings.Split(v, ",")
		for _, fs := range fss {
			if fs != "ext2" && fs != "ext3" && fs != "ext4" {
				t.Fatalf("XA_KILL_FS=%q: want a comma-separated list of ext2, ext3, ext4", v)
			}
		}
	}
	var results []killResult
	for i := range trials {
		fs := fss[i%len(fss)]
		delay := time.Duration(lo+rng.IntN(hi-lo+1)) * time.Millisecond
		t.Run(fmt.Sprintf("trial%02d-%s", i+1, fs), func(t *testing.T) {
			r := runKill(t, fs, delay)
			results = append(results, r)
		})
	}
	var synced, intact, ioerr int
	var bytes int64
	t.Logf("%-6s %-5s %8s %7s %7s %9s %8s %14s %s", "trial", "fs", "kill@ms", "synced", "intact", "KiB", "fsck -fy", "broken by -fy", "guest saw EIO")
	for i, r := range results {
		t.Logf("%-6d %-5s %8d %7d %7d %9d %8d %14d %v", i+1, r.fs, r.delay.Milliseconds(), r.synced, r.intact, r.bytes/1024, r.fsckRC, r.repairBroke, r.ioerr)
		synced += r.synced
		intact += r.intact
		bytes += r.bytes
		if r.ioerr {
			ioerr++
		}
	}
	t.Logf("KILL SUMMARY: tap %s, %d trials, %d files synced before the kill, %d intact on the image (%d MiB), %d trials where the guest then saw an I/O error",
		tapKind, len(results), synced, intact, bytes>>20, ioerr)
	if synced == 0 {
		t.Error("no trial synced any file before the kill: the trials proved nothing (raise XA_KILL_MIN_MS)")
	}
}

func envInt(t *testing.T, k string, def int) int {
	v := os.Getenv(k)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", k, v, err)
	}
	return n
}

func runKill(t *testing.T, fs string, delay time.Duration) (r killResult) {
	r = killResult{fs: fs, delay: delay}
	dir := workDir(t)
	img := filepath.Join(dir, "disk.img")
	mkimage(t, fs, img, "512M")
	tp := startTap(t, dir, img, killWatch)
	g := boot(t, dir, tp.drive(), "xa.mode=kill xa.fs="+fs)
	if _, _, err := g.waitFor("XA-WRITING", bootTimeout, func(l *GuestLog) bool { return l.Writing }); err != nil {
		t.Fatal(err)
	}
	time.Sleep(delay)
	if tp.exited() {
		t.Fatalf("tap exited by itself during the writes: %v; stderr:\n%s", tp.err, tail(tp.stderr, 20))
	}
	tp.kill()
	// Whatever the guest prints now is held to the same standard.
	time.Sleep(1500 * time.Millisecond)
	g.kill()
	data, err := os.ReadFile(g.serial)
	if err != nil {
		t.Fatal(err)
	}
	gl, err := ParseGuest(completeLines(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(gl.Fails) > 0 {
		t.Fatalf("guest: %q", gl.Fails)
	}
	r.ioerr = len(gl.IOErr) > 0
	r.synced = len(gl.Synced)
	// What the next mount does: replay the journal's committed transactions
	// (ext3/4), nothing more. The files are read then, before any repair,
	// which may rewrite blocks (doc.go).
	if rc, out := fsck(t, img, "-E", "journal_only", "-y"); rc > 1 {
		t.Fatalf("e2fsck -E journal_only -y (journal replay): status %d:\n%s", rc, out)
	}
	defer func() {
		// Then the repair a boot-time check makes: 0 or 1 is fine; more is
		// damage it could not mend.
		rc, out := fsck(t, img, "-fy")
		r.fsckRC = rc
		if rc > 1 {
			t.Errorf("e2fsck -fy after the kill: status %d:\n%s", rc, out)
		}
		if r.intact > 0 {
			_, _, bad := checkSynced(t, img, filepath.Join(dir, "dump-repaired"), gl.Synced)
			r.repairBroke = len(bad)
			for _, b := range bad {
				t.Logf("after e2fsck -fy (not counted): %s", b)
			}
		}
	}()
	if len(gl.Synced) == 0 {
		t.Logf("killed after %v: no file synced yet", delay)
		return r
	}
	intact, bytes, bad := checkSynced(t, img, filepath.Join(dir, "dump"), gl.Synced)
	for _, b := range bad {
		t.Error(b)
	}
	r.intact, r.bytes = intact, bytes
	t.Logf("%s killed after %v of writing: %d files synced, %d intact (%d KiB), guest saw EIO: %v",
		fs, delay, r.synced, r.intact, r.bytes/1024, r.ioerr)
	return r
}

// checkSynced dumps each synced file from img into outDir with debugfs and
// compares size and hash; it returns how many (and how many bytes) are
// intact, and a line for each that is not.
func checkSynced(t *testing.T, img, outDir string, synced []Synced) (intact int, bytes int64, bad []string) {
	t.Helper()
	if err := os.Mkdir(outDir, 0o700); err != nil {
		t.Fatal(err)
	}
	var cmds strings.Builder
	for _, s := range synced {
		fmt.Fprintf(&cmds, "dump /kill/%s %s\n", s.Name, filepath.Join(outDir, s.Name))
	}
	cmdFile := outDir + ".cmds"
	if err := os.WriteFile(cmdFile, []byte(cmds.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("debugfs", "-f", cmdFile, img).CombinedOutput(); err != nil {
		t.Fatalf("debugfs dump: %v: %s", err, out)
	}
	for _, s := range synced {
		data, err := os.ReadFile(filepath.Join(outDir, s.Name))
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: synced (%d bytes) but not on the image: %v", s.Name, s.Size, err))
			continue
		}
		sum := sha256.Sum256(data)
		if int64(len(data)) != s.Size || hex.EncodeToString(sum[:]) != s.SHA256 {
			bad = append(bad, fmt.Sprintf("%s: synced %d bytes sha256 %s, image has %d bytes sha256 %x", s.Name, s.Size, s.SHA256, len(data), sum))
			continue
		}
		intact++
		bytes += int64(len(data))
	}
	return intact, bytes, bad
}

// exitedWith tells whether err is a process exit with status code.
func exitedWith(err error, code int) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && ee.ExitCode() == code
}
