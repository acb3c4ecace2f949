//go:build guests

package fswatche2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// proc is a child process stopped by its PID when the test ends, also when
// it fails.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func start(t *testing.T, name, out string, argv ...string) *proc {
	t.Helper()
	f, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{name: name, done: make(chan struct{})}
	p.cmd = exec.Command("nice", append([]string{"-n", "10"}, argv...)...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	t.Logf("%s: pid %d: %s", name, p.cmd.Process.Pid, strings.Join(argv, " "))
	go func() {
		p.err = p.cmd.Wait()
		f.Close()
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

// stop sends SIGTERM, then SIGKILL after grace.
func (p *proc) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(grace):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
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

// waitLines polls file until cond holds on its complete lines, one of procs
// exits or limit passes.
func waitLines(t *testing.T, what, file string, limit time.Duration, cond func([]string) bool, procs ...*proc) []string {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		var gone *proc
		for _, p := range procs {
			if p.exited() {
				gone = p
			}
		}
		data, _ := os.ReadFile(file)
		s := string(data)
		if i := strings.LastIndexByte(s, '\n'); i >= 0 {
			s = s[:i]
		} else {
			s = ""
		}
		lines := strings.Split(s, "\n")
		for _, l := range lines {
			if strings.HasPrefix(l, "XA-FAIL") {
				t.Fatalf("guest failed waiting for %s: %s", what, l)
			}
		}
		if cond(lines) {
			return lines
		}
		if gone != nil {
			t.Fatalf("%s exited (%v) before %s; %s:\n%s", gone.name, gone.err, what, file, tail(file, 30))
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %v; %s:\n%s", what, limit, file, tail(file, 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func hasPrefix(prefix string) func([]string) bool {
	return func(lines []string) bool {
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) {
				return true
			}
		}
		return false
	}
}

func readEnv(name string) (map[string]string, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("%w (run bash testdata/fetch.sh amd64)", err)
	}
	kv := map[string]string{}
	for _, l := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			kv[k] = v
		}
	}
	for _, k := range []string{"KROOT", "KVER", "BUSYBOX"} {
		if kv[k] == "" {
			return nil, fmt.Errorf("%s has no %s", name, k)
		}
	}
	return kv, nil
}

// TestLiveQEMUFsWatch: fswatch.lua, run by one xascript that is both the
// guest's disk (NBD) and its memory reader (QMP), flags a file that lived
// under a second before any flush as memory-only, reports a synced file
// with its memory and disk times and inode, and names the process that holds
// it open: all compared with what the guest printed.
func TestLiveQEMUFsWatch(t *testing.T) {
	for _, tool := range []string{"qemu-system-x86_64", "mkfs.ext4", "python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (make disk-deps installs e2fsprogs, make testdata-deps QEMU)", tool)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := os.Getenv("XASCRIPT_BIN")
	if bin == "" {
		bin = filepath.Join(root, "bin/xascript")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("xascript binary: %v (make build, or set XASCRIPT_BIN)", err)
	}
	kv, err := readEnv(filepath.Join(root, "testdata/.cache/amd64.env"))
	if err != nil {
		t.Fatal(err)
	}
	dir := workDir(t)
	initrd := filepath.Join(dir, "initramfs.cpio")
	if out, err := exec.Command("nice", "-n", "10", "python3", filepath.Join(root, "testdata/guesttool.py"), "initramfs", initrd,
		"--busybox", kv["BUSYBOX"], "--init", filepath.Join(root, "testdata/fswatch/guest-init.sh"),
		"--kroot", kv["KROOT"], "--kver", kv["KVER"], "virtio_pci", "virtio_blk").CombinedOutput(); err != nil {
		t.Fatalf("build initramfs: %v: %s", err, out)
	}
	img := filepath.Join(dir, "disk.img")
	if out, err := exec.Command("bash", filepath.Join(root, "testdata/disk/mkimage.sh"), "ext4", img, "64M").CombinedOutput(); err != nil {
		t.Fatalf("mkimage: %v: %s", err, out)
	}

	// xascript first: QEMU opens the NBD socket as it starts, and xascript
	// waits for QEMU's QMP socket and the guest's kernel.
	nbd, qmp, ttyS1 := filepath.Join(dir, "nbd.sock"), filepath.Join(dir, "qmp.sock"), filepath.Join(dir, "ttyS1.sock")
	watchOut := filepath.Join(dir, "fswatch.out")
	// fswatch's -b, in seconds: how long a change seen in one view waits for
	// the other. On a loaded machine the guest's sync and xascript's polls
	// lag by seconds (a run at load 12 on 2 cores saw a sync take 10 s), so
	// not much below the default 30.
	const bound = 25
	// Its own profile cache: what a user's cache holds must not decide the run.
	t.Setenv("XASCRIPT_CACHE_DIR", filepath.Join(dir, "cache"))
	xa := start(t, "xascript", watchOut, bin, filepath.Join(root, "scripts/examples/fswatch.lua"),
		"--qemu", qmp, "--disk", img, "--nbd", nbd, "--", "-i", "0.2", "-b", strconv.Itoa(bound), "-m", "/mnt", "/root")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("unix", nbd); err == nil {
			c.Close()
			break
		}
		if xa.exited() || time.Now().After(deadline) {
			t.Fatalf("xascript not serving %s: %v\n%s", nbd, xa.err, tail(watchOut, 20))
		}
		time.Sleep(50 * time.Millisecond)
	}

	mem := fmt.Sprintf("/dev/shm/xa-fswatch-%d", os.Getpid())
	t.Cleanup(func() { os.Remove(mem) })
	serial := filepath.Join(dir, "serial.log")
	qemu := start(t, "qemu", filepath.Join(dir, "qemu.out"),
		"qemu-system-x86_64", "-accel", "tcg", "-smp", "1", "-cpu", "qemu64", "-m", "192M",
		"-machine", "q35,memory-backend=mem", "-object", "memory-backend-file,id=mem,size=192M,mem-path="+mem+",share=on",
		"-display", "none", "-monitor", "none", "-no-reboot", "-nodefaults",
		"-serial", "file:"+serial, "-serial", "unix:"+ttyS1+",server=on,wait=off",
		"-qmp", "unix:"+qmp+",server=on,wait=off",
		"-kernel", filepath.Join(kv["KROOT"], "boot", "vmlinuz-"+kv["KVER"]), "-initrd", initrd,
		"-append", "console=ttyS0 quiet panic=1 no_timer_check rdinit=/init",
		"-drive", "file=nbd+unix:///?socket="+nbd+",format=raw,if=virtio")
	if d := os.Getenv("XA_LIVE_DIR"); d != "" {
		// make e2e-qemu stops what a killed test left behind.
		ld := filepath.Join(d, "fswatch")
		_ = os.MkdirAll(ld, 0o700)
		_ = os.WriteFile(filepath.Join(ld, "qemu.pid"), []byte(strconv.Itoa(qemu.cmd.Process.Pid)), 0o600)
		_ = os.WriteFile(filepath.Join(ld, "mem.path"), []byte(mem), 0o600)
		// Once QEMU is stopped its PID may be reused: nothing is left to stop.
		t.Cleanup(func() { qemu.stop(5 * time.Second); os.RemoveAll(ld) })
	}

	boot := 180 * time.Second
	waitLines(t, "XA-UP", serial, boot, hasPrefix("XA-UP"), qemu)
	waitLines(t, "fswatch's memory view", watchOut, boot, hasPrefix("memory: watching /mnt/root"), xa)
	cmd, err := net.Dial("unix", ttyS1)
	if err != nil {
		t.Fatal(err)
	}
	defer cmd.Close()
	if _, err := cmd.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	// The held file: the guest keeps its holder until fswatch has named it.
	held := regexp.MustCompile(`^MKFILE /root/held: seen in memory at (\S+), on disk at (\S+) \(([-+][0-9.]+) s\), inode (\d+); (.*)$`)
	waitLines(t, "fswatch's report of /root/held", watchOut, 180*time.Second, func(lines []string) bool {
		for _, l := range lines {
			if held.MatchString(l) {
				return true
			}
		}
		return false
	}, xa)
	if _, err := cmd.Write([]byte("next\n")); err != nil {
		t.Fatal(err)
	}
	guest := waitLines(t, "XA-SYNCED plain", serial, 120*time.Second, hasPrefix("XA-SYNCED plain"), qemu)
	did := map[string]string{} // path -> inode the guest printed
	var heldPID, heldPath, cwdPID string
	var looked []string // names that were on the image and that the guest looked up
	for _, l := range guest {
		f := strings.Fields(l)
		switch {
		case len(f) == 4 && f[0] == "XA-DID" && f[1] == "MKFILE":
			did[f[2]] = f[3]
		case len(f) == 3 && f[0] == "XA-HELD":
			heldPID, heldPath = f[1], f[2]
		case len(f) >= 1 && f[0] == "XA-LOOKED":
			looked = f[1:]
		case len(f) == 3 && f[0] == "XA-CWD" && f[2] == "/root":
			cwdPID = f[1]
		}
	}
	if did["/root/ephemeral"] == "" || did["/root/held"] == "" || heldPID == "" || heldPath != "/root/held" ||
		did["/root/plain"] == "" || cwdPID == "" || len(looked) == 0 {
		t.Fatalf("the guest did not print its steps; serial:\n%s", tail(serial, 30))
	}
	// The memory-only flag comes bound seconds after the removal; the held
	// file's line at the disk event after the sync.
	memOnly := regexp.MustCompile(`^MEMORY-ONLY /root/ephemeral: created at (\S+), removed at (\S+), never on disk within \d+ s, inode (\d+)$`)
	plain := regexp.MustCompile(`^MKFILE /root/plain: seen in memory at (\S+), on disk at (\S+) \(([-+][0-9.]+) s\), inode (\d+); not open; last process in the folder: (\S+)\[(\d+)\]$`)
	out := waitLines(t, "fswatch's three reports", watchOut, time.Duration(bound+120)*time.Second, func(lines []string) bool {
		m, h, p := false, false, false
		for _, l := range lines {
			m = m || memOnly.MatchString(l)
			h = h || held.MatchString(l)
			p = p || plain.MatchString(l)
		}
		return m && h && p
	}, xa)
	for _, l := range out {
		if m := memOnly.FindStringSubmatch(l); m != nil {
			if m[3] != did["/root/ephemeral"] {
				t.Errorf("ephemeral: fswatch says inode %s, the guest's ls -i %s", m[3], did["/root/ephemeral"])
			}
			if m[1] > m[2] {
				t.Errorf("ephemeral removed (%s) before it was created (%s)", m[2], m[1])
			}
		}
		if m := held.FindStringSubmatch(l); m != nil {
			if m[4] != did["/root/held"] {
				t.Errorf("held: fswatch says inode %s, the guest's ls -i %s", m[4], did["/root/held"])
			}
			// The guest waited a second after creating it before sync:
			// memory saw it first.
			if d, err := strconv.ParseFloat(m[3], 64); err != nil || d <= 0 {
				t.Errorf("held: on disk %s s after memory; want the memory view first: %s", m[3], l)
			}
			if want := fmt.Sprintf("open by sleep[%s] fd 1", heldPID); m[5] != want {
				t.Errorf("held: fswatch names %q; the guest's holder is %s", m[5], want)
			}
		}
		if m := plain.FindStringSubmatch(l); m != nil {
			if m[4] != did["/root/plain"] {
				t.Errorf("plain: fswatch says inode %s, the guest's ls -i %s", m[4], did["/root/plain"])
			}
			if m[6] != cwdPID {
				t.Errorf("plain: fswatch names %s[%s] as the last process in the folder; the guest's shell there is pid %s", m[5], m[6], cwdPID)
			}
		}
		// Old names looked up are cached, not created.
		for _, name := range looked {
			if strings.Contains(l, "/root/"+name+":") || strings.Contains(l, "/root/"+name+" ") {
				t.Errorf("%s was on the image and only looked up, but fswatch says: %s", name, l)
			}
		}
		// The only thing memory alone may see is the ephemeral file.
		if strings.HasPrefix(l, "MEMORY-ONLY") && !memOnly.MatchString(l) {
			t.Errorf("unexpected memory-only report: %s", l)
		}
		for _, bad := range []string{"DISK-ONLY", "DISK ", "ephemeral: seen in memory", "MKFILE /root/ephemeral", "disk: ERROR", "disk: LOST"} {
			if strings.HasPrefix(l, bad) || strings.Contains(l, " "+bad) {
				t.Errorf("unexpected fswatch line: %s", l)
			}
		}
	}
	if _, err := cmd.Write([]byte("done\n")); err != nil {
		t.Fatal(err)
	}
	waitLines(t, "XA-DONE", serial, 60*time.Second, hasPrefix("XA-DONE"), qemu)
	select {
	case <-qemu.done:
	case <-time.After(60 * time.Second):
		t.Errorf("QEMU did not exit after the guest's poweroff")
	}
	xa.stop(10 * time.Second)
	t.Logf("fswatch printed:\n%s", tail(watchOut, 40))
}

// workDir is a fresh folder, kept when XA_KEEP_WORK is set.
func workDir(t *testing.T) string {
	if os.Getenv("XA_KEEP_WORK") == "" {
		// Unix sockets need short paths: t.TempDir() can exceed 108 bytes.
		d, err := os.MkdirTemp("", "xa-fsw-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		return d
	}
	d, err := os.MkdirTemp("", "xa-fsw-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("work dir kept: %s", d)
	return d
}
