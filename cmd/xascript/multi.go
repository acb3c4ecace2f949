package main

// Many guests at once: `xascript mon.lua --dom web1 --dom web2` (or --dom
// all, --qemu A --qemu B, --file A --file B, or a mix) runs the script once
// per guest, each in its own Lua state on its own goroutine with its own
// bindings.Env, all writing to one stdout through lineMux, which keeps every
// line whole and tags it with its guest.

import (
	"bytes"
	"context"
	"fmt"
	"github.com/xascript/xascript/internal/panicsite"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/xascript/xascript/bindings"
	"github.com/xascript/xascript/internal/progress"
	"github.com/xascript/xascript/internal/record"
	"github.com/xascript/xascript/runtime"
	"github.com/xascript/xascript/scripts"
	"github.com/xascript/xascript/vmi/xen"
)

// splitTargets turns the repeatable target flags into the single ones the
// commands read (o.file, o.qemu, o.dom), and reports whether several
// guests of one kind were named: a target flag given more than once, or
// --dom all. Flags of different kinds (--file with --dom) stay one target
// each, which opening refuses ("give one target").
func (o *options) splitTargets() (multi bool) {
	kinds := 0
	for _, vals := range [][]string{o.files, o.qemus, o.doms} {
		if len(vals) > 0 {
			kinds++
		}
	}
	if kinds == 1 && (len(o.files)+len(o.qemus)+len(o.doms) > 1 || slices.Contains(o.doms, "all")) {
		return true
	}
	for _, p := range []struct {
		vals []string
		one  *string
	}{{o.files, &o.file}, {o.qemus, &o.qemu}, {o.doms, &o.dom}} {
		if len(p.vals) > 0 {
			*p.one = p.vals[0]
		}
	}
	return false
}

// guestSpec is one guest of a multi-guest run: the flag that named it, the
// flag's value, and the name its output is tagged with.
type guestSpec struct {
	flag  string // "file", "qemu" or "dom"
	value string
	name  string
}

// listXen is xen.List; tests replace it.
var listXen = xen.List

// expandTargets lists the guests of a multi-guest run, in command-line
// order, with --dom all expanded to every
// running domU, and names them: a domain by its xenstore name, a QEMU guest
// by its -name (else its socket), a dump by its file name (its path as
// given when two have the same name). Names left equal are made unique
// with #2, #3, ....
func expandTargets(o *options) ([]guestSpec, error) {
	var specs []guestSpec
	bases := map[string]int{}
	for _, f := range o.files {
		bases[filepath.Base(f)]++
	}
	for _, f := range o.files {
		name := filepath.Base(f)
		if bases[name] > 1 {
			name = f // dir1/mem.elf and dir2/mem.elf
		}
		specs = append(specs, guestSpec{flag: "file", value: f, name: name})
	}
	for _, q := range o.qemus {
		name := q
		if p := probeQMP(q, qmpProbeTimeout); p.err == nil && p.Name != "" {
			name = p.Name
		}
		specs = append(specs, guestSpec{flag: "qemu", value: q, name: name})
	}
	for _, d := range o.doms {
		if d != "all" {
			specs = append(specs, guestSpec{flag: "dom", value: d, name: d})
			continue
		}
		doms, err := listXen()
		if err != nil {
			return nil, fmt.Errorf("--dom all: %w", err)
		}
		n := 0
		for _, dom := range doms {
			if dom.ID == 0 || !dom.Alive() {
				continue // dom0 is where we run; a dying domain cannot be read
			}
			name := dom.Name
			if name == "" {
				name = fmt.Sprint(dom.ID)
			}
			specs = append(specs, guestSpec{flag: "dom", value: fmt.Sprint(dom.ID), name: name})
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("--dom all: no running domU (xascript list shows the domains)")
		}
	}
	seen := map[string]int{}
	for i := range specs {
		seen[specs[i].name]++
		if k := seen[specs[i].name]; k > 1 {
			specs[i].name = fmt.Sprintf("%s#%d", specs[i].name, k)
		}
	}
	return specs, nil
}

// runMulti runs script on every guest the command line names. Exit status:
// the highest of the guests' statuses (0 when every guest's run ended
// well; 130 or 143 when interrupted).
func runMulti(o *options, script string, args []string, stdout, stderr io.Writer) int {
	if o.disk != "" || o.nbd != "" || o.tapfifo != "" || o.diskAfter != "" || o.drive != "" {
		fmt.Fprintln(stderr, "xascript: --disk watches one guest's disk: give one target with it")
		return exitUsage
	}
	ctx, signalled, stop := interruptContext()
	defer stop()
	specs, err := expandTargets(o)
	if err != nil {
		printError(stderr, "xascript", err, o.verbose)
		return exitTarget
	}
	open := func(s guestSpec) (*guest, error) {
		one := *o
		one.file, one.qemu, one.dom = "", "", ""
		switch s.flag {
		case "file":
			one.file = s.value
		case "qemu":
			one.qemu = s.value
		default:
			one.dom = s.value
		}
		return openGuest(&one)
	}
	codes := runGuests(ctx, specs, open, multiConfig{
		script: script, args: args, stdout: stdout, stderr: stderr,
		json: o.json, libs: o.libs, verbose: o.verbose, lineBuffered: progress.IsTerminal(stdout), allowWrite: o.allowWrite,
		interrupted: signalled,
	})
	worst := exitOK
	for _, c := range codes {
		worst = max(worst, c)
	}
	return worst
}

// multiConfig is what runGuests needs besides the guests.
type multiConfig struct {
	script       string
	args         []string
	stdout       io.Writer
	stderr       io.Writer
	json         bool // records are JSON Lines; error records go to stdout too
	libs         []string
	verbose      bool
	lineBuffered bool
	allowWrite   bool // --allow-write: the write bindings may write
	// interrupted gives the status of the signal that cancelled the
	// context.
	interrupted func() int
}

// runGuests opens each guest and runs the script on it, all at once, and
// returns each guest's exit status. A guest that fails (it cannot be
// opened, its script fails, it is destroyed or its QEMU exits mid-run) ends
// its own run with an error line naming it, on stderr (and, with --json, an
// error record on stdout); the others go on. Cancelling ctx ends every run;
// each guest is closed (a guest paused by --pause resumed) as its run ends.
func runGuests(ctx context.Context, specs []guestSpec, open func(guestSpec) (*guest, error), cfg multiConfig) []int {
	out := &lineMux{w: cfg.stdout}
	errs := &lineMux{w: cfg.stderr}
	tagged := len(specs) > 1
	codes := make([]int, len(specs))
	var wg sync.WaitGroup
	for i, s := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, err := runGuest(ctx, s, open, out, tagged, cfg)
			codes[i] = code
			if err == nil {
				return
			}
			if tagged {
				errs.writeLine(fmt.Sprintf("xascript: [%s] %s", s.name, errLine(err, cfg.verbose)))
			} else {
				var b strings.Builder
				printError(&b, "xascript", err, cfg.verbose)
				errs.writeLine(strings.TrimSuffix(b.String(), "\n"))
			}
			if cfg.json {
				// The emit encoder's JSON Line, so that a reader of the
				// records sees the failure among them.
				e := record.Encoder{JSON: true}
				if rec, err := e.Append(nil, record.Record{{Key: "guest", Value: s.name}, {Key: "error", Value: oneLine(err)}, {Key: "status", Value: int64(code)}}); err == nil {
					out.write(rec)
				}
			}
		}()
	}
	wg.Wait()
	return codes
}

// errLine is printError's message without its prefix.
func errLine(err error, verbose bool) string {
	var b strings.Builder
	printError(&b, "", err, verbose)
	return strings.TrimSuffix(strings.TrimPrefix(b.String(), ": "), "\n")
}

// runGuest is one guest's run, on its own goroutine: its status, and the
// error to report (nil when there is none to report).
func runGuest(ctx context.Context, s guestSpec, open func(guestSpec) (*guest, error), out *lineMux, tagged bool, cfg multiConfig) (code int, err error) {
	// A panic here would take every guest's run down with it: this
	// goroutine has its own firewall (recoverPanic sees only main's).
	stage := "opening the target"
	defer func() {
		if p := recover(); p != nil {
			msg := strings.ReplaceAll(strings.TrimSpace(fmt.Sprint(p)), "\n", " ")
			code, err = exitInternal, fmt.Errorf("internal error in %s (%s): %s; please report", stage, panicsite.Where(), msg)
		}
	}()
	g, err := open(s)
	if err != nil {
		if ctx.Err() != nil {
			return cfg.interrupted(), nil
		}
		return exitTarget, err
	}
	defer g.Close()
	stage = "running the script"
	prefix := ""
	if tagged {
		prefix = "[" + s.name + "] "
	}
	w := &guestWriter{mux: out, prefix: prefix, json: cfg.json}
	env := &bindings.Env{Ctx: ctx, Guest: g.kernel, GuestName: s.name, RecordTime: s.flag != "file", JSON: cfg.json, AllowWrite: cfg.allowWrite}
	rt := runtime.New(runtime.Config{Stdout: w, LineBuffered: cfg.lineBuffered, Env: env, SearchPath: requirePath(cfg.libs), Libs: scripts.Libs()})
	err = rt.RunFile(cfg.script, cfg.args)
	rt.Close()
	w.Close()
	switch {
	case err != nil && ctx.Err() != nil:
		return cfg.interrupted(), nil
	case err != nil:
		return exitScript, err
	}
	return exitOK, nil
}

// lineMux is the one writer that every guest's output goes through: a
// lock held for whole lines, so that lines of different guests never mix.
type lineMux struct {
	mu sync.Mutex
	w  io.Writer
}

// write writes complete lines (p ends with a newline).
func (m *lineMux) write(p []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, err := m.w.Write(p)
	return err
}

func (m *lineMux) writeLine(s string) { m.write([]byte(s + "\n")) }

// maxPartialLine bounds what a guestWriter holds of a line that has not
// ended: a longer one is written out as lines of this length.
const maxPartialLine = 64 << 10

// guestWriter is one guest's stdout (its runtime's buffered output writes
// into it): it passes whole lines to the lineMux, each prefixed with the
// guest's tag, and holds a line's beginning until its end arrives. With
// --json a line that is a JSON object (an emit record, which names its
// guest itself) is not prefixed, so that the output stays JSON lines.
type guestWriter struct {
	mux     *lineMux
	prefix  string
	json    bool
	partial []byte
}

func (w *guestWriter) Write(p []byte) (int, error) {
	n := len(p)
	var b bytes.Buffer
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.partial = append(w.partial, p...)
			for len(w.partial) >= maxPartialLine {
				w.line(&b, w.partial[:maxPartialLine])
				w.partial = append(w.partial[:0], w.partial[maxPartialLine:]...)
			}
			break
		}
		line := p[:i]
		if len(w.partial) > 0 {
			line = append(w.partial, line...)
			w.partial = w.partial[:0]
		}
		w.line(&b, line)
		p = p[i+1:]
	}
	if b.Len() == 0 {
		return n, nil
	}
	if err := w.mux.write(b.Bytes()); err != nil {
		return 0, err
	}
	return n, nil
}

func (w *guestWriter) line(b *bytes.Buffer, line []byte) {
	if !(w.json && len(line) > 0 && line[0] == '{') {
		b.WriteString(w.prefix)
	}
	b.Write(line)
	b.WriteByte('\n')
}

// Close writes a last line that did not end.
func (w *guestWriter) Close() error {
	if len(w.partial) == 0 {
		return nil
	}
	var b bytes.Buffer
	w.line(&b, w.partial)
	w.partial = nil
	return w.mux.write(b.Bytes())
}

// qmpProbeTimeout bounds each QMP socket's probe (list, and naming a
// --qemu guest): a socket whose QEMU is busy with another client answers
// no greeting.
const qmpProbeTimeout = 2 * time.Second
