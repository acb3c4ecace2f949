package types

import (
	"fmt"
	"strings"

	"github.com/xascript/xascript/vmi"
)

// Spelling is a type name as Graph.Lookup takes it, taken apart.
type Spelling struct {
	Name  string // without the keyword, canonical for base types
	Kinds []Kind // the kinds to try, in order
}

// bareKinds is the order a bare name tries (Graph.Lookup): a bare "page" is
// struct page even if some typedef shares the name.
var bareKinds = []Kind{Struct, Union, Typedef, Enum, Int, Float}

// ParseSpelling takes a name apart for Lookup: "struct module" is a struct,
// "union x" a union, "enum x" an enum; a bare name tries struct, union,
// typedef, enum, then base types (under its canonical name).
func ParseSpelling(name string) Spelling {
	name = strings.Join(strings.Fields(name), " ")
	for _, k := range []Kind{Struct, Union, Enum} {
		if rest, ok := strings.CutPrefix(name, k.String()+" "); ok {
			return Spelling{Name: rest, Kinds: []Kind{k}}
		}
	}
	if c := CanonicalName(name); c != name {
		return Spelling{Name: c, Kinds: []Kind{Int, Float}}
	}
	return Spelling{Name: name, Kinds: bareKinds}
}

// NotFound is the error for a type no source has.
func NotFound(name, source string) error {
	return fmt.Errorf("no type %q in %s: %w", name, source, vmi.ErrNotFound)
}

type key struct {
	kind Kind
	name string
}

// Set is a Graph over types built up front (ISF, tests, small module graphs).
// Add every type before sharing it; afterwards it is read-only and safe for
// concurrent use.
type Set struct {
	Source string // named in errors: "ISF foo.json"
	named  map[key]*Type
	enums  []*Type
}

// NewSet returns an empty Set whose errors name source.
func NewSet(source string) *Set { return &Set{Source: source, named: map[key]*Type{}} }

// Add registers a named type (anonymous ones are reached through members).
// The first type of a kind and name wins, except that a complete struct or
// union replaces a forward declaration (no members, size 0).
func (s *Set) Add(t *Type) {
	if t == nil {
		return
	}
	if t.Kind == Enum {
		s.enums = append(s.enums, t)
	}
	if t.Name == "" {
		return
	}
	k := key{t.Kind, t.Name}
	if t.Kind == Int || t.Kind == Float {
		k.name = CanonicalName(t.Name)
	}
	if old, ok := s.named[k]; ok && !(old.IsComposite() && old.Size == 0 && old.Members == nil) {
		return
	}
	s.named[k] = t
}

// Lookup implements Graph.
func (s *Set) Lookup(name string) (*Type, error) {
	sp := ParseSpelling(name)
	for _, k := range sp.Kinds {
		if t, ok := s.named[key{k, sp.Name}]; ok {
			return t, nil
		}
	}
	return nil, NotFound(name, s.Source)
}

// EnumValue implements Graph.
func (s *Set) EnumValue(enum, name string) (int64, error) {
	return EnumValueIn(s.enums, enum, name, s.Source)
}

// CompositeNames implements Lister.
func (s *Set) CompositeNames() ([]string, error) {
	seen := map[string]bool{}
	var names []string
	for k := range s.named {
		if (k.kind == Struct || k.kind == Union) && !seen[k.name] {
			seen[k.name] = true
			names = append(names, k.name)
		}
	}
	sortStrings(names)
	return names, nil
}

// EnumValueIn finds constant name in enum (a name with or without "enum ";
// "" for any enum) among enums, for Graph implementations.
func EnumValueIn(enums []*Type, enum, name, source string) (int64, error) {
	enum = strings.TrimPrefix(strings.Join(strings.Fields(enum), " "), "enum ")
	seenEnum := false
	for _, e := range enums {
		if enum != "" && e.Name != enum {
			continue
		}
		seenEnum = true
		for _, c := range e.Enumerators {
			if c.Name == name {
				return c.Value, nil
			}
		}
	}
	if enum == "" {
		return 0, fmt.Errorf("no enum constant %q in %s: %w", name, source, vmi.ErrNotFound)
	}
	if !seenEnum {
		return 0, fmt.Errorf("no type \"enum %s\" in %s: %w", enum, source, vmi.ErrNotFound)
	}
	return 0, fmt.Errorf("no constant %q in enum %s: %w", name, enum, vmi.ErrNotFound)
}
