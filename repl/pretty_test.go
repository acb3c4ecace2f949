package repl

import (
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
	luar "layeh.com/gopher-luar"

	"github.com/xascript/xascript/runtime"
)

// eval runs a Lua expression in a runtime with the xascript API (no target)
// and formats its value.
func eval(t *testing.T, rt *runtime.Runtime, expr string, lim Limits) string {
	t.Helper()
	fn, err := rt.Compile("return "+expr, "test")
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	vs, err := rt.Eval(t.Context(), fn)
	if err != nil || len(vs) != 1 {
		t.Fatalf("%s: %v, %d values", expr, err, len(vs))
	}
	return Format(rt.L, vs[0], lim)
}

func TestFormat(t *testing.T) {
	rt := runtime.New(runtime.Config{Stdout: &strings.Builder{}})
	defer rt.Close()
	for _, tc := range []struct{ expr, want string }{
		{`nil`, `nil`},
		{`true`, `true`},
		{`42`, `42`},
		{`1.5`, `1.5`},
		// Top-level text prints as it is (help() output reads as text)...
		{`"two\nlines"`, "two\nlines"},
		// ...unless a terminal would act on it.
		{`"a\027[2Jb"`, `"a\027[2Jb"`},
		{`"\0001"`, `"\0001"`}, // three digits: the 1 is not read into the escape
		{`addr(0xffff)`, `0xffff`},
		{`addr(1):shl(63)`, `0x8000000000000000`},
		{`{}`, `{}`},
		{`{1, 2, 3}`, `{1, 2, 3}`},
		{`{b = 2, a = "x", [10] = true, ["not ident"] = 1, ["end"] = 0}`,
			`{a = "x", b = 2, ["end"] = 0, ["not ident"] = 1, [10] = true}`},
		{`{p = addr(0x1000), s = "q\"uote"}`, `{p = 0x1000, s = "q\"uote"}`},
		{`{1, {2}, k = {x = 1}}`, "{\n  1,\n  {2},\n  k = {x = 1},\n}"},
	} {
		if got := eval(t, rt, tc.expr, DefaultLimits); got != tc.want {
			t.Errorf("%s\n got %q\nwant %q", tc.expr, got, tc.want)
		}
	}
}

func TestFormatLimits(t *testing.T) {
	rt := runtime.New(runtime.Config{Stdout: &strings.Builder{}})
	defer rt.Close()
	lim := Limits{Depth: 2, Entries: 3, Total: 100}
	for _, tc := range []struct{ expr, want string }{
		// Entries past the limit are counted, array part and keys alike.
		{`{1, 2, 3, 4, 5}`, `{1, 2, 3, -- 2 more}`},
		{`{a = 1, b = 2, c = 3, d = 4}`, `{a = 1, b = 2, c = 3, -- 1 more}`},
		// Tables deeper than Depth print as {...}.
		{`{{{{1}}}}`, "{\n  {\n    {...},\n  },\n}"},
		// Empty tables are flat: they do not break a table into lines.
		{`{{{}}}`, "{\n  {{}},\n}"},
	} {
		if got := eval(t, rt, tc.expr, lim); got != tc.want {
			t.Errorf("%s\n got %q\nwant %q", tc.expr, got, tc.want)
		}
	}
	// A table that holds itself ends in <cycle>, not in a stack overflow;
	// a table seen twice but not inside itself prints twice.
	fn, err := rt.Compile(`t = {name = "loop"}; t.self = t; u = {}; return t, {u, u}`, "test")
	if err != nil {
		t.Fatal(err)
	}
	vs, err := rt.Eval(t.Context(), fn)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := Format(rt.L, vs[0], DefaultLimits), `{name = "loop", self = <cycle>}`; got != want {
		t.Errorf("cycle: got %q, want %q", got, want)
	}
	if got, want := Format(rt.L, vs[1], DefaultLimits), `{{}, {}}`; got != want {
		t.Errorf("shared table: got %q, want %q", got, want)
	}
	// Total bounds a wide and deep table as a whole: 50 tables of 50.
	fn, err = rt.Compile(`local t = {} for i = 1, 50 do t[i] = {} for j = 1, 50 do t[i][j] = {j} end end return t`, "test")
	if err != nil {
		t.Fatal(err)
	}
	vs, err = rt.Eval(t.Context(), fn)
	if err != nil {
		t.Fatal(err)
	}
	out := Format(rt.L, vs[0], Limits{Depth: 4, Entries: 50, Total: 200})
	if n := strings.Count(out, "\n"); n > 300 {
		t.Errorf("Total 200: %d lines printed", n)
	}
	if !strings.Contains(out, "{...}") {
		t.Errorf("Total 200: nothing cut short:\n%s", out)
	}
}

// A Go object that gopher-luar wraps (guest_info() is one) prints its
// fields under their Lua names.
func TestFormatGoObject(t *testing.T) {
	rt := runtime.New(runtime.Config{Stdout: &strings.Builder{}})
	defer rt.Close()
	type info struct {
		Paging  string     `luar:"paging"`
		Symbols int        `luar:"symbols"`
		Root    lua.LValue `luar:"root"`
		Hidden  string     `luar:"-"`
		secret  string
	}
	fn, err := rt.Compile("return addr(0x1000)", "test")
	if err != nil {
		t.Fatal(err)
	}
	root, err := rt.Eval(t.Context(), fn)
	if err != nil {
		t.Fatal(err)
	}
	v := luar.New(rt.L, &info{Paging: "4-level", Symbols: 7, Root: root[0], Hidden: "h", secret: "s"})
	if got, want := Format(rt.L, v, DefaultLimits), `{paging = "4-level", symbols = 7, root = 0x1000}`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
