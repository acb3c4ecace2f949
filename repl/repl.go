package repl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"

	"github.com/peterh/liner"
	lua "github.com/yuin/gopher-lua"

	"github.com/xascript/xascript/runtime"
)

// Config says what a REPL session runs in and talks to.
type Config struct {
	// Runtime is the Lua state statements run in, with the xascript API
	// bound to the target as for a script.
	Runtime *runtime.Runtime
	// Types lists struct and member names for completion (nil: none).
	Types TypeLister
	// Interactive: stdin and stdout are a terminal. The session then edits
	// lines (liner on the process's own stdin and stdout), completes, keeps
	// history and prompts; otherwise it reads In line by line, silently,
	// so that it can be scripted.
	Interactive bool
	In          io.Reader // read when not Interactive
	Out         io.Writer // values of expressions
	Err         io.Writer // errors and notices
	// HistoryPath is the history file ("" keeps none).
	HistoryPath string
	// Banner is printed first in an interactive session.
	Banner string
	Limits Limits // zero: DefaultLimits
}

// ErrInterrupted ends a session that is not interactive when SIGINT comes
// while it waits for input: there is no line to clear, the user wants out.
var ErrInterrupted = errors.New("interrupted")

// prompts: a new statement, and the continuation of one cut short.
const (
	prompt     = "> "
	contPrompt = ">> "
)

// chunkName names statements in error messages ("stdin:1: ...").
const chunkName = "stdin"

const helpText = `Type a Lua statement or expression; an expression's value is printed.
A statement left open (a function, a table, a for loop) continues on the >> prompt.
  help()           list the xascript API;  help("name") describes one function
  :load FILE       run FILE in this session (again): its functions replace the old ones,
                   and the modules it requires are read afresh
  :help            this text
  :quit            leave (or Ctrl-D)
Tab completes globals, fields after t. and t:, struct names in offsetof("...", sizeof("...",
has_member("...", and their member names. Ctrl-C clears the line, or stops a running statement.
`

type lineReader interface {
	Prompt(p string) (string, error)
}

type session struct {
	cfg    Config
	rt     *runtime.Runtime
	rd     lineReader
	sigs   chan os.Signal
	loaded map[string]bool // package.loaded's keys when the session began
}

// Run runs a REPL session until the input ends (Ctrl-D), :quit, or ctx is
// done (then it returns ctx's error). SIGINT is the session's while it
// runs: it clears the line at the prompt and stops a running statement.
func Run(ctx context.Context, cfg Config) (err error) {
	if cfg.Limits == (Limits{}) {
		cfg.Limits = DefaultLimits
	}
	s := &session{cfg: cfg, rt: cfg.Runtime, sigs: make(chan os.Signal, 1)}
	signal.Notify(s.sigs, os.Interrupt)
	defer signal.Stop(s.sigs)
	s.rt.SetSearchDir(".")
	s.loaded = s.loadedModules()

	var ln *liner.State
	if cfg.Interactive {
		ln = liner.NewLiner()
		defer ln.Close()
		ln.SetCtrlCAborts(true)
		ln.SetTabCompletionStyle(liner.TabPrints)
		c := &Completer{L: s.rt.L, Types: cfg.Types}
		ln.SetWordCompleter(c.Complete)
		if cfg.HistoryPath != "" {
			if f, err := os.Open(cfg.HistoryPath); err == nil {
				ln.ReadHistory(f)
				f.Close()
			}
			defer func() {
				if herr := s.saveHistory(ln); herr != nil {
					fmt.Fprintf(cfg.Err, "xascript repl: %v\n", herr)
				}
			}()
		}
		s.rd = ln
		if cfg.Banner != "" {
			fmt.Fprintln(cfg.Out, cfg.Banner)
		}
	} else {
		s.rd = &plainReader{r: bufio.NewReader(cfg.In)}
	}

	var chunk []string
	for {
		p := prompt
		if len(chunk) > 0 {
			p = contPrompt
		}
		line, err := s.read(ctx, p)
		switch {
		case errors.Is(err, liner.ErrPromptAborted):
			chunk = nil // Ctrl-C at the prompt: start afresh
			continue
		case errors.Is(err, io.EOF):
			if cfg.Interactive {
				fmt.Fprintln(cfg.Out)
			}
			return nil
		case err != nil:
			return err
		}
		if ln != nil && strings.TrimSpace(line) != "" {
			ln.AppendHistory(line)
		}
		if len(chunk) == 0 {
			cmd := strings.TrimSpace(line)
			if cmd == "" {
				continue
			}
			if strings.HasPrefix(cmd, ":") {
				if s.command(ctx, cmd) {
					return nil
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
				continue
			}
		}
		chunk = append(chunk, line)
		fn, err := s.compile(strings.Join(chunk, "\n"))
		if errors.Is(err, errIncomplete) {
			continue
		}
		chunk = nil
		if err != nil {
			fmt.Fprintln(cfg.Err, firstLine(err))
			continue
		}
		s.exec(ctx, func(ctx context.Context) ([]lua.LValue, error) { return s.rt.Eval(ctx, fn) })
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// read reads one line, giving up when ctx is done. The line editor cannot
// be interrupted, so it reads in a goroutine that is left behind then (the
// process is ending).
func (s *session) read(ctx context.Context, p string) (string, error) {
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := s.rd.Prompt(p)
		ch <- result{line, err}
	}()
	for {
		select {
		case r := <-ch:
			return r.line, r.err
		case <-ctx.Done():
			return "", ctx.Err()
		case <-s.sigs:
			// At an interactive prompt Ctrl-C is a key (liner turns
			// ISIG off), so a SIGINT here came from kill: ignore it.
			if !s.cfg.Interactive {
				return "", ErrInterrupted
			}
		}
	}
}

// compile compiles src as an expression whose value is printed, else as a
// statement ("=x" is short for "return x", as in lua(1)). The error is
// errIncomplete when either reading ended too soon ("1 +", "for i = 1, 2
// do"): more lines may complete it.
func (s *session) compile(src string) (*lua.LFunction, error) {
	if rest, ok := strings.CutPrefix(src, "="); ok {
		src = rest
	}
	fn, exprErr := s.rt.Compile("return "+src, chunkName)
	if exprErr == nil {
		return fn, nil
	}
	fn, err := s.rt.Compile(src, chunkName)
	if err == nil {
		return fn, nil
	}
	if incomplete(exprErr) || incomplete(err) {
		return nil, errIncomplete
	}
	return nil, err
}

var errIncomplete = errors.New("incomplete statement")

// incomplete reports whether a compile error says the chunk ended too soon
// (gopher-lua reports those "at EOF"; Lua's own parser says "<eof>"), so
// more lines may complete it. A string cannot continue on the next line.
func incomplete(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return (strings.Contains(msg, " at EOF:") || strings.Contains(msg, "<eof>")) && !strings.Contains(msg, "unterminated string")
}

// exec runs one statement (or :load) with its own context, which a SIGINT
// cancels, and prints its values or its error.
func (s *session) exec(ctx context.Context, run func(context.Context) ([]lua.LValue, error)) {
	for len(s.sigs) > 0 { // a SIGINT that came before this statement is not for it
		<-s.sigs
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	var interrupted atomic.Bool
	go func() {
		select {
		case <-s.sigs:
			interrupted.Store(true)
			cancel()
		case <-done:
		}
	}()
	results, err := run(sctx)
	close(done)
	if err != nil {
		if interrupted.Load() {
			fmt.Fprintln(s.cfg.Err, "interrupted")
		} else if ctx.Err() == nil {
			fmt.Fprintln(s.cfg.Err, firstLine(err))
		}
		return
	}
	if len(results) == 0 {
		return
	}
	parts := make([]string, len(results))
	for i, v := range results {
		parts[i] = Format(s.rt.L, v, s.cfg.Limits)
	}
	fmt.Fprintln(s.cfg.Out, strings.Join(parts, "\t"))
}

// command runs a ":" command; it reports whether the session ends.
func (s *session) command(ctx context.Context, cmd string) (quit bool) {
	name, arg, _ := strings.Cut(cmd, " ")
	arg = strings.TrimSpace(arg)
	switch name {
	case ":quit", ":q", ":exit":
		return true
	case ":help", ":h":
		fmt.Fprint(s.cfg.Out, helpText)
	case ":load", ":l":
		if arg == "" {
			fmt.Fprintln(s.cfg.Err, ":load needs a file: :load FILE.lua")
			return false
		}
		s.forgetModules()
		s.exec(ctx, func(ctx context.Context) ([]lua.LValue, error) {
			return nil, s.rt.EvalFile(ctx, arg, ".")
		})
	default:
		fmt.Fprintf(s.cfg.Err, "unknown command %s; :help lists them\n", name)
	}
	return false
}

// loadedModules lists package.loaded's keys: the standard libraries.
func (s *session) loadedModules() map[string]bool {
	keys := map[string]bool{}
	if t, ok := s.packageLoaded(); ok {
		t.ForEach(func(k, _ lua.LValue) { keys[k.String()] = true })
	}
	return keys
}

// forgetModules drops the modules required since the session began, so that
// a :load's require reads the library as it is now.
func (s *session) forgetModules() {
	t, ok := s.packageLoaded()
	if !ok {
		return
	}
	var drop []lua.LValue
	t.ForEach(func(k, _ lua.LValue) {
		if !s.loaded[k.String()] {
			drop = append(drop, k)
		}
	})
	for _, k := range drop {
		t.RawSet(k, lua.LNil)
	}
}

func (s *session) packageLoaded() (*lua.LTable, bool) {
	pkg, ok := s.rt.L.GetGlobal("package").(*lua.LTable)
	if !ok {
		return nil, false
	}
	t, ok := pkg.RawGetString("loaded").(*lua.LTable)
	return t, ok
}

func (s *session) saveHistory(ln *liner.State) error {
	f, err := openHistory(s.cfg.HistoryPath)
	if err != nil {
		return err
	}
	if _, err := ln.WriteHistory(f); err != nil {
		f.Close()
		return fmt.Errorf("history: %w", err)
	}
	return f.Close()
}

// firstLine keeps an error's first line: the traceback is noise at a prompt.
func firstLine(err error) string {
	msg, _, _ := strings.Cut(err.Error(), "\n")
	return strings.TrimSpace(msg)
}

// plainReader reads lines from a pipe or file, without prompts.
type plainReader struct{ r *bufio.Reader }

// maxLine bounds one input line.
const maxLine = 1 << 20

func (p *plainReader) Prompt(string) (string, error) {
	var b strings.Builder
	for {
		frag, isPrefix, err := p.r.ReadLine()
		b.Write(frag)
		if err != nil {
			if b.Len() > 0 && errors.Is(err, io.EOF) {
				return b.String(), nil
			}
			return "", err
		}
		if b.Len() > maxLine {
			return "", fmt.Errorf("input line longer than %d bytes", maxLine)
		}
		if !isPrefix {
			return b.String(), nil
		}
	}
}
