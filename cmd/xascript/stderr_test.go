package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi/linux"
	"github.com/xascript/xascript/vmi/linux/kallsyms"

	"github.com/xascript/xascript/vmi/dump"
)

// An error is one line a person can act on: every line xascript writes to
// stderr in the transcripts is at most maxStderrLine bytes, except the
// details that --verbose (and info) print indented below an error: each is
// one rejected candidate, at most maxDetailLine.
const (
	maxStderrLine = 200
	maxDetailLine = 320
)

// stderrLogEnv names the file where runCheckingStderr records lines that
// are too long; checkStderrLines sets it for every transcript, and
// stderrRootEnv the checkout's root: the transcripts name scripts and
// images by absolute paths, which a user would give relative to it, so
// lines are measured with it cut out.
const (
	stderrLogEnv  = "XASCRIPT_TEST_LONG_STDERR"
	stderrRootEnv = "XASCRIPT_TEST_ROOT"
)

// runCheckingStderr is the xascript command of the transcripts: run, with
// every line written to stderr (by run and by anything writing to
// os.Stderr, like progress reports) measured on its way out.
func runCheckingStderr() int {
	log := os.Getenv(stderrLogEnv)
	if log == "" {
		return run(os.Args[1:], os.Stdout, os.Stderr)
	}
	real := os.Stderr
	pr, pw, err := os.Pipe()
	if err != nil {
		fmt.Fprintln(real, "xascript test: stderr pipe:", err)
		return 99
	}
	os.Stderr = pw
	done := make(chan struct{})
	go func() {
		defer close(done)
		var long []string
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(real, line)
			if root := os.Getenv(stderrRootEnv); root != "" {
				line = strings.ReplaceAll(line, root+string(filepath.Separator), "")
			}
			limit := maxStderrLine
			if strings.HasPrefix(line, "  ") {
				limit = maxDetailLine
			}
			if len(line) > limit {
				long = append(long, fmt.Sprintf("%d > %d bytes: xascript %s: %s", len(line), limit, strings.Join(os.Args[1:], " "), line))
			}
		}
		io.Copy(real, pr)
		if len(long) > 0 {
			f, err := os.OpenFile(log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
			if err == nil {
				fmt.Fprintln(f, strings.Join(long, "\n"))
				f.Close()
			}
		}
	}()
	code := run(os.Args[1:], os.Stdout, pw)
	pw.Close()
	<-done
	return code
}

// checkStderrLines makes the transcript fail when any xascript it ran wrote
// a stderr line longer than the bounds.
func checkStderrLines(env *testscript.Env) {
	log := filepath.Join(env.WorkDir, ".long-stderr-lines")
	env.Setenv(stderrLogEnv, log)
	env.Setenv(stderrRootEnv, abs(env.T().(testing.TB), filepath.Join("..", "..")))
	env.Defer(func() {
		if b, err := os.ReadFile(log); err == nil && len(b) > 0 {
			env.T().Fatal("stderr lines too long for a person to act on:\n" + string(b))
		}
	})
}

var (
	noKallsymsOnce sync.Once
	noKallsymsPath string
	noKallsymsErr  error
)

// writeNoKallsyms copies the raw image with the start of the kernel's
// kallsyms_names zeroed: every banner in memory then leads to tables that
// do not decode, the case whose error used to run to kilobytes.
func writeNoKallsyms(rawPath, out string) error {
	t, err := dump.Open(rawPath, dump.Options{Options: unpack.Options{CacheDir: sharedDumps}})
	if err != nil {
		return err
	}
	defer t.Close()
	var names uint64
	err = linux.FindKernel(t, func(r linux.Region) error {
		res, err := kallsyms.Find(linux.PhysReaderAt{Phys: t, Base: r.Start, Size: r.Size}, int64(r.Size), kallsyms.Options{})
		if err != nil {
			return err
		}
		off, ok := res.Tables["kallsyms_names"]
		if !ok {
			return fmt.Errorf("no kallsyms_names offset")
		}
		names = r.Start + uint64(off)
		return nil
	})
	if err != nil {
		return err
	}
	f, err := unpack.Open(rawPath, unpack.Options{CacheDir: sharedDumps})
	if err != nil {
		return err
	}
	defer f.Close()
	img := append([]byte(nil), f.Data...)
	const damage = 64 << 10
	if names+damage > uint64(len(img)) {
		return fmt.Errorf("kallsyms_names at pa %#x outside the raw image", names)
	}
	clear(img[names : names+damage])
	return os.WriteFile(out, img, 0o644)
}
