package isf

import (
	"testing"

	"github.com/xascript/xascript/vmi/types"
)

// FuzzLoad: Parse and every query on arbitrary bytes must not panic or
// loop, whatever the types claim about themselves.
func FuzzLoad(f *testing.F) {
	f.Add(synthISF(f))
	f.Add([]byte(`{"metadata":{"format":"6.2.0"},"base_types":{},"user_types":{"a":{"kind":"struct","size":8,"fields":{"x":{"offset":0,"anonymous":true,"type":{"kind":"struct","name":"a"}}}}},"enums":{},"symbols":{}}`))
	f.Add([]byte(`{"metadata":{},"base_types":{"pointer":{"size":4}},"user_types":{"a":{"kind":"union","size":1,"fields":{"b":{"offset":1,"type":{"kind":"array","count":0,"subtype":{"kind":"enum","name":"e"}}}}}},"enums":{"e":{"size":2,"base":"x","constants":{}}},"symbols":{"s":{"address":18446744073709551615}}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data, "fuzz")
		if err != nil {
			return
		}
		p.Symbols()
		p.Banner()
		p.PointerSize()
		n := 0
		for name, raw := range p.userRaw {
			if n++; n > 20 {
				break
			}
			_ = raw
			p.Sizeof(name)
			p.Sizeof("struct " + name)
			u, err := p.userType(name)
			if err != nil {
				continue
			}
			m := 0
			for fname, f := range u.fields {
				if m++; m > 20 {
					break
				}
				p.Offsetof(name, fname)
				p.Offsetof(name, fname+"[1]")
				p.Offsetof(name, fname+"[0][1].x")
				p.Offsetof(name, fname+".next")
				if f.Type != nil {
					p.descSize(f.Type, 0)
				}
			}
		}
		for name := range p.base {
			p.Sizeof(name)
		}
		for name := range p.enumRaw {
			p.Sizeof("enum " + name)
			p.Graph().EnumValue(name, "X")
		}
		p.Graph().EnumValue("", "X")
		if g, ok := p.Graph().(types.Lister); ok {
			names, _ := g.CompositeNames()
			for _, n := range names[:min(len(names), 5)] {
				if st, err := p.Graph().Lookup(n); err == nil {
					types.MemberNames(st, 100)
					_ = types.Signature(st)
				}
			}
		}
	})
}
