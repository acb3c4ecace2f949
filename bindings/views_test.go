package bindings_test

import (
	"strings"
	"testing"

	"github.com/xascript/xascript/bindings"
	"github.com/xascript/xascript/internal/fakeguest"
	"github.com/xascript/xascript/runtime"
	"github.com/xascript/xascript/vmi/types"
)

func runViewScript(t *testing.T, g *fakeguest.Guest, src string) (string, error) {
	t.Helper()
	var out strings.Builder
	rt := runtime.New(runtime.Config{Stdout: &out, Env: &bindings.Env{Guest: g}})
	defer rt.Close()
	err := rt.RunString(src, "t.lua", nil)
	return out.String(), err
}

// A type graph from a hostile guest may be cyclic: an array of itself, a
// typedef of itself. Views of it end with a value or an error, never a
// hang or a crash.
func TestViewsHostileTypes(t *testing.T) {
	g := fakeguest.New()
	g.Write(v+0x1000, make([]byte, 64))
	s := types.NewSet("hostile")
	arr := &types.Type{Kind: types.Array, Size: 8, Len: 4}
	arr.Target = arr
	td := &types.Type{Kind: types.Typedef, Name: "loop_t", Size: 8}
	td.Target = td
	st := &types.Type{Kind: types.Struct, Name: "evil", Size: 64,
		Members: []types.Member{member("arr", 0, arr), member("td", 8, td), member("self", 16, nil)}}
	st.Members[2].Type = &types.Type{Kind: types.Pointer, Size: 8, Target: st}
	s.Add(st)
	g.Graph = s
	out, err := runViewScript(t, g, `
		local e = assert(view("evil", addr("0xffff888000001000")))
		print(pcall(function() return e.arr[0][1][2] end))
		print(pcall(function() return e.td end))
		print(e.self, field(e, "self.self"))`)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "true") || !strings.HasPrefix(lines[2], "nil\tnil\tstruct evil.self is NULL") {
		t.Fatalf("got:\n%s", out)
	}
}

// Without a type graph, views raise an error that says so (a script bug
// or a missing profile, not a guest fault); other bindings still run.
func TestViewsNeedTypes(t *testing.T) {
	g := fakeguest.New()
	g.Write(v+0x1000, []byte{7, 0, 0, 0})
	out, err := runViewScript(t, g, `print(read_u32(addr("0xffff888000001000")))
		print(pcall(view, "module", addr("0xffff888000001000")))`)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "7\nfalse\t") || !strings.Contains(out, "typed views need the kernel's types") {
		t.Fatalf("got %q", out)
	}
}
