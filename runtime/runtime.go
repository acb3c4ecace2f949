package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"github.com/xascript/xascript/bindings"
)

// Config says what a Runtime runs against and where its output goes.
type Config struct {
	// Stdout receives print's lines: block-buffered, flushed before every
	// blocking point and when a script ends; line-buffered when it is a
	// terminal or LineBuffered is set.
	Stdout       io.Writer
	LineBuffered bool
	Env          *bindings.Env
	// SearchPath lists extra folders for require, searched after the
	// script's folder (the CLI passes its --lib folders, then
	// $XASCRIPT_PATH's).
	SearchPath []string
	// Libs holds the embedded shared libraries (name.lua at its root).
	Libs fs.FS
}

// Runtime is one Lua state with the xascript API installed.
type Runtime struct {
	L   *lua.LState
	out *output
	cfg Config
}

// New builds a Runtime. Close it when done.
func New(cfg Config) *Runtime {
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.Env == nil {
		cfg.Env = &bindings.Env{}
	}
	L := lua.NewState(lua.Options{IncludeGoStackTrace: false})
	r := &Runtime{L: L, out: newOutput(cfg.Stdout, cfg.LineBuffered), cfg: cfg}
	env := cfg.Env
	env.Output = r.out
	prev := env.BeforeBlock
	env.BeforeBlock = func() {
		r.out.Flush() // a failed write is reported when the script ends
		if prev != nil {
			prev()
		}
	}
	bindings.Register(L, env)
	L.SetGlobal("print", L.NewFunction(r.print))
	r.installSearcher()
	r.wrapRequire()
	return r
}

// Close flushes output and releases the Lua state.
func (r *Runtime) Close() error {
	err := r.out.Flush()
	r.L.Close()
	return err
}

// Flush writes buffered output.
func (r *Runtime) Flush() error { return r.out.Flush() }

// ScriptError is a failure inside a script: a Lua error or a runtime panic.
type ScriptError struct {
	Msg       string // first line carries file:line when Lua knows it
	Traceback string
}

func (e *ScriptError) Error() string { return e.Msg }

// RunFile runs the script at scriptPath with args as its `arg` table and `...`.
func (r *Runtime) RunFile(scriptPath string, args []string) (err error) {
	src, err := os.ReadFile(scriptPath)
	if err != nil {
		return fmt.Errorf("read script: %w", err)
	}
	r.setSearchPath(filepath.Dir(scriptPath))
	r.setArgs(scriptPath, args)
	return r.run(string(src), scriptPath, args)
}

// RunString runs src as a chunk named name (used by tests and -e).
func (r *Runtime) RunString(src, name string, args []string) error {
	r.setSearchPath(".")
	r.setArgs(name, args)
	return r.run(src, name, args)
}

func (r *Runtime) run(src, name string, args []string) (err error) {
	ctx := r.cfg.Env.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	interrupts, stopWatch := watchInterrupts(r.L, ctx)
	defer stopWatch()
	defer func() {
		if p := recover(); p != nil {
			err = &ScriptError{Msg: fmt.Sprintf("%s: internal error: %v", name, p)}
		}
		if r.cfg.Env.Loop != nil {
			r.cfg.Env.Loop.Close() // no source may wait for callbacks that will not run
		}
		if ferr := r.out.Flush(); err == nil && ferr != nil {
			err = fmt.Errorf("write output: %w", ferr)
		}
	}()
	fn, err := r.L.Load(strings.NewReader(src), name)
	if err != nil {
		return &ScriptError{Msg: strings.TrimSpace(err.Error())}
	}
	r.L.Push(fn)
	for _, a := range args {
		r.L.Push(lua.LString(a))
	}
	if err := r.L.PCall(len(args), lua.MultRet, nil); err != nil {
		return scriptError(err)
	}
	// A script that set watches keeps running: the event loop delivers their
	// events to its callbacks until nothing holds it.
	if loop := r.cfg.Env.Loop; loop != nil && loop.Pending() {
		interrupts.inLoop(loop)
		err := loop.Run(ctx, r.L, r.cfg.Env.BlockingPoint)
		interrupts.inLoop(nil)
		if err != nil {
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				return err
			}
			return scriptError(err)
		}
	}
	return nil
}

// scriptError turns a Lua failure into a ScriptError with file:line.
func scriptError(err error) error {
	var api *lua.ApiError
	if errors.As(err, &api) {
		return &ScriptError{Msg: luaErrorMessage(api), Traceback: api.StackTrace}
	}
	return &ScriptError{Msg: err.Error()}
}

func luaErrorMessage(api *lua.ApiError) string {
	if api.Object != nil {
		if s, ok := api.Object.(lua.LString); ok {
			return string(s)
		}
		return api.Object.String()
	}
	return api.Error()
}

// print writes its arguments, tab-separated, honouring __tostring, to the
// buffered output (Lua's own print goes straight to the process's stdout).
func (r *Runtime) print(L *lua.LState) int {
	n := L.GetTop()
	for i := 1; i <= n; i++ {
		if i > 1 {
			r.out.WriteByte('\t')
		}
		r.out.WriteString(L.ToStringMeta(L.Get(i)).String())
	}
	r.out.WriteByte('\n')
	r.out.EndRecord()
	return 0
}

func (r *Runtime) setArgs(script string, args []string) {
	t := r.L.NewTable()
	t.RawSetInt(0, lua.LString(script))
	for i, a := range args {
		t.RawSetInt(i+1, lua.LString(a))
	}
	r.L.SetGlobal("arg", t)
}

func (r *Runtime) setSearchPath(scriptDir string) {
	var parts []string
	for _, dir := range append([]string{scriptDir}, r.cfg.SearchPath...) {
		if dir == "" {
			continue
		}
		parts = append(parts, filepath.Join(dir, "?.lua"), filepath.Join(dir, "?", "init.lua"))
	}
	pkg := r.L.GetGlobal("package")
	if t, ok := pkg.(*lua.LTable); ok {
		r.L.SetField(t, "path", lua.LString(strings.Join(parts, ";")))
	}
}
