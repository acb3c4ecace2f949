//go:build guests

package bitmape2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xascript/xascript/internal/liveguest"
	"github.com/xascript/xascript/vmi/qemu"
)

// env is what every test here needs: the repository, the kernel, the
// xascript binary.
type env struct {
	root, vmlinuz, kroot, kver, busybox, xascript string
}

func setup(t testing.TB) env {
	t.Helper()
	for _, tool := range []string{"qemu-system-x86_64", "mkfs.ext4", "python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed: make disk-deps installs it", tool)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	e := env{root: root}
	envFile := filepath.Join(root, "testdata/.cache/amd64.env")
	data, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatalf("%v (run bash testdata/fetch.sh amd64)", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "KROOT":
			e.kroot = v
		case "KVER":
			e.kver = v
		case "BUSYBOX":
			e.busybox = v
		}
	}
	e.vmlinuz = filepath.Join(e.kroot, "boot", "vmlinuz-"+e.kver)
	if _, err := os.Stat(e.vmlinuz); err != nil {
		t.Fatalf("kernel named by %s: %v", envFile, err)
	}
	e.xascript = os.Getenv("XASCRIPT_BIN")
	if e.xascript == "" {
		e.xascript = filepath.Join(root, "bin/xascript")
	}
	if _, err := os.Stat(e.xascript); err != nil {
		t.Fatalf("xascript binary (XASCRIPT_BIN; make e2e-qemu builds bin/xascript): %v", err)
	}
	return e
}

// diskGuest is a running guest with a data disk; QEMU is stopped by its PID
// when the test ends.
type diskGuest struct {
	*liveguest.Guest
	img string
}

// bootDisk makes an image of fs and boots a guest on it, waiting for its
// @@XA-READY@@ (mounted).
func bootDisk(t testing.TB, e env, fs string) *diskGuest {
	t.Helper()
	dir := t.TempDir()
	if base := os.Getenv("XA_LIVE_DIR"); base != "" {
		// make e2e-qemu stops what a killed test left there, by PID.
		dir = filepath.Join(base, fmt.Sprintf("bitmap-%d-%s", os.Getpid(), fs))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(dir, "disk.img")
	if out, err := exec.Command("bash", filepath.Join(e.root, "testdata/disk/mkimage.sh"), fs, img, "64M").CombinedOutput(); err != nil {
		t.Fatalf("mkimage %s: %v: %s", fs, err, out)
	}
	initrd := filepath.Join(dir, "initramfs.cpio")
	if out, err := exec.Command("python3", filepath.Join(e.root, "testdata/guesttool.py"), "initramfs", initrd,
		"--busybox", e.busybox, "--init", filepath.Join(e.root, "testdata/disk/live-disk-guest.sh"),
		"--kroot", e.kroot, "--kver", e.kver, "virtio_pci", "virtio_blk").CombinedOutput(); err != nil {
		t.Fatalf("initramfs: %v: %s", err, out)
	}
	g := &liveguest.Guest{Dir: dir, Socket: filepath.Join(dir, "qmp.sock"), CtlSocket: filepath.Join(dir, "qmp-ctl.sock"),
		CmdSocket: filepath.Join(dir, "cmd.sock")}
	serial := filepath.Join(dir, "serial.log")
	qout, err := os.Create(filepath.Join(dir, "qemu.out"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("qemu-system-x86_64", "-accel", "tcg", "-smp", "1", "-cpu", "qemu64", "-m", "256M",
		"-display", "none", "-monitor", "none", "-no-reboot", "-nodefaults",
		"-serial", "file:"+serial, "-serial", "unix:"+g.CmdSocket+",server=on,wait=off",
		"-qmp", "unix:"+g.Socket+",server=on,wait=off", "-qmp", "unix:"+g.CtlSocket+",server=on,wait=off",
		"-kernel", e.vmlinuz, "-initrd", initrd,
		"-append", "console=ttyS0 quiet panic=1 no_timer_check rdinit=/init xa.fs="+fs,
		"-drive", "file="+img+",format=raw,if=virtio,id=data")
	cmd.Stdout, cmd.Stderr = qout, qout
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	g.PID = cmd.Process.Pid
	os.WriteFile(filepath.Join(dir, "qemu.pid"), []byte(fmt.Sprint(g.PID)), 0o644)
	exited := make(chan struct{})
	go func() { cmd.Wait(); qout.Close(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(180 * time.Second)
	for {
		s, _ := os.ReadFile(serial)
		if strings.Contains(string(s), "XA-FAIL") {
			t.Fatalf("guest: %s", s)
		}
		if strings.Contains(string(s), "@@XA-READY@@") {
			break
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(filepath.Join(dir, "qemu.out"))
			t.Fatalf("QEMU exited before the guest was ready: %s\n%s", b, s)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("guest not ready after 180s; serial:\n%s", s)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return &diskGuest{Guest: g, img: img}
}

// state is query-block and query-block-exports on the control socket,
// without the image file's actual-size (the guest's writes change it).
func (g *diskGuest) state(t testing.TB) string {
	t.Helper()
	q, err := qemu.Dial(g.CtlSocket, 10*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	var b strings.Builder
	for _, c := range []string{"query-block", "query-block-exports"} {
		raw, err := q.Execute(c, nil)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		dropActualSize(v)
		out, _ := json.Marshal(v)
		b.WriteString(c + ": " + string(out) + "\n")
	}
	return b.String()
}

func dropActualSize(v any) {
	switch x := v.(type) {
	case map[string]any:
		delete(x, "actual-size")
		for _, y := range x {
			dropActualSize(y)
		}
	case []any:
		for _, y := range x {
			dropActualSize(y)
		}
	}
}

// watcher is a running xascript diskwatch.lua on the guest's drive.
type watcher struct {
	cmd            *exec.Cmd
	stdout, stderr string
	done           chan struct{}
	err            error
}

func attach(t testing.TB, e env, g *diskGuest, interval string, name string) *watcher {
	t.Helper()
	w := &watcher{stdout: filepath.Join(g.Dir, name+".out"), stderr: filepath.Join(g.Dir, name+".err"), done: make(chan struct{})}
	of, _ := os.Create(w.stdout)
	ef, _ := os.Create(w.stderr)
	w.cmd = exec.Command(e.xascript, filepath.Join(e.root, "scripts/examples/diskwatch.lua"), "-v",
		"--qemu", g.Socket, "--drive", "data", "--interval", interval, "--", "/root")
	w.cmd.Stdout, w.cmd.Stderr = of, ef
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { w.err = w.cmd.Wait(); of.Close(); ef.Close(); close(w.done) }()
	t.Cleanup(func() {
		select {
		case <-w.done:
		default:
			w.cmd.Process.Kill()
			<-w.done
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		s, _ := os.ReadFile(w.stderr)
		if strings.Contains(string(s), "xascript: watching drive") {
			return w
		}
		select {
		case <-w.done:
			t.Fatalf("xascript exited (%v) before watching:\n%s", w.err, s)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("xascript not watching after 60s:\n%s", s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitLines waits until stdout has n lines and returns them, with the time
// each was first seen.
func (w *watcher) waitLines(t testing.TB, n int, limit time.Duration) ([]string, []time.Time) {
	t.Helper()
	deadline := time.Now().Add(limit)
	var seen []time.Time
	for {
		data, _ := os.ReadFile(w.stdout)
		lines := completeLines(string(data))
		for len(seen) < len(lines) {
			seen = append(seen, time.Now())
		}
		if len(lines) >= n {
			return lines, seen
		}
		if time.Now().After(deadline) {
			s, _ := os.ReadFile(w.stderr)
			t.Fatalf("%d of %d event lines after %v: %q\nstderr:\n%s", len(lines), n, limit, lines, s)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func completeLines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	if len(out) > 0 && !strings.HasSuffix(s, "\n") {
		out = out[:len(out)-1]
	}
	return out
}

var leftoverName = regexp.MustCompile(`"(?:id|name)":"xascript-[0-9]+-[a-z0-9]+"`)
