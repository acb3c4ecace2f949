package btfsrc

import (
	"fmt"
	"slices"

	"github.com/xascript/xascript/vmi"
)

// maxNames bounds the names one listing returns: a kernel's BTF holds a few
// ten thousand structs and unions, a crafted blob could claim far more.
const maxNames = 1 << 20

// CompositeNames lists the names of the named structs and unions, sorted and
// without duplicates (a struct and a union of one name appear once). It
// serves completion (the REPL), not lookups: it reads every type header.
func (t *Types) CompositeNames() ([]string, error) {
	if err := t.b.index(); err != nil {
		return nil, err
	}
	var names []string
	for id := 1; id <= t.b.numTypes(); id++ {
		rt, err := t.b.typ(uint32(id))
		if err != nil {
			return nil, err
		}
		if !rt.isComposite() || t.b.anonymous(rt.nameOff) {
			continue
		}
		if len(names) == maxNames {
			return nil, fmt.Errorf("BTF: more than %d named structs and unions: %w", maxNames, vmi.ErrLimit)
		}
		names = append(names, t.b.name(rt.nameOff))
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}
