package dwarfsrc

import (
	"debug/dwarf"
	"fmt"
	"strings"

	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/types"
)

// maxDepth bounds every walk along type references (typedef chains,
// nested arrays, anonymous members): hostile DWARF can make them cycle.
const maxDepth = 64

// node is the part of one entry that layouts need.
type node struct {
	tag     dwarf.Tag
	name    string
	size    uint64
	hasSize bool
	typ     ref // DW_AT_type; hasType false means void
	hasType bool
	decl    bool
	members []memberNode // structs and unions
	dims    []uint64     // arrays: element count per dimension, 0 when unknown (flexible)
	enc     int64        // base types: DW_AT_encoding
	consts  []enumConst  // enums: the enumerators
}

// enumConst is one DW_TAG_enumerator.
type enumConst struct {
	name  string
	value int64
}

type memberNode struct {
	name    string
	typ     ref
	bitOff  uint64 // from the start of the containing struct
	bitSize uint64 // 0 unless a bitfield
	legacy  *legacyBits
	err     error // a location this package cannot evaluate
}

// Offsetof returns the byte offset of member in structName, through the
// type graph (Graph) and the project's one resolver (types.Offsetof): member
// is a path ("list.next", "core_layout.size", "arr[3]"); structName may be
// "module", "struct module", "union foo" or a typedef of a struct. A
// bitfield is an error wrapping vmi.ErrUnsupported.
func (t *Types) Offsetof(structName, path string) (off uint64, err error) {
	defer firewall(&err)
	return types.Offsetof(t.Graph(), structName, path)
}

// Sizeof returns the size in bytes of a type: "struct module", "task_struct",
// "u64", "long unsigned int", or a pointer such as "struct page *".
func (t *Types) Sizeof(typeName string) (n uint64, err error) {
	defer firewall(&err)
	return types.Sizeof(t.Graph(), typeName, t.ptrSize)
}

func isComposite(tag dwarf.Tag) bool {
	return tag == dwarf.TagStructType || tag == dwarf.TagUnionType || tag == dwarf.TagClassType
}

// strip follows typedefs and qualifiers to the underlying type, and a
// declaration ("struct module;" in a unit that only points at it) to the
// complete definition elsewhere. A nil node is void.
func (t *Types) strip(r ref) (ref, *node, error) {
	for range maxDepth {
		n, err := t.node(r)
		if err != nil {
			return r, nil, err
		}
		switch n.tag {
		case dwarf.TagTypedef, dwarf.TagConstType, dwarf.TagVolatileType, dwarf.TagRestrictType,
			dwarf.TagAtomicType, dwarf.TagImmutableType, dwarf.TagSharedType:
			if !n.hasType {
				return r, nil, nil
			}
			r = n.typ
		case dwarf.TagStructType, dwarf.TagUnionType, dwarf.TagClassType, dwarf.TagEnumerationType:
			if !n.decl {
				return r, n, nil
			}
			kind := map[dwarf.Tag]byte{dwarf.TagStructType: 's', dwarf.TagClassType: 's', dwarf.TagUnionType: 'u', dwarf.TagEnumerationType: 'e'}[n.tag]
			full, ok := t.idx.find(string(kind) + n.name)
			if n.name == "" || !ok {
				return r, nil, fmt.Errorf("%s is only declared in the DWARF, never defined: %w", describe(n), vmi.ErrNotFound)
			}
			r = full
		default:
			return r, n, nil
		}
	}
	return r, nil, fmt.Errorf("DWARF entry %#x: typedef chain longer than %d: %w", r.off, maxDepth, vmi.ErrLimit)
}

// size is the byte size of the type at r.
func (t *Types) size(r ref) (uint64, error) {
	var mult uint64 = 1
	for range maxDepth {
		sr, n, err := t.strip(r)
		if err != nil {
			return 0, err
		}
		if n == nil {
			return 0, fmt.Errorf("void has no size: %w", vmi.ErrUnsupported)
		}
		switch n.tag {
		case dwarf.TagPointerType, dwarf.TagReferenceType, dwarf.TagRvalueReferenceType:
			if !n.hasSize {
				return mult * uint64(t.ptrSize), nil
			}
		case dwarf.TagArrayType:
			if n.hasSize {
				break
			}
			for _, c := range n.dims {
				if c != 0 && mult > (1<<40)/c {
					return 0, fmt.Errorf("DWARF entry %#x: array size overflows: %w", sr.off, vmi.ErrFormat)
				}
				mult *= c
			}
			if !n.hasType {
				return 0, fmt.Errorf("DWARF entry %#x: array of void: %w", sr.off, vmi.ErrFormat)
			}
			r = n.typ
			continue
		}
		if !n.hasSize {
			return 0, fmt.Errorf("%s has no size: %w", describe(n), vmi.ErrUnsupported)
		}
		if n.size > 1<<40 || (n.size != 0 && mult > (1<<40)/n.size) {
			return 0, fmt.Errorf("DWARF entry %#x: size overflows: %w", sr.off, vmi.ErrFormat)
		}
		return mult * n.size, nil
	}
	return 0, fmt.Errorf("DWARF entry %#x: arrays nested deeper than %d: %w", r.off, maxDepth, vmi.ErrLimit)
}

// describe names a type for error messages.
func describe(n *node) string {
	if n == nil {
		return "void"
	}
	var tag string
	switch n.tag {
	case dwarf.TagStructType:
		tag = "struct"
	case dwarf.TagUnionType:
		tag = "union"
	case dwarf.TagEnumerationType:
		tag = "enum"
	case dwarf.TagClassType:
		tag = "class"
	case dwarf.TagPointerType:
		return "pointer"
	case dwarf.TagArrayType:
		return "array"
	case dwarf.TagSubroutineType:
		return "function type"
	default:
		if n.name != "" {
			return n.name
		}
		return strings.TrimPrefix(n.tag.String(), "Tag")
	}
	if n.name == "" {
		return "anonymous " + tag
	}
	return tag + " " + n.name
}
