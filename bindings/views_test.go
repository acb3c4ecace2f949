package bindings_test

import (
	"encoding/binary"
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

// chain follows a pointer member to the next struct's start until NULL
// (vm_area_struct.vm_next before 6.1): each struct as a view, in order; an
// empty chain; a cycle and the bound end the walk with an error; a member
// that is not a pointer is the script's error.
func TestChainWalk(t *testing.T) {
	g := fakeguest.New()
	s := types.NewSet("chain")
	u32 := &types.Type{Kind: types.Int, Name: "unsigned int", Size: 4}
	node := &types.Type{Kind: types.Struct, Name: "node", Size: 16,
		Members: []types.Member{member("val", 0, u32), member("next", 8, nil)}}
	node.Members[1].Type = &types.Type{Kind: types.Pointer, Size: 8, Target: node}
	s.Add(node)
	g.Graph = s
	put := func(at, val, next uint64) {
		b := make([]byte, 16)
		binary.LittleEndian.PutUint32(b, uint32(val))
		binary.LittleEndian.PutUint64(b[8:], next)
		g.Write(at, b)
	}
	put(v+0x1000, 1, v+0x3000)
	put(v+0x3000, 2, v+0x2000)
	put(v+0x2000, 3, 0)
	run := func(src string) string {
		t.Helper()
		out, err := runViewScript(t, g, `local first = addr("0xffff888000001000")
			local function show(w) local s = {} for n in w do s[#s+1] = n.val end
				return table.concat(s, ",") .. " " .. tostring(w:err()) end
			`+src)
		if err != nil {
			return "error: " + err.Error()
		}
		return strings.TrimSpace(out)
	}
	if got := run(`print(show(chain(first, "node", "next")))`); got != "1,2,3 nil" {
		t.Errorf("chain: %q", got)
	}
	if got := run(`print(show(chain(nil, "node", "next")), show(chain(view("node", first).next.next.next, "node", "next")))`); got != "nil\t nil" { // (the first one's leading blank trimmed)
		t.Errorf("empty chains: %q", got)
	}
	if got := run(`print(show(chain(first, "node", "next", 2)))`); !strings.HasPrefix(got, "1,2 ") || !strings.Contains(got, "more than 2 entries") {
		t.Errorf("bound: %q", got)
	}
	put(v+0x2000, 3, v+0x3000)
	if got := run(`print(show(chain(first, "node", "next")))`); !strings.HasPrefix(got, "1,2,3 ") || !strings.Contains(got, "cycle") {
		t.Errorf("cycle: %q", got)
	}
	if got := run(`chain(first, "node", "val")`); !strings.Contains(got, "node.val is not a pointer") {
		t.Errorf("not a pointer: %q", got)
	}
}
