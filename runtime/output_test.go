package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
	"golang.org/x/sys/unix"

	"github.com/xascript/xascript/bindings"
)

// Output reaches the writer before every blocking point (here sleep), not
// only when the script ends; between blocking points a file or pipe gets it
// in blocks.
func TestOutputFlushedBeforeBlocking(t *testing.T) {
	var out strings.Builder
	var atBlock []string
	env := &bindings.Env{BeforeBlock: func() { atBlock = append(atBlock, out.String()) }}
	rt := New(Config{Stdout: &out, Env: env})
	defer rt.Close()
	var atProbe []string
	rt.L.SetGlobal("probe", rt.L.NewFunction(func(L *lua.LState) int {
		atProbe = append(atProbe, out.String())
		return 0
	}))
	src := `print("one"); probe(); sleep(0); print("two", 2); probe(); sleep(0.001); print("three")`
	if err := rt.RunString(src, "s.lua", nil); err != nil {
		t.Fatal(err)
	}
	// The caller's own BeforeBlock runs after the flush: it sees the lines.
	if want := []string{"one\n", "one\ntwo\t2\n"}; fmt.Sprint(atBlock) != fmt.Sprint(want) {
		t.Errorf("at the blocking points the writer had %q, want %q", atBlock, want)
	}
	// Between blocking points nothing is written (block buffering).
	if want := []string{"", "one\n"}; fmt.Sprint(atProbe) != fmt.Sprint(want) {
		t.Errorf("between blocking points the writer had %q, want %q", atProbe, want)
	}
	if out.String() != "one\ntwo\t2\nthree\n" {
		t.Errorf("at the end: %q", out.String())
	}
}

// Line-buffered output (a terminal) reaches the writer at every line's end.
func TestOutputLineBuffered(t *testing.T) {
	var out strings.Builder
	rt := New(Config{Stdout: &out, LineBuffered: true})
	defer rt.Close()
	var atProbe []string
	rt.L.SetGlobal("probe", rt.L.NewFunction(func(L *lua.LState) int {
		atProbe = append(atProbe, out.String())
		return 0
	}))
	if err := rt.RunString(`print("a"); probe(); print("b", "c"); probe()`, "l.lua", nil); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a\n", "a\nb\tc\n"}; fmt.Sprint(atProbe) != fmt.Sprint(want) {
		t.Errorf("writer had %q, want %q", atProbe, want)
	}
}

// A script that fails still gets its output out, and so does one that is
// interrupted in sleep.
func TestOutputFlushedOnError(t *testing.T) {
	for src, wantErr := range map[string]string{
		`print("found"); error("boom")`:     "e.lua:1: boom",
		`print("found"); sleep(3600)`:       "sleep: interrupted",
		`print("found"); local x = {} .. 1`: "cannot perform concat",
	} {
		// The interrupt comes while the script runs (one that came before
		// would let nothing run).
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		var out strings.Builder
		rt := New(Config{Stdout: &out, Env: &bindings.Env{Ctx: ctx}})
		err := rt.RunString(src, "e.lua", nil)
		if err == nil || !strings.Contains(err.Error(), wantErr) || out.String() != "found\n" {
			t.Errorf("%s: err %v, output %q", src, err, out.String())
		}
		rt.Close()
	}
}

// A terminal is detected (line-buffered); a pipe, a file and /dev/null (a
// character device without a termios) are not.
func TestTerminalDetection(t *testing.T) {
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open a pseudo-terminal: %v", err)
	}
	defer ptm.Close()
	var n int
	var ctlErr error
	sc, _ := ptm.SyscallConn()
	sc.Control(func(fd uintptr) {
		if ctlErr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ctlErr == nil {
			n, ctlErr = unix.IoctlGetInt(int(fd), unix.TIOCGPTN)
		}
	})
	if ctlErr != nil {
		t.Fatalf("unlock the pseudo-terminal: %v", ctlErr)
	}
	pts, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer pts.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	file, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	for _, tc := range []struct {
		name string
		f    *os.File
		tty  bool
	}{{"pty", pts, true}, {"pipe", pw, false}, {"file", file, false}, {"devnull", null, false}} {
		rt := New(Config{Stdout: tc.f})
		if rt.out.lineBuffered != tc.tty {
			t.Errorf("%s: line-buffered %v, want %v", tc.name, rt.out.lineBuffered, tc.tty)
		}
		rt.Close()
	}
}
