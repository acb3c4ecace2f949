package linux

import (
	"fmt"

	"github.com/xascript/xascript/vmi"
)

// typeLister is a type source that can list its names (BTF). DWARF and ISF
// sources answer lookups only.
type typeLister interface {
	CompositeNames() ([]string, error)
	MemberNames(structName, path string) ([]string, error)
}

// StructNames lists the kernel's named structs and unions, sorted: what the
// REPL completes after `offsetof("`. Structs that only a module's BTF
// defines are not listed.
func (k *Kernel) StructNames() ([]string, error) {
	l, err := k.typeLister()
	if err != nil {
		return nil, err
	}
	return l.CompositeNames()
}

// MemberNames lists the members of structName, or of the struct at member
// path (dotted, "" for structName itself), as offsetof reaches them.
func (k *Kernel) MemberNames(structName, path string) ([]string, error) {
	l, err := k.typeLister()
	if err != nil {
		return nil, err
	}
	return l.MemberNames(structName, path)
}

func (k *Kernel) typeLister() (typeLister, error) {
	t, err := k.profileTypes()
	if err != nil {
		return nil, err
	}
	l, ok := t.(typeLister)
	if !ok {
		return nil, fmt.Errorf("struct layouts from %s cannot be listed: %w", k.TypesFrom, vmi.ErrUnsupported)
	}
	return l, nil
}
