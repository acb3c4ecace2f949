package btfsrc

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi"
)

// Types answers layout questions about one BTF blob. It is safe for
// concurrent use. Close releases the file it was loaded from.
type Types struct {
	b       *blob
	raw     []byte
	file    *unpack.File // backs b when loaded from a file; nil from Parse
	idxFile *unpack.File // the persisted index, when there is one
	ptrSize int          // from the ELF class when known, else derived lazily

	mu      sync.Mutex
	byName  map[string]uint32 // type spelling -> id
	members map[memberKey]MemberInfo
}

// Parse reads a raw BTF blob. data must stay unchanged while the Types is used.
func Parse(data []byte) (*Types, error) {
	b, err := parseBlob(data)
	if err != nil {
		return nil, err
	}
	return &Types{b: b, raw: data, byName: map[string]uint32{}, members: map[memberKey]MemberInfo{}}, nil
}

// Raw is the BTF blob the types were parsed from (for exporting it, e.g. as
// a Volatility ISF). It is read-only and valid until Close.
func (t *Types) Raw() []byte { return t.raw }

// Close releases the mapping of the file the types came from.
func (t *Types) Close() error {
	// unpack.File.Close is nil-safe: either may be absent.
	err := errors.Join(t.idxFile.Close(), t.file.Close())
	t.idxFile, t.file = nil, nil
	return err
}

// NumTypes is the number of types in the blob, not counting void.
func (t *Types) NumTypes() (int, error) {
	if err := t.b.index(); err != nil {
		return 0, err
	}
	return t.b.numTypes(), nil
}

// Kind classifies a type for callers that build typed views.
type Kind int

// Type kinds, after typedefs and qualifiers (const, volatile) are peeled off.
const (
	KindVoid Kind = iota
	KindInt
	KindFloat
	KindPointer
	KindArray
	KindStruct
	KindUnion
	KindEnum
	KindFunc
)

func (k Kind) String() string {
	return [...]string{"void", "int", "float", "pointer", "array", "struct", "union", "enum", "func"}[k]
}

// TypeInfo describes a type, shallowly: pointees and array elements are
// described a few levels deep, struct members not at all (ask Fields).
type TypeInfo struct {
	ID      uint32 // BTF type id after typedefs; 0 for void
	Kind    Kind
	Name    string // C spelling: "struct list_head", "long unsigned int", "char"; "" when anonymous; for pointers and arrays the spelling with * or [N]
	Typedef string // the outermost typedef when the declared type was one ("u64"), else ""
	Size    uint64 // bytes; 0 for void, functions and incomplete types
	Signed  bool   // signed ints and enums
	Char    bool   // a char-sized int (char arrays are strings)
	Bool    bool   // _Bool
	Count   uint64 // arrays: element count (0 for a flexible array member)
	Elem    *TypeInfo
}

// MemberInfo is where a member lives in its struct and what it is.
type MemberInfo struct {
	Name      string // the member path as asked ("list.next")
	Offset    uint64 // bytes from the start of the outermost struct
	Size      uint64 // bytes; for bitfields, the size of the underlying int
	BitOffset uint64 // bit offset from the start of the struct (Offset*8 unless a bitfield)
	BitSize   uint32 // bitfield width; 0 when the member is not a bitfield
	Type      TypeInfo
}

// IsBitfield reports whether the member is a bitfield.
func (m MemberInfo) IsBitfield() bool { return m.BitSize != 0 }

type memberKey struct{ strct, path string }

// Offsetof returns the byte offset of member in structName. member is a path:
// "list.next", "core_layout.size", "arr[3]"; members of anonymous structs and
// unions are found as in C. structName may be "module", "struct module",
// "union foo" or a typedef of a struct. Bitfields are an error (use Member).
func (t *Types) Offsetof(structName, member string) (uint64, error) {
	m, err := t.Member(structName, member)
	if err != nil {
		return 0, err
	}
	if m.IsBitfield() {
		return 0, fmt.Errorf("%s.%s is a %d-bit bitfield at bit %d, it has no byte offset: %w",
			structName, member, m.BitSize, m.BitOffset, vmi.ErrUnsupported)
	}
	return m.Offset, nil
}

// Sizeof returns the size in bytes of a type: "struct module", "task_struct",
// "u64", "long unsigned int", or a pointer such as "struct page *".
func (t *Types) Sizeof(typeName string) (uint64, error) {
	if strings.HasSuffix(strings.TrimSpace(typeName), "*") {
		return uint64(t.PointerSize()), nil
	}
	id, err := t.lookup(typeName, false)
	if err != nil {
		return 0, err
	}
	return t.size(id)
}

// TypeOf describes a named type.
func (t *Types) TypeOf(typeName string) (TypeInfo, error) {
	id, err := t.lookup(typeName, false)
	if err != nil {
		return TypeInfo{}, err
	}
	return t.describe(id, describeDepth)
}

// PointerSize is the target's pointer size in bytes: the ELF class when the
// types came from an ELF, else the size of "long", else 8.
func (t *Types) PointerSize() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ptrSize == 0 {
		t.ptrSize = 8
		if t.b.index() == nil {
			for _, n := range []string{"long unsigned int", "long int"} {
				if ids := t.b.findByName(n, isKind(kindInt)); len(ids) > 0 {
					if rt, err := t.b.typ(ids[0]); err == nil && (rt.sizeTyp == 4 || rt.sizeTyp == 8) {
						t.ptrSize = int(rt.sizeTyp)
						break
					}
				}
			}
		}
	}
	return t.ptrSize
}

// Member describes the member at path in structName (see Offsetof).
func (t *Types) Member(structName, path string) (MemberInfo, error) {
	key := memberKey{structName, path}
	t.mu.Lock()
	m, ok := t.members[key]
	t.mu.Unlock()
	if ok {
		return m, nil
	}
	id, err := t.lookup(structName, true)
	if err != nil {
		return MemberInfo{}, err
	}
	m, err = t.resolvePath(id, path)
	if err != nil {
		return MemberInfo{}, err
	}
	t.mu.Lock()
	t.members[key] = m
	t.mu.Unlock()
	return m, nil
}

// Fields lists the direct members of a struct or union in declaration order.
// Anonymous struct and union members appear with an empty Name; their inner
// members are reachable by name through Member.
func (t *Types) Fields(structName string) ([]MemberInfo, error) {
	id, err := t.lookup(structName, true)
	if err != nil {
		return nil, err
	}
	rt, err := t.b.typ(id)
	if err != nil {
		return nil, err
	}
	out := make([]MemberInfo, 0, rt.vlen())
	for i := range rt.vlen() {
		m := t.b.member(rt, i)
		mi, err := t.memberInfo(m, t.b.name(m.nameOff), 0)
		if err != nil {
			return nil, err
		}
		out = append(out, mi)
	}
	return out, nil
}

// lookup resolves a type spelling to an id, memoized. composite requires the
// result (after typedefs) to be a struct or union.
func (t *Types) lookup(spelling string, composite bool) (uint32, error) {
	spelling = strings.Join(strings.Fields(spelling), " ")
	t.mu.Lock()
	id, ok := t.byName[spelling]
	t.mu.Unlock()
	if !ok {
		if err := t.b.index(); err != nil {
			return 0, err
		}
		name, kinds := spelling, []int{kindStruct, kindUnion, kindTypedef, kindInt, kindFloat, kindEnum, kindEnum64}
		switch {
		case strings.HasPrefix(spelling, "struct "):
			name, kinds = spelling[len("struct "):], []int{kindStruct}
		case strings.HasPrefix(spelling, "union "):
			name, kinds = spelling[len("union "):], []int{kindUnion}
		case strings.HasPrefix(spelling, "enum "):
			name, kinds = spelling[len("enum "):], []int{kindEnum, kindEnum64}
		}
		ids := t.b.findByName(name, func(k int) bool {
			for _, w := range kinds {
				if k == w {
					return true
				}
			}
			return false
		})
		if len(ids) == 0 {
			return 0, fmt.Errorf("no type %q in BTF: %w", spelling, vmi.ErrNotFound)
		}
		// Prefer kinds in the order listed (a bare "page" is struct page
		// even if some typedef shares the name), then the lowest id.
		best, bestRank := ids[0], len(kinds)
		for _, cand := range ids {
			rt, err := t.b.typ(cand)
			if err != nil {
				return 0, err
			}
			for r, w := range kinds {
				if rt.kind() == w && r < bestRank {
					best, bestRank = cand, r
				}
			}
		}
		id = best
		t.mu.Lock()
		t.byName[spelling] = id
		t.mu.Unlock()
	}
	if composite {
		sid, rt, err := t.strip(id)
		if err != nil {
			return 0, err
		}
		if !rt.isComposite() {
			return 0, fmt.Errorf("type %q is a %s, not a struct or union: %w", spelling, kindName(rt.kind()), vmi.ErrNotFound)
		}
		return sid, nil
	}
	return id, nil
}

func isKind(k int) func(int) bool { return func(x int) bool { return x == k } }

// strip follows typedefs and qualifiers to the underlying type. Void is id 0
// with a zero rawType.
func (t *Types) strip(id uint32) (uint32, rawType, error) {
	for range maxDepth {
		if id == 0 {
			return 0, rawType{}, nil
		}
		rt, err := t.b.typ(id)
		if err != nil {
			return 0, rt, err
		}
		switch rt.kind() {
		case kindTypedef, kindVolatile, kindConst, kindRestrict, kindTypeTag:
			id = rt.sizeTyp
		default:
			return id, rt, nil
		}
	}
	return 0, rawType{}, fmt.Errorf("BTF type %d: typedef chain longer than %d: %w", id, maxDepth, vmi.ErrLimit)
}

// size is the byte size of type id.
func (t *Types) size(id uint32) (uint64, error) {
	var mult uint64 = 1
	for range maxDepth {
		sid, rt, err := t.strip(id)
		if err != nil {
			return 0, err
		}
		var n uint64
		switch rt.kind() {
		case kindInt, kindStruct, kindUnion, kindEnum, kindEnum64, kindFloat:
			n = uint64(rt.sizeTyp)
		case kindPtr:
			n = uint64(t.PointerSize())
		case kindArray:
			count := uint64(t.b.bo.Uint32(rt.data[8:]))
			if count != 0 && mult > (1<<40)/count {
				return 0, fmt.Errorf("BTF type %d: array size overflows: %w", sid, vmi.ErrFormat)
			}
			mult *= count
			id = t.b.bo.Uint32(rt.data)
			continue
		default:
			return 0, fmt.Errorf("BTF type %d (%s) has no size: %w", sid, kindName(rt.kind()), vmi.ErrUnsupported)
		}
		return mult * n, nil
	}
	return 0, fmt.Errorf("BTF type %d: arrays nested deeper than %d: %w", id, maxDepth, vmi.ErrLimit)
}

func kindName(k int) string {
	names := [...]string{"void", "int", "pointer", "array", "struct", "union", "enum", "forward declaration",
		"typedef", "volatile", "const", "restrict", "function", "function prototype", "variable",
		"data section", "float", "declaration tag", "type tag", "enum64"}
	if k < 0 || k >= len(names) {
		return "kind " + strconv.Itoa(k)
	}
	return names[k]
}
