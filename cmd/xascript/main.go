package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/xascript/xascript/internal/panicsite"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/xascript/xascript/bindings"
	"github.com/xascript/xascript/runtime"
	"github.com/xascript/xascript/scripts"
)

var version = "0.1.0"

// Exit statuses.
const (
	exitOK     = 0
	exitScript = 1
	exitUsage  = 2
	exitTarget = 3
	// exitInternal is a bug: a panic that escaped the layers below
	// (sysexits.h's EX_SOFTWARE, "internal software error").
	exitInternal = 70
	// exitInterrupted and exitTerminated are the shell's 128+SIGINT and
	// 128+SIGTERM.
	exitInterrupted = 130
	exitTerminated  = 143
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: tests call it directly. Every stage
// runs under the panic firewall (recoverPanic); stage says which one is
// under way.
func run(args []string, stdout, stderr io.Writer) (code int) {
	stage := "reading the command line"
	defer recoverPanic(&stage, stderr, &code)
	var o options
	fs := newFlagSet(&o)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(stderr, "xascript: %v\nRun 'xascript --help' for usage.\n", err)
		return exitUsage
	}
	if o.help {
		usage(stdout, fs)
		return exitOK
	}
	if o.version {
		fmt.Fprintf(stdout, "xascript %s (Lua API %s)\n", version, bindings.APIVersion)
		return exitOK
	}
	multi := o.splitTargets()
	pos := fs.Args()
	var scriptArgs []string
	if dash := fs.ArgsLenAtDash(); dash >= 0 {
		pos, scriptArgs = fs.Args()[:dash], fs.Args()[dash:]
	}
	if err := checkLibs(o.libs); err != nil {
		fmt.Fprintf(stderr, "xascript: %v\n", err)
		return exitUsage
	}
	if len(pos) == 0 {
		fmt.Fprintln(stderr, "xascript: no script given\nRun 'xascript --help' for usage.")
		return exitUsage
	}
	if multi && len(pos) == 1 && slices.Contains([]string{"info", "bench", "profile", "list"}, pos[0]) {
		fmt.Fprintf(stderr, "xascript: %s takes one target (several run only a script)\n", pos[0])
		return exitUsage
	}
	if pos[0] == "list" && len(pos) == 1 {
		enterStage(&stage, "the list command")
		return runList(&o, stdout, stderr)
	}
	if pos[0] == "info" && len(pos) == 1 {
		enterStage(&stage, "the info command")
		return runInfo(&o, stdout, stderr)
	}
	if pos[0] == "bench" && len(pos) == 1 {
		enterStage(&stage, "the bench command")
		return runBench(&o, stdout, stderr)
	}
	if pos[0] == "profile" && len(pos) == 1 {
		enterStage(&stage, "the profile command")
		return runProfile(&o, stdout, stderr)
	}
	if pos[0] == "repl" && len(pos) == 1 {
		enterStage(&stage, "the repl command")
		return runREPL(&o, stdout, stderr)
	}
	script := pos[0]
	scriptArgs = append(pos[1:], scriptArgs...)
	if _, err := os.Stat(script); err != nil {
		fmt.Fprintf(stderr, "xascript: script %s: %v\n", script, errors.Unwrap(err))
		return exitUsage
	}
	if multi {
		enterStage(&stage, "running the script on several guests")
		return runMulti(&o, script, scriptArgs, stdout, stderr)
	}
	if !o.targetGiven() {
		if code := refuseTargetless(script, stderr); code >= 0 {
			return code
		}
	}

	// Ctrl-C (or SIGTERM) cancels the context that sleep() and list walks
	// watch, so a polling monitor ends through its normal error path (and
	// a guest held by --pause is resumed); a second Ctrl-C kills at once.
	disk, err := openDisk(context.Background(), &o, stderr)
	if err != nil {
		printError(stderr, "xascript", err, o.verbose)
		if errors.Is(err, errDiskUsage) || errors.Is(err, errDriveUsage) {
			return exitUsage
		}
		return exitTarget
	}
	var shutdownDisk func()
	if disk != nil {
		defer disk.Close()
		shutdownDisk = disk.Shutdown
	}
	ctx, signalled, stop := interruptContextAfter(shutdownDisk)
	defer stop()
	env := &bindings.Env{Ctx: ctx, GuestName: o.guestName(), RecordTime: o.recordsLive(), JSON: o.json, AllowWrite: o.allowWrite}
	if disk != nil {
		env.Disk = diskWatcher{disk}
	}
	switch {
	case o.memoryGiven() && o.dom != "" && o.servesGuestDisk():
		// The domain starts after xascript (`xl create` needs the disk):
		// the script runs at once and its first memory access waits.
		w := &waitingGuest{ctx: ctx, o: &o, stderr: stderr, open: openGuest, beforeWait: env.BlockingPoint}
		defer w.Close()
		env.Guest = w
	case o.memoryGiven():
		enterStage(&stage, "opening the target")
		g, err := openGuestForDisk(ctx, &o, stderr)
		if err != nil {
			printError(stderr, "xascript", err, o.verbose)
			return exitTarget
		}
		defer g.Close()
		env.Guest = g.kernel
	case o.symbols != "" || o.btf != "":
		fmt.Fprintln(stderr, "xascript: --symbols and --btf need a target: "+giveTarget)
		return exitUsage
	}

	enterStage(&stage, "running the script")
	rt := runtime.New(runtime.Config{Stdout: stdout, Env: env, SearchPath: requirePath(o.libs), Libs: scripts.Libs()})
	defer rt.Close()
	if err := rt.RunFile(script, scriptArgs); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "xascript: interrupted")
			return signalled()
		}
		printError(stderr, "xascript", err, o.verbose)
		return exitScript
	}
	if o.nbd != "" || o.nbdDevice != "" {
		// xascript is the guest's disk: it goes on serving when the script
		// is done, until it is told to stop.
		if !o.quiet && ctx.Err() == nil && !disk.Stopping() {
			fmt.Fprintf(stderr, "xascript: script done; serving %s until interrupted\n", o.disk)
		}
		<-ctx.Done()
		return signalled()
	}
	if o.drive != "" && disk.Stopping() {
		// A signal stopped the watches, which ended the script: exit as
		// the signal says, once the disk's last events are delivered.
		<-ctx.Done()
		return signalled()
	}
	return exitOK
}

func searchPath() []string {
	var dirs []string
	for _, d := range filepath.SplitList(os.Getenv("XASCRIPT_PATH")) {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// oneLine keeps the first line of an error: the reason, with file:line for
// script errors. The traceback is noise for a user who wrote a ten-line
// script.
func oneLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// enterStage records the stage run is entering, for the panic firewall's
// message, and gives tests their hook.
func enterStage(stage *string, name string) {
	*stage = name
	if testStageHook != nil {
		testStageHook(name)
	}
}

// testStageHook, when a test sets it, is called as each stage begins: a
// test panics from it to stand in for a bug in the layers below.
var testStageHook func(stage string)

// recoverPanic is the last line of defence: a panic that escaped every
// layer below (a parser bug on hostile input, say) becomes one line naming
// the stage, the layer whose code panicked and where, and exit status
// exitInternal, instead of a Go stack trace. It is not a substitute for the
// layers' own checks, and it sees only this goroutine: a goroutine of the
// runtime or of a live target has to recover on its own.
func recoverPanic(stage *string, stderr io.Writer, code *int) {
	p := recover()
	if p == nil {
		return
	}
	msg := strings.ReplaceAll(strings.TrimSpace(fmt.Sprint(p)), "\n", " ")
	fmt.Fprintf(stderr, "xascript: internal error in %s (%s): %s; please report\n", *stage, panicsite.Where(), msg)
	*code = exitInternal
}
