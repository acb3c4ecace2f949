package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/xascript/xascript/bindings"
	"github.com/xascript/xascript/internal/progress"
	"github.com/xascript/xascript/repl"
	"github.com/xascript/xascript/runtime"
	"github.com/xascript/xascript/scripts"
)

// runREPL is `xascript repl`: the target opened as for a script, then an
// interactive prompt (package repl) in the same runtime. SIGINT belongs to
// the prompt (it clears the line or stops a statement); SIGTERM ends the
// session, resuming a guest held by --pause on the way out.
func runREPL(o *options, stdout, stderr io.Writer) int {
	if o.disk != "" || o.nbd != "" || o.tapfifo != "" || o.diskAfter != "" {
		fmt.Fprintln(stderr, "xascript repl: --disk, --nbd, --tapfifo and --disk-after are for scripts; the REPL reads memory")
		return exitUsage
	}
	if !o.targetGiven() && (o.symbols != "" || o.btf != "" || o.dwarf != "" || o.isf != "") {
		fmt.Fprintln(stderr, "xascript repl: --symbols, --btf, --dwarf and --isf need a target: "+giveTarget)
		return exitUsage
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	defer signal.Stop(term)
	go func() {
		select {
		case <-term:
			cancel()
		case <-ctx.Done():
		}
	}()

	env := &bindings.Env{Ctx: ctx, AllowWrite: o.allowWrite}
	var types repl.TypeLister
	where := "no target (pure Lua and help(); give --file, --qemu or --dom for a guest)"
	if o.targetGiven() {
		g, err := openGuest(o)
		if err != nil {
			printError(stderr, "xascript repl", err, o.verbose)
			return exitTarget
		}
		defer g.Close()
		env.Guest = g.kernel
		types = g.kernel
		where = o.targetName()
	}
	rt := runtime.New(runtime.Config{Stdout: stdout, LineBuffered: true, Env: env, SearchPath: requirePath(o.libs), Libs: scripts.Libs()})
	defer rt.Close()
	// liner edits the process's own terminal: only when both ends are it.
	interactive := stdout == io.Writer(os.Stdout) && progress.IsTerminal(os.Stdin) && progress.IsTerminal(os.Stdout)
	err := repl.Run(ctx, repl.Config{
		Runtime: rt, Types: types, Interactive: interactive,
		In: os.Stdin, Out: stdout, Err: stderr,
		HistoryPath: repl.HistoryPath(),
		Banner:      fmt.Sprintf("xascript %s on %s. :help for help, Ctrl-D to leave.", version, where),
	})
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, repl.ErrInterrupted):
		return exitInterrupted
	case ctx.Err() != nil:
		fmt.Fprintln(stderr, "xascript repl: terminated")
		return exitTerminated
	}
	printError(stderr, "xascript repl", err, o.verbose)
	return exitScript
}
