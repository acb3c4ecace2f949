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

// MemberNames lists the member names of structName, or of the struct or
// union that the member at path (a dotted path as Offsetof takes; "" for
// structName itself) is, in declaration order. Members of anonymous structs
// and unions are listed in their place, as C reaches them by name.
func (t *Types) MemberNames(structName, path string) ([]string, error) {
	id, err := t.lookup(structName, true)
	if err != nil {
		return nil, err
	}
	if path != "" {
		m, err := t.Member(structName, path)
		if err != nil {
			return nil, err
		}
		id = m.Type.ID
	}
	var names []string
	budget := maxNames // members visited, anonymous ones included: nesting must not multiply work
	if err := t.memberNames(id, 0, &names, &budget); err != nil {
		return nil, err
	}
	return names, nil
}

func (t *Types) memberNames(id uint32, depth int, names *[]string, budget *int) error {
	if depth > maxDepth {
		return fmt.Errorf("BTF type %d: anonymous members nested deeper than %d: %w", id, maxDepth, vmi.ErrLimit)
	}
	sid, rt, err := t.strip(id)
	if err != nil {
		return err
	}
	if !rt.isComposite() {
		return fmt.Errorf("BTF type %d is a %s, not a struct or union: %w", sid, kindName(rt.kind()), vmi.ErrNotFound)
	}
	for i := range rt.vlen() {
		m := t.b.member(rt, i)
		if *budget--; *budget < 0 {
			return fmt.Errorf("BTF type %d: more than %d members: %w", sid, maxNames, vmi.ErrLimit)
		}
		if !t.b.anonymous(m.nameOff) {
			*names = append(*names, t.b.name(m.nameOff))
			continue
		}
		if err := t.memberNames(m.typ, depth+1, names, budget); err != nil {
			return err
		}
	}
	return nil
}
