//go:build disk

package diske2e

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The knobs, all from the environment (see doc.go and `make e2e-disk`).
var (
	tapKind     = envOr("XA_DISK_TAP", "xascript")
	watchArgs   = strings.Fields(envOr("XA_DISK_WATCH", "-r /root"))
	killWatch   = strings.Fields(envOr("XA_KILL_WATCH", "-r /kill"))
	bootTimeout = envDuration("XA_BOOT_TIMEOUT", 180*time.Second)
	runTimeout  = envDuration("XA_DISK_TIMEOUT", 15*time.Minute)
)

// shared is set up once by TestMain: the repo root, the kernel and the
// initramfs every boot uses.
var shared struct {
	root, vmlinuz, initrd string
	xascript, script      string
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func envDuration(k string, def time.Duration) time.Duration {
	v := os.Getenv(k)
	if v == "" {
		return def
	}
	if s, err := strconv.Atoi(v); err == nil {
		return time.Duration(s) * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		panic(fmt.Sprintf("%s=%q: %v", k, v, err))
	}
	return d
}

func TestMain(m *testing.M) {
	dir, err := setupShared()
	if err != nil {
		fmt.Fprintln(os.Stderr, "diske2e:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// setupShared checks the tools, reads the kernel's location from
// testdata/.cache/amd64.env and builds the initramfs into a new temporary
// folder, which it returns.
func setupShared() (string, error) {
	for _, tool := range []string{"qemu-system-x86_64", "qemu-nbd", "mkfs.ext4", "debugfs", "e2fsck", "python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("%s not installed: make disk-deps installs it", tool)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		return "", err
	}
	shared.root = root
	envFile := filepath.Join(root, "testdata/.cache/amd64.env")
	kv, err := readEnvFile(envFile)
	if err != nil {
		return "", fmt.Errorf("%w (run bash testdata/fetch.sh amd64)", err)
	}
	shared.vmlinuz = filepath.Join(kv["KROOT"], "boot", "vmlinuz-"+kv["KVER"])
	if _, err := os.Stat(shared.vmlinuz); err != nil {
		return "", fmt.Errorf("kernel named by %s: %w", envFile, err)
	}
	switch tapKind {
	case "qemu-nbd":
	case "xascript":
		shared.xascript = envOr("XASCRIPT_BIN", filepath.Join(root, "bin/xascript"))
		shared.script = envOr("XA_DISK_SCRIPT", filepath.Join(root, "scripts/examples/diskwatch.lua"))
		for _, f := range []string{shared.xascript, shared.script} {
			if _, err := os.Stat(f); err != nil {
				return "", fmt.Errorf("XA_DISK_TAP=xascript needs %s: %w", f, err)
			}
		}
		if _, err := ParseWatch(watchArgs); err != nil {
			return "", fmt.Errorf("XA_DISK_WATCH: %w", err)
		}
		if _, err := ParseWatch(killWatch); err != nil {
			return "", fmt.Errorf("XA_KILL_WATCH: %w", err)
		}
	default:
		return "", fmt.Errorf("XA_DISK_TAP=%q: want xascript or qemu-nbd", tapKind)
	}
	dir, err := os.MkdirTemp("", "xa-diske2e-")
	if err != nil {
		return "", err
	}
	shared.initrd = filepath.Join(dir, "initramfs.cpio")
	cmd := exec.Command("python3", filepath.Join(root, "testdata/guesttool.py"), "initramfs", shared.initrd,
		"--busybox", kv["BUSYBOX"], "--init", filepath.Join(root, "testdata/disk/guest-init.sh"),
		"--kroot", kv["KROOT"], "--kver", kv["KVER"], "virtio_pci", "virtio_blk")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("build initramfs: %v: %s", err, out)
	}
	return dir, nil
}

func readEnvFile(name string) (map[string]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	kv := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			kv[k] = v
		}
	}
	for _, k := range []string{"KROOT", "KVER", "BUSYBOX"} {
		if kv[k] == "" {
			return nil, fmt.Errorf("%s has no %s", name, k)
		}
	}
	return kv, sc.Err()
}

// proc is a child process the test stopped by its PID, also when it fails.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// start runs argv (under nice -n 10) with stdout and stderr to files.
func start(t *testing.T, name, stdout, stderr string, argv ...string) *proc {
	t.Helper()
	outf, err := os.OpenFile(stdout, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	errf := outf
	if stderr != stdout {
		if errf, err = os.OpenFile(stderr, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p := &proc{name: name, done: make(chan struct{})}
	p.cmd = exec.Command("nice", append([]string{"-n", "10"}, argv...)...)
	p.cmd.Stdout, p.cmd.Stderr = outf, errf
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Logf("%s: pid %d: %s", name, p.cmd.Process.Pid, strings.Join(argv, " "))
	go func() {
		p.err = p.cmd.Wait()
		outf.Close()
		if errf != outf {
			errf.Close()
		}
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(5 * time.Second) })
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to grace, then SIGKILL; it reports whether
// the process ended by itself after SIGTERM.
func (p *proc) stop(grace time.Duration) bool {
	if p.exited() {
		return true
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return true
	case <-time.After(grace):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	return false
}

func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// tap is the NBD server under test on a unix socket.
type tap struct {
	*proc
	sock, stdout, stderr string
}

// startTap starts XA_DISK_TAP serving img on dir/nbd.sock (xascript with
// watch as the script's arguments) and waits until the socket accepts a
// connection.
func startTap(t *testing.T, dir, img string, watch []string) *tap {
	t.Helper()
	tp := &tap{sock: filepath.Join(dir, "nbd.sock"), stdout: filepath.Join(dir, "tap.out"), stderr: filepath.Join(dir, "tap.err")}
	var argv []string
	if tapKind == "qemu-nbd" {
		// -t: stay up across connections (the readiness probe is one).
		argv = []string{"qemu-nbd", "-f", "raw", "-t", "-k", tp.sock, img}
	} else {
		argv = append([]string{shared.xascript, shared.script, "--disk", img, "--nbd", tp.sock, "--"}, watch...)
	}
	tp.proc = start(t, "tap", tp.stdout, tp.stderr, argv...)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("unix", tp.sock); err == nil {
			c.Close()
			break
		}
		if tp.exited() {
			t.Fatalf("tap exited before serving %s: %v; stderr:\n%s", tp.sock, tp.err, tail(tp.stderr, 20))
		}
		if time.Now().After(deadline) {
			t.Fatalf("tap not serving %s after 30s; stderr:\n%s", tp.sock, tail(tp.stderr, 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if fi, err := os.Stat(tp.sock); err == nil && fi.Mode().Perm()&0o077 != 0 && tapKind == "xascript" {
		t.Errorf("socket %s is mode %v: want owner-only", tp.sock, fi.Mode().Perm())
	}
	return tp
}

// drive is QEMU's -drive for the tap's socket.
func (tp *tap) drive() string {
	return "file=nbd+unix:///?socket=" + tp.sock + ",format=raw,if=virtio"
}

// guest is one QEMU run of the disk guest.
type guest struct {
	*proc
	serial  string
	started time.Time
}

func boot(t *testing.T, dir, drive, args string) *guest {
	t.Helper()
	g := &guest{serial: filepath.Join(dir, "serial.log"), started: time.Now()}
	g.proc = start(t, "qemu", filepath.Join(dir, "qemu.out"), filepath.Join(dir, "qemu.out"),
		"qemu-system-x86_64", "-accel", "tcg", "-smp", "1", "-cpu", "qemu64", "-m", "256M",
		"-display", "none", "-monitor", "none", "-no-reboot", "-nodefaults",
		"-serial", "file:"+g.serial,
		"-kernel", shared.vmlinuz, "-initrd", shared.initrd,
		"-append", "console=ttyS0 quiet panic=1 no_timer_check rdinit=/init "+args,
		"-drive", drive)
	return g
}

// waitFor polls the serial log until cond holds, QEMU exits or the deadline
// passes; it returns the parsed log and when cond first held.
func (g *guest) waitFor(what string, limit time.Duration, cond func(*GuestLog) bool) (*GuestLog, time.Time, error) {
	deadline := time.Now().Add(limit)
	for {
		exited := g.exited() // before reading: a log read after exit is complete
		data, _ := os.ReadFile(g.serial)
		l, err := ParseGuest(completeLines(data))
		if err != nil {
			return nil, time.Time{}, err
		}
		if cond(l) {
			return l, time.Now(), nil
		}
		if len(l.Fails) > 0 {
			return l, time.Time{}, fmt.Errorf("guest failed waiting for %s: %q; serial tail:\n%s", what, l.Fails, tail(g.serial, 20))
		}
		if exited {
			return l, time.Time{}, fmt.Errorf("QEMU exited (%v) before %s; qemu.out and serial tail:\n%s\n%s",
				g.err, what, tail(filepath.Join(filepath.Dir(g.serial), "qemu.out"), 10), tail(g.serial, 20))
		}
		if time.Now().After(deadline) {
			return l, time.Time{}, fmt.Errorf("no %s after %v; serial tail:\n%s", what, limit, tail(g.serial, 20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitExit waits for QEMU to exit by itself.
func (g *guest) waitExit(limit time.Duration) error {
	select {
	case <-g.done:
		return nil
	case <-time.After(limit):
		return errors.New("QEMU did not exit after the guest's poweroff")
	}
}

func mkimage(t *testing.T, fs, img, size string) {
	t.Helper()
	out, err := exec.Command("bash", filepath.Join(shared.root, "testdata/disk/mkimage.sh"), fs, img, size).CombinedOutput()
	if err != nil {
		t.Fatalf("mkimage %s: %v: %s", fs, err, out)
	}
}

// fsck runs e2fsck with args on img and returns its exit status and output.
func fsck(t *testing.T, img string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command("e2fsck", append(args, img)...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("e2fsck: %v", err)
	return 0, ""
}

func tail(name string, n int) string {
	data, err := os.ReadFile(name)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// workDir is a fresh folder for one run, kept (and named in the log) when
// XA_KEEP_WORK is set, for a failed run's serial log and image.
func workDir(t *testing.T) string {
	if os.Getenv("XA_KEEP_WORK") == "" {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp("", "xa-diske2e-run-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("work dir kept: %s", dir)
	return dir
}

// peakRSS is the process's VmHWM line from /proc (its peak resident set),
// or why it is not known.
func (p *proc) peakRSS() string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return err.Error()
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "no VmHWM"
}
