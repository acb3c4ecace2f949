package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// This file is the runtime's side of the REPL (package repl): statements
// compiled and run one at a time in the same state, each with its own
// context, their results handed back instead of dropped.

// Compile compiles src as a chunk named name without running it. The error
// is the parser's own, so that the REPL can tell a chunk cut short (an error
// "at EOF") from a wrong one.
func (r *Runtime) Compile(src, name string) (*lua.LFunction, error) {
	return r.L.Load(strings.NewReader(src), name)
}

// Eval runs fn as a script's main chunk is run (panic firewall, the event
// loop for the watches it set, output flushed), under ctx: cancelling ctx
// ends a binding that waits (sleep, list walks) and Lua code that loops
// (through LState.SetContext), so a REPL's Ctrl-C ends one statement and
// not the session. It returns fn's results. After a cancelled run the error
// wraps ctx's.
func (r *Runtime) Eval(ctx context.Context, fn *lua.LFunction) (results []lua.LValue, err error) {
	env := r.cfg.Env
	prevCtx := env.Ctx
	env.Ctx = ctx
	r.L.SetContext(ctx)
	base := r.L.GetTop()
	defer func() {
		if p := recover(); p != nil {
			err = &ScriptError{Msg: fmt.Sprintf("internal error: %v", p)}
		}
		r.L.SetTop(base)
		r.L.RemoveContext()
		env.Ctx = prevCtx
		if env.Loop != nil {
			env.Loop.Close()
		}
		if ferr := r.out.Flush(); err == nil && ferr != nil {
			err = fmt.Errorf("write output: %w", ferr)
		}
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
	}()
	r.L.Push(fn)
	if err := r.L.PCall(0, lua.MultRet, nil); err != nil {
		return nil, scriptError(err)
	}
	results = make([]lua.LValue, 0, r.L.GetTop()-base)
	for i := base + 1; i <= r.L.GetTop(); i++ {
		results = append(results, r.L.Get(i))
	}
	if loop := env.Loop; loop != nil && loop.Pending() {
		if err := loop.Run(ctx, r.L, env.BlockingPoint); err != nil {
			return results, scriptError(err)
		}
	}
	return results, nil
}

// EvalFile runs the script at path in this state under ctx, as Eval runs a
// statement: its globals replace those of the same names. require searches
// the script's folder while it runs, then dir again.
func (r *Runtime) EvalFile(ctx context.Context, path, dir string) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read script: %w", err)
	}
	fn, err := r.Compile(string(src), path)
	if err != nil {
		return &ScriptError{Msg: strings.TrimSpace(err.Error())}
	}
	r.setSearchPath(filepath.Dir(path))
	defer r.setSearchPath(dir)
	r.setArgs(path, nil)
	_, err = r.Eval(ctx, fn)
	return err
}

// SetSearchDir makes require search dir (then Config.SearchPath), as it
// searches a script's own folder.
func (r *Runtime) SetSearchDir(dir string) { r.setSearchPath(dir) }
