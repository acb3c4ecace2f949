package runtime

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// Eval returns a statement's values and keeps the state between statements.
func TestEvalResults(t *testing.T) {
	var out strings.Builder
	rt := New(Config{Stdout: &out})
	defer rt.Close()
	for _, src := range []string{"x = 20", "print('p') return x + 1, 'two'"} {
		fn, err := rt.Compile(src, "stdin")
		if err != nil {
			t.Fatal(err)
		}
		vs, err := rt.Eval(t.Context(), fn)
		if err != nil {
			t.Fatal(err)
		}
		if src == "x = 20" && len(vs) != 0 {
			t.Errorf("%s: values %v", src, vs)
		}
		if src != "x = 20" && (len(vs) != 2 || vs[0] != lua.LNumber(21) || vs[1] != lua.LString("two")) {
			t.Errorf("%s: values %v", src, vs)
		}
	}
	// print's output is flushed when the statement ends.
	if out.String() != "p\n" {
		t.Errorf("output %q", out.String())
	}
	if rt.L.GetTop() != 0 {
		t.Errorf("%d values left on the stack", rt.L.GetTop())
	}
}

// Cancelling the context ends a busy Lua loop and a sleep, each within a
// second, and the state runs the next statement.
func TestEvalCancel(t *testing.T) {
	rt := New(Config{Stdout: &strings.Builder{}})
	defer rt.Close()
	for _, src := range []string{"while true do end", "sleep(60)", "while true do pcall(sleep, 1) end"} {
		fn, err := rt.Compile(src, "stdin")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		_, err = rt.Eval(ctx, fn)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: %v, want context.Canceled", src, err)
		}
		if d := time.Since(start); d > time.Second+100*time.Millisecond {
			t.Errorf("%s: ended %v after the cancel", src, d-100*time.Millisecond)
		}
	}
	fn, err := rt.Compile("return 1", "stdin")
	if err != nil {
		t.Fatal(err)
	}
	if vs, err := rt.Eval(t.Context(), fn); err != nil || len(vs) != 1 {
		t.Errorf("after cancels: %v, %v", vs, err)
	}
}
