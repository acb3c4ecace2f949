package types

import (
	"fmt"
	"strings"
)

// Kind is what a Type is.
type Kind uint8

// The kinds of types.
const (
	Void    Kind = iota
	Int          // Size, Signed; _Bool and char are Int (Name tells)
	Float        // Size
	Pointer      // Target (a Void type for void *)
	Array        // Target = element type; Len (0 = flexible/unknown length)
	Struct       // Size, Members
	Union        // Size, Members
	Enum         // Size, Signed, Enumerators
	Typedef      // Name, Target
	Func         // a function type (what function pointers point to)
)

var kindNames = [...]string{"void", "int", "float", "pointer", "array", "struct", "union", "enum", "typedef", "function"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind %d", k)
}

// Type is one node of the graph. Qualifiers (const, volatile, restrict) and
// type tags are dropped by the loaders.
type Type struct {
	Kind        Kind
	Name        string // canonical; struct/union/enum names without the keyword; "" when anonymous
	Size        uint64 // bytes (Typedef/Array: the resolved size)
	Signed      bool   // Int, Enum
	Target      *Type  // Pointer, Array, Typedef
	Len         uint64 // Array
	Members     []Member
	Enumerators []Enumerator
}

// Member is a member of a struct or union.
type Member struct {
	Name      string // "" for an anonymous struct/union member
	BitOffset uint64 // from the start of the enclosing type
	BitSize   uint32 // 0: not a bitfield
	Type      *Type
}

// Enumerator is one constant of an enum.
type Enumerator struct {
	Name  string
	Value int64
}

// Field is where a member path ends.
type Field struct {
	Offset    uint64 // bytes from the start of the outer type (for a bitfield: of the byte holding its first bit)
	BitOffset uint32 // bitfields: bit within the byte at Offset; else 0
	BitSize   uint32 // 0: not a bitfield
	Type      *Type
}

// IsBitfield reports whether the field is a bitfield.
func (f Field) IsBitfield() bool { return f.BitSize != 0 }

// Graph is every type one kernel's profile knows, from whichever source.
type Graph interface {
	// Lookup a named type: "module" or "struct module" (a bare name tries struct, union, typedef, enum,
	// base type in that order), "union X", "enum X", typedef names, base type names in any spelling
	// ("unsigned long" = "long unsigned int"). Errors wrap vmi.ErrNotFound.
	Lookup(name string) (*Type, error)
	// EnumValue: the value of constant NAME of enum ENUM ("" ENUM: any enum). Errors wrap vmi.ErrNotFound.
	EnumValue(enum, name string) (int64, error)
}

// Lister is implemented by graphs that can list their named structs and
// unions (for completion); not every source can do so cheaply.
type Lister interface {
	// CompositeNames lists the names of named structs and unions, sorted,
	// without duplicates.
	CompositeNames() ([]string, error)
}

// IsComposite reports whether t is a struct or union (typedefs not stripped).
func (t *Type) IsComposite() bool { return t != nil && (t.Kind == Struct || t.Kind == Union) }

// String spells t as C would for error messages: "struct module",
// "anonymous union", "u64", "struct list_head *", "char[16]".
func (t *Type) String() string { return spell(t, 4) }

func spell(t *Type, depth int) string {
	if t == nil {
		return "void"
	}
	switch t.Kind {
	case Struct, Union, Enum:
		if t.Name == "" {
			return "anonymous " + t.Kind.String()
		}
		return t.Kind.String() + " " + t.Name
	case Pointer:
		if depth == 0 {
			return "pointer"
		}
		if t.Target != nil && t.Target.Kind == Func {
			return "func *"
		}
		s := spell(t.Target, depth-1)
		if strings.HasSuffix(s, "*") {
			return s + "*"
		}
		return s + " *"
	case Array:
		if depth == 0 {
			return "array"
		}
		return fmt.Sprintf("%s[%d]", spell(t.Target, depth-1), t.Len)
	case Void:
		return "void"
	case Func:
		if t.Name != "" {
			return t.Name
		}
		return "function"
	}
	if t.Name == "" {
		return t.Kind.String()
	}
	return t.Name
}
