package linux

import (
	"fmt"

	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/types"
)

// StructNames lists the kernel's named structs and unions, sorted: what the
// REPL completes after `offsetof("`. Sources that cannot list their names
// cheaply (DWARF) say so; structs that only a module's BTF defines are not
// listed.
func (k *Kernel) StructNames() ([]string, error) {
	g, err := k.Types()
	if err != nil {
		return nil, err
	}
	l, ok := g.(types.Lister)
	if !ok {
		return nil, fmt.Errorf("struct layouts from %s cannot be listed: %w", k.TypesFrom, vmi.ErrUnsupported)
	}
	return l.CompositeNames()
}

// MemberNames lists the members of structName, or of the struct at member
// path (dotted, "" for structName itself), as offsetof reaches them.
func (k *Kernel) MemberNames(structName, path string) ([]string, error) {
	g, err := k.Types()
	if err != nil {
		return nil, err
	}
	return types.MembersAt(g, structName, path)
}
