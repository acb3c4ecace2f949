package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// progressRun runs `xascript info` on the committed ELF dump with every
// cache off, so that it decompresses the dump and derives the profile, and
// with work shown however quick it is. stderr gets the process's stderr.
func progressRun(t *testing.T, stderr io.Writer, extra ...string) {
	t.Helper()
	progressRunOn(t, "mem.elf.zst", stderr, extra...)
}

// progressRunOn is progressRun on the committed dump named dumpName.
func progressRunOn(t *testing.T, dumpName string, stderr io.Writer, extra ...string) {
	t.Helper()
	bin, err := exec.LookPath("xascript")
	if err != nil {
		t.Fatalf("the xascript command of testscript.Main: %v", err)
	}
	args := append([]string{"info", "--file", filepath.Join("..", "..", "testdata", "images", variant, dumpName),
		"--no-cache", "--no-profile-cache"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), progressDelayEnv+"=0", "XASCRIPT_CACHE_DIR="+t.TempDir())
	cmd.Stdout = io.Discard
	cmd.Stderr = stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("xascript %s did not end", strings.Join(args, " "))
	}
	if err != nil {
		t.Fatalf("xascript %s: %v", strings.Join(args, " "), err)
	}
}

// The lines long work leaves: one per step, however stderr is read. With
// --no-cache they do not promise that later runs will be quicker.
var (
	decompressedLine = regexp.MustCompile(`(?m)^xascript: mem\.elf\.zst: decompressed 128\.\d MiB in \d+\.\d s$`)
	profileLine      = regexp.MustCompile(`(?m)^xascript: kernel: profile derived from memory in \d+\.\d s$`)
)

// TestProgressNotTerminal: to a pipe or file, each long step is one line,
// written when it ends, and nothing else.
func TestProgressNotTerminal(t *testing.T) {
	var stderr bytes.Buffer
	progressRun(t, &stderr)
	got := stderr.String()
	if strings.ContainsAny(got, "\r\x1b") {
		t.Errorf("terminal controls in a non-terminal stderr: %q", got)
	}
	if len(decompressedLine.FindAllString(got, -1)) != 1 || len(profileLine.FindAllString(got, -1)) != 1 {
		t.Errorf("want one line for the decompression and one for the profile, got:\n%s", got)
	}
	for _, l := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
		if !decompressedLine.MatchString(l) && !profileLine.MatchString(l) {
			t.Errorf("stderr line %q is neither", l)
		}
	}
}

// TestProgressRawScan: a raw image has no CPU state, so the kernel is
// found by scanning RAM, a step of its own (nested in the profile's), with
// its own line.
func TestProgressRawScan(t *testing.T) {
	var stderr bytes.Buffer
	progressRunOn(t, "mem.raw.zst", &stderr)
	want := regexp.MustCompile(`^xascript: mem\.raw\.zst: decompressed 128\.\d MiB in \d+\.\d s\n` +
		`xascript: memory: scanned for the kernel 128\.0 MiB in \d+\.\d s\n` +
		`xascript: kernel: profile derived from memory in \d+\.\d s\n$`)
	if !want.MatchString(stderr.String()) {
		t.Errorf("stderr:\n%s", stderr.String())
	}
}

// TestProgressQuiet: --quiet shows nothing of the same work.
func TestProgressQuiet(t *testing.T) {
	var stderr bytes.Buffer
	progressRun(t, &stderr, "--quiet")
	if stderr.Len() != 0 {
		t.Errorf("--quiet wrote %q", stderr.String())
	}
}

// TestProgressTerminal: on a terminal (a pty here) the decompression is a
// bar redrawn in place with its percentage, rate and time left, replaced
// by the same final line at its end.
func TestProgressTerminal(t *testing.T) {
	master, slave, err := openPTY()
	if err != nil {
		t.Fatalf("no pty: %v", err)
	}
	defer master.Close()
	var screen bytes.Buffer
	read := make(chan struct{})
	go func() {
		io.Copy(&screen, master) // ends with EIO once the slave is closed and the child gone
		close(read)
	}()
	progressRun(t, slave)
	slave.Close()
	select {
	case <-read:
	case <-time.After(10 * time.Second):
		t.Fatal("the pty did not drain")
	}
	got := strings.ReplaceAll(screen.String(), "\r\n", "\n") // the tty's output processing
	// How far each redraw got depends on the machine's speed (the first
	// one may come before any byte is read); the figures themselves are
	// internal/progress's tests.
	bar := regexp.MustCompile(`\rxascript: mem\.elf\.zst: decompressing \[[= >]{24}\] +\d+%(  [0-9.]+ [KMG]?i?B/s  \d+:\d\d left|  0:00)\x1b\[K`)
	if !bar.MatchString(got) {
		t.Errorf("no decompression bar on the terminal: %q", got)
	}
	if !regexp.MustCompile(`\r\x1b\[Kxascript: mem\.elf\.zst: decompressed 128\.\d MiB in \d+\.\d s\n`).MatchString(got) {
		t.Errorf("the bar is not replaced by the final line: %q", got)
	}
	if !regexp.MustCompile(`\rxascript: kernel: (locating the kernel|decoding kallsyms|finding BTF|checking BTF) \d+:\d\d\x1b\[K`).MatchString(got) ||
		!regexp.MustCompile(`\r\x1b\[Kxascript: kernel: profile derived from memory in \d+\.\d s\n$`).MatchString(got) {
		t.Errorf("no profile phases, or no final line for them: %q", got)
	}
}

// openPTY opens a pseudo-terminal pair through /dev/ptmx.
func openPTY() (master, slave *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("unlockpt: %w", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("ptsname: %w", err)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, nil, errors.Join(errors.New("open the pty's slave"), err)
	}
	return master, slave, nil
}
