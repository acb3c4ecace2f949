// Package liveguest starts the live test guest of testdata/live-guest.sh
// for tests: a Debian kernel under QEMU with QMP on a socket and guest RAM
// either in a shared file or only in QEMU's process. QEMU is stopped by its
// PID (never by name) and the RAM file removed when the test ends, also when
// it fails; a guest that does not come up fails the test within the timeout
// instead of hanging it.
//
// When XA_LIVE_DIR is set, each guest's folder is made inside it and kept,
// so that a caller that outlives the test binary (make e2e-qemu) can stop
// any QEMU a killed test left behind with `live-guest.sh stop DIR`.
package liveguest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RAM says where the guest's RAM lives.
type RAM string

const (
	// FileRAM: a shared memory-backend-file in /dev/shm (Guest.MemPath).
	FileRAM RAM = "file"
	// AnonRAM: plain -m, anonymous memory in QEMU's process only.
	AnonRAM RAM = "anon"
)

// HeldModule is in the guest's initramfs but not loaded at boot, for a
// test to insmod (live-guest.sh's HELD).
const HeldModule = "romfs"

// Guest is a running live test guest.
type Guest struct {
	Dir       string // holds serial.log, qemu.pid, ...
	Socket    string // QMP socket
	CtlSocket string // a second QMP socket, free for the test's own commands
	CmdSocket string // the guest's command port (its ttyS1)
	MemPath   string // the shared RAM file; "" for AnonRAM
	RAM       RAM
	PID       int // QEMU's

	mu  sync.Mutex
	cmd net.Conn
	rd  *bufio.Reader
}

// Serial returns what the guest printed on its console so far.
func (g *Guest) Serial() (string, error) {
	b, err := os.ReadFile(filepath.Join(g.Dir, "serial.log"))
	return string(b), err
}

// Start boots the guest with RAM in a shared file. script is the path of
// testdata/live-guest.sh relative to the calling test's package.
func Start(t testing.TB, script string) *Guest { return StartRAM(t, script, FileRAM) }

// StartRAM boots the guest with its RAM where ram says.
func StartRAM(t testing.TB, script string, ram RAM) *Guest {
	t.Helper()
	return StartWith(t, script, Config{RAM: ram})
}

// Config says what guest to boot.
type Config struct {
	RAM RAM    // FileRAM when ""
	Mem string // QEMU's -m size, "128M" when ""; above 2G q35 puts RAM above 4 GiB too
	SMP int    // vCPUs, 1 when 0
	// Files are programs of the test put in the guest's initramfs, each
	// "SRC:/bin/NAME" (live-guest.sh's XA_LIVE_FILES).
	Files []string
	// CPU is QEMU's -cpu model, "qemu64" (4-level paging) when ""; "max"
	// turns on 5-level paging. Append adds kernel parameters ("pti=on").
	CPU, Append string
	// Kernel is the fetch.sh target whose kernel boots (live-guest.sh's
	// XA_LIVE_KERNEL): "amd64" (Debian bookworm's 6.1) when "", or
	// "amd64-5.10" (bullseye's, before the maple tree) or "amd64-6.12".
	Kernel string
}

// StartWith boots the guest cfg describes.
func StartWith(t testing.TB, script string, cfg Config) *Guest {
	t.Helper()
	ram := cfg.RAM
	if ram == "" {
		ram = FileRAM
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Fatal("qemu-system-x86_64 not installed: make testdata-deps installs it")
	}
	name := fmt.Sprintf("test-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
	dir := t.TempDir()
	if base := os.Getenv("XA_LIVE_DIR"); base != "" {
		dir = filepath.Join(base, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	g := &Guest{Dir: dir, RAM: ram}
	t.Cleanup(func() {
		g.mu.Lock()
		if g.cmd != nil {
			g.cmd.Close()
		}
		g.mu.Unlock()
		if out, err := exec.Command(script, "stop", dir).CombinedOutput(); err != nil {
			t.Logf("live-guest.sh stop: %v\n%s", err, out)
		}
		os.Remove("/dev/shm/xa-" + name)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, "start", dir, name, string(ram))
	cmd.Env = os.Environ()
	if cfg.Mem != "" {
		cmd.Env = append(cmd.Env, "XA_LIVE_MEM="+cfg.Mem)
	}
	if cfg.SMP > 0 {
		cmd.Env = append(cmd.Env, "XA_LIVE_SMP="+strconv.Itoa(cfg.SMP))
	}
	if cfg.CPU != "" {
		cmd.Env = append(cmd.Env, "XA_LIVE_CPU="+cfg.CPU)
	}
	if cfg.Append != "" {
		cmd.Env = append(cmd.Env, "XA_LIVE_APPEND="+cfg.Append)
	}
	if cfg.Kernel != "" {
		cmd.Env = append(cmd.Env, "XA_LIVE_KERNEL="+cfg.Kernel)
	}
	if len(cfg.Files) > 0 {
		cmd.Env = append(cmd.Env, "XA_LIVE_FILES="+strings.Join(cfg.Files, " "))
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("live-guest.sh start: %v\n%s", err, stderr.String())
	}
	f := strings.Fields(string(out))
	if len(f) != 4 || f[0] != "READY" {
		t.Fatalf("live-guest.sh start printed %q", out)
	}
	if g.PID, err = strconv.Atoi(f[1]); err != nil {
		t.Fatalf("live-guest.sh start printed pid %q", f[1])
	}
	g.Socket = f[2]
	if f[3] != "-" {
		g.MemPath = f[3]
	}
	g.CtlSocket = filepath.Join(dir, "qmp-ctl.sock")
	g.CmdSocket = filepath.Join(dir, "cmd.sock")
	return g
}

// Run runs a one-line shell command in the guest (on its command port) and
// returns what it printed. A non-zero exit status is an error that carries
// the output.
func (g *Guest) Run(line string, timeout time.Duration) (string, error) {
	if strings.ContainsAny(line, "\r\n") {
		return "", fmt.Errorf("guest command %q: one line only", line)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cmd == nil {
		c, err := net.DialTimeout("unix", g.CmdSocket, timeout)
		if err != nil {
			return "", fmt.Errorf("guest command port: %w", err)
		}
		g.cmd, g.rd = c, bufio.NewReader(c)
	}
	g.cmd.SetDeadline(time.Now().Add(timeout))
	if _, err := g.cmd.Write([]byte(line + "\n")); err != nil {
		return "", fmt.Errorf("guest command %q: %w", line, err)
	}
	var out strings.Builder
	begun := false
	for {
		s, err := g.rd.ReadString('\n')
		if err != nil {
			return out.String(), fmt.Errorf("guest command %q: %w (output so far %q)", line, err, out.String())
		}
		s = strings.TrimRight(s, "\r\n")
		switch {
		case s == "@@XA-BEGIN-CMD@@":
			begun = true
		case strings.HasPrefix(s, "@@XA-END-CMD rc="):
			rc := strings.TrimSuffix(strings.TrimPrefix(s, "@@XA-END-CMD rc="), "@@")
			if rc != "0" {
				return out.String(), fmt.Errorf("guest command %q: exit status %s: %s", line, rc, out.String())
			}
			return out.String(), nil
		case begun:
			out.WriteString(s + "\n")
		}
	}
}

// Modules runs `cat /proc/modules` in the guest and returns the first
// field of each line, in order.
func (g *Guest) Modules() ([]string, error) {
	out, err := g.Run("cat /proc/modules", 60*time.Second)
	if err != nil {
		return nil, err
	}
	return ModuleNames(out), nil
}

// ModuleNames returns the first word of each non-blank line.
func ModuleNames(procModules string) []string {
	var mods []string
	for _, line := range strings.Split(procModules, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			mods = append(mods, f[0])
		}
	}
	return mods
}

// Control sends one QMP command (such as "quit") with its arguments (nil
// for none) on the control socket and waits for its reply.
func (g *Guest) Control(command string, args any, timeout time.Duration) error {
	c, err := net.DialTimeout("unix", g.CtlSocket, timeout)
	if err != nil {
		return fmt.Errorf("qmp control socket: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	rd := bufio.NewReader(c)
	dec := func() (map[string]json.RawMessage, error) {
		for {
			line, err := rd.ReadBytes('\n')
			if err != nil {
				return nil, err
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(line, &m); err != nil {
				return nil, err
			}
			if _, ev := m["event"]; !ev {
				return m, nil
			}
		}
	}
	if _, err := dec(); err != nil { // greeting
		return fmt.Errorf("qmp control socket: greeting: %w", err)
	}
	for _, cmd := range []string{"qmp_capabilities", command} {
		req := map[string]any{"execute": cmd}
		if cmd == command && args != nil {
			req["arguments"] = args
		}
		b, _ := json.Marshal(req)
		if _, err := c.Write(append(b, '\n')); err != nil {
			return fmt.Errorf("qmp %s: %w", cmd, err)
		}
		m, err := dec()
		if err != nil {
			return fmt.Errorf("qmp %s: %w", cmd, err)
		}
		if e, ok := m["error"]; ok {
			return fmt.Errorf("qmp %s: %s", cmd, e)
		}
	}
	return nil
}
