package bindings_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/xascript/xascript/bindings"
	"github.com/xascript/xascript/runtime"
)

// runEmit runs src with env and returns what it wrote and its error.
func runEmit(t *testing.T, env *bindings.Env, src string) (string, error) {
	t.Helper()
	var out strings.Builder
	rt := runtime.New(runtime.Config{Stdout: &out, Env: env})
	err := rt.RunString(src, "emit.lua", nil)
	if cerr := rt.Close(); cerr != nil {
		t.Fatal(cerr)
	}
	return out.String(), err
}

func TestEmitJSON(t *testing.T) {
	out, err := runEmit(t, &bindings.Env{JSON: true}, `
print("before")
emit{pid = 1, comm = "init", task = addr("0xffff888003a4b129"), f = 1.5, neg = -3, big = 2^53,
     flags = {on = true, off = false}, list = {1, "two", {3}}, empty = {}, sparse = {[1] = "a", [3] = "c"},
     byaddr = {[addr(16)] = "x"}}
print("after")`)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 || lines[0] != "before" || lines[2] != "after" {
		t.Fatalf("records and printed lines out of order:\n%s", out)
	}
	want := `{"big":9007199254740992,"byaddr":{"0x10":"x"},"comm":"init","empty":{},"f":1.5,"flags":{"off":false,"on":true},` +
		`"list":[1,"two",[3]],"neg":-3,"pid":1,"sparse":{"1":"a","3":"c"},"task":"0xffff888003a4b129"}`
	if lines[1] != want {
		t.Errorf("got  %s\nwant %s", lines[1], want)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &v); err != nil {
		t.Errorf("not JSON: %v", err)
	}
}

func TestEmitText(t *testing.T) {
	out, err := runEmit(t, &bindings.Env{}, `
emit({comm = "init", pid = 1}, {"pid"})
emit({comm = "kworker/0:0H", pid = 12345}, {"pid"})
emit({comm = "evil\n[fake] x=1", pid = 2, task = addr(4096)}, {"pid", "nosuch"})`)
	if err != nil {
		t.Fatal(err)
	}
	want := "pid=1 comm=init\n" +
		"pid=12345 comm=kworker/0:0H\n" +
		"pid=2     comm=\"evil\\n[fake] x=1\" task=0x1000\n"
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}

// TestEmitGuestAndTime: guest comes from Env.GuestName, time only when
// Env.RecordTime is set, both first, both in text and JSON.
func TestEmitGuestAndTime(t *testing.T) {
	before := time.Now().UTC().Truncate(time.Millisecond)
	out, err := runEmit(t, &bindings.Env{JSON: true, GuestName: "web1", RecordTime: true}, `emit{a = 1}`)
	after := time.Now().UTC()
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Guest, Time string
		A           int
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%q: %v", out, err)
	}
	if !strings.HasPrefix(out, `{"guest":"web1","time":"`) || r.A != 1 || r.Guest != "web1" {
		t.Errorf("record %s", out)
	}
	ts, err := time.Parse(time.RFC3339Nano, r.Time)
	if err != nil || len(r.Time) != len("2006-01-02T15:04:05.000Z") || !strings.HasSuffix(r.Time, "Z") {
		t.Fatalf("time %q is not RFC 3339 UTC with milliseconds: %v", r.Time, err)
	}
	if ts.Before(before) || ts.After(after) {
		t.Errorf("time %v is not between %v and %v", ts, before, after)
	}

	out, err = runEmit(t, &bindings.Env{GuestName: "mem.elf.zst"}, `emit{name = "ext4"}`)
	if err != nil || out != "guest=mem.elf.zst name=ext4\n" {
		t.Errorf("text with guest, no time: %q, %v", out, err)
	}
	out, err = runEmit(t, &bindings.Env{RecordTime: true}, `emit{name = "ext4"}`)
	if err != nil || !strings.HasPrefix(out, "time=20") || !strings.HasSuffix(out, "Z name=ext4\n") {
		t.Errorf("text with time, no guest: %q, %v", out, err)
	}
}

// TestEmitErrors: what emit refuses, with a message naming the field, and
// nothing of the refused record written.
func TestEmitErrors(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{`local t = {}; t.self = t; emit{x = t}`, "field x.self: the table contains itself (a cycle)"},
		{`local t = {}; t[1] = t; emit{x = t}`, "field x[1]: the table contains itself"},
		{`local t = {v = 1}; for i = 1, 40 do t = {d = t} end; emit{x = t}`, "nested deeper than 32"},
		{`local t = {}; for i = 1, 30 do t = {a = t, b = t} end; emit{x = t}`, "more than 1048576 values in one record"},
		{`emit{f = print}`, "field f: a function cannot be emitted"},
		{`emit{x = 0/0}`, "field x: NaN has no JSON form"},
		{`emit{x = {1/0}}`, "field x[1]: +Inf has no JSON form"},
		{`emit{guest = "me"}`, `field "guest" is set by xascript`},
		{`emit{time = 1}`, `field "time" is set by xascript`},
		{`emit{1, 2}`, "a record is a table with string keys"},
		{`emit{x = {[1.5] = 1}}`, "field x: key 1.5 is not an integer"},
		{`emit{x = {[1] = "a", ["1"] = "b"}}`, `field x: two keys are written "1"`},
		{`emit("x")`, "bad argument #1"},
		{`emit({}, {1})`, "order[1] is a number"},
	} {
		for _, js := range []bool{false, true} {
			if js && strings.Contains(c.want, "values in one record") {
				continue // slow (a million values); the limit is the same in both forms
			}
			out, err := runEmit(t, &bindings.Env{JSON: js}, `print("ok"); `+c.src)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s (json %v): err %v, want %q", c.src, js, err, c.want)
			}
			if out != "ok\n" {
				t.Errorf("%s (json %v): wrote %q", c.src, js, out)
			}
		}
	}
	// A table seen twice but not inside itself is no cycle.
	out, err := runEmit(t, &bindings.Env{JSON: true}, `local s = {1}; emit{a = s, b = {s, s}}`)
	if err != nil || out != `{"a":[1],"b":[[1],[1]]}`+"\n" {
		t.Errorf("shared table: %q, %v", out, err)
	}
}
