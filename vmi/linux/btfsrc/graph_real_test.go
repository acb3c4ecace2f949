package btfsrc

import (
	"testing"

	"github.com/xascript/xascript/vmi/types"
)

// BenchmarkGraphFirstLookup is the cost a run pays on its first struct
// lookup through the graph: Load (index cached) plus converting the closure
// of struct module and of task_struct.
func BenchmarkGraphFirstLookup(b *testing.B) {
	path, opt := realVmlinuz(b), cacheOpt(b)
	if ty, err := Load(path, opt); err != nil {
		b.Fatal(err)
	} else {
		ty.Close()
	}
	b.ReportAllocs()
	for b.Loop() {
		ty, err := Load(path, opt)
		if err != nil {
			b.Fatal(err)
		}
		g := ty.Graph()
		for _, q := range [][2]string{{"module", "name"}, {"module", "list"}, {"list_head", "next"}, {"task_struct", "comm"}} {
			st, err := g.Lookup(q[0])
			if err != nil {
				b.Fatal(err)
			}
			if _, err := types.Resolve(st, q[1]); err != nil {
				b.Fatal(err)
			}
		}
		ty.Close()
	}
}

func TestGraphClosureSize(t *testing.T) {
	ty, err := Load(realVmlinuz(t), cacheOpt(t))
	if err != nil {
		t.Fatal(err)
	}
	defer ty.Close()
	n, _ := ty.NumTypes()
	for _, name := range []string{"list_head", "module", "task_struct"} {
		if _, err := ty.Graph().Lookup(name); err != nil {
			t.Fatal(err)
		}
		t.Logf("after %s: %d of %d types converted", name, countConv(ty.graph.conv), n)
	}
}

func countConv(c []*types.Type) int {
	n := 0
	for _, t := range c {
		if t != nil {
			n++
		}
	}
	return n
}
