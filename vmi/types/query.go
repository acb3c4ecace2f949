package types

import (
	"fmt"
	"strings"

	"github.com/xascript/xascript/vmi"
)

// The questions offsetof(), sizeof() and has_member() ask, answered the same
// way over any Graph.

// Composite looks up structName and checks that it is (a typedef of) a
// struct or union; it returns the struct or union itself.
func Composite(g Graph, structName string) (*Type, error) {
	t, err := g.Lookup(structName)
	if err != nil {
		return nil, err
	}
	st := Underlying(t)
	if !st.IsComposite() {
		return nil, fmt.Errorf("type %q is a %s, not a struct or union: %w", structName, spellOrKind(st), vmi.ErrNotFound)
	}
	return st, nil
}

// FieldOf resolves member path in the struct or union named structName.
func FieldOf(g Graph, structName, path string) (Field, error) {
	st, err := Composite(g, structName)
	if err != nil {
		return Field{}, err
	}
	return Resolve(st, path)
}

// Offsetof returns the byte offset of member path in structName. A bitfield
// has none: the error (wrapping vmi.ErrUnsupported) says it is a bitfield,
// with its width and bit offset, so has_member can still say it exists.
func Offsetof(g Graph, structName, path string) (uint64, error) {
	f, err := FieldOf(g, structName, path)
	if err != nil {
		return 0, err
	}
	if f.IsBitfield() {
		return 0, fmt.Errorf("%s.%s is a %d-bit bitfield at bit %d, it has no byte offset: %w",
			structName, path, f.BitSize, f.Offset*8+uint64(f.BitOffset), vmi.ErrUnsupported)
	}
	return f.Offset, nil
}

// Sizeof returns the size in bytes of a named type, or ptrSize for a
// pointer spelling ("struct page *"). Functions and incomplete types have
// no size: an error wrapping vmi.ErrUnsupported.
func Sizeof(g Graph, typeName string, ptrSize int) (uint64, error) {
	if strings.HasSuffix(strings.TrimSpace(typeName), "*") {
		return uint64(ptrSize), nil
	}
	t, err := g.Lookup(typeName)
	if err != nil {
		return 0, err
	}
	if u := Underlying(t); u == nil || u.Kind == Func || u.Kind == Void {
		return 0, fmt.Errorf("type %q (%s) has no size: %w", typeName, spellOrKind(u), vmi.ErrUnsupported)
	}
	if !finite(t) {
		return 0, fmt.Errorf("type %q: typedefs or arrays nested deeper than %d: %w", typeName, MaxDepth, vmi.ErrLimit)
	}
	return t.Size, nil
}

// finite reports whether the chain of typedefs and array elements from t
// ends within MaxDepth (a cycle, possible only in hostile input, does not).
func finite(t *Type) bool {
	for range MaxDepth {
		if t == nil || (t.Kind != Typedef && t.Kind != Array) {
			return true
		}
		t = t.Target
	}
	return false
}

// MembersAt lists the members of structName, or of the struct or union that
// member path is ("" for structName itself), as Resolve reaches them: the
// REPL's completion of offsetof's second argument.
func MembersAt(g Graph, structName, path string) ([]string, error) {
	st, err := Composite(g, structName)
	if err != nil {
		return nil, err
	}
	if path != "" {
		f, err := Resolve(st, path)
		if err != nil {
			return nil, err
		}
		if !Underlying(f.Type).IsComposite() {
			return nil, fmt.Errorf("%s.%s is a %s, not a struct or union: %w", structName, path, spellOrKind(f.Type), vmi.ErrNotFound)
		}
		st = f.Type
	}
	return MemberNames(st, 1<<20), nil
}
