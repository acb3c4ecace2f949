package btfsrc

import (
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/types"
)

// Types answers layout questions about one BTF blob. It is safe for
// concurrent use. Close releases the file it was loaded from.
type Types struct {
	b       *blob
	raw     []byte
	file    *unpack.File // backs b when loaded from a file; nil from Parse
	idxFile *unpack.File // the persisted index, when there is one
	ptrSize int          // from the ELF class when known, else derived lazily

	mu sync.Mutex // guards ptrSize

	graphOnce sync.Once
	graph     *graph // the types.Graph view (graph.go)
}

// Parse reads a raw BTF blob. data must stay unchanged while the Types is used.
func Parse(data []byte) (*Types, error) {
	b, err := parseBlob(data)
	if err != nil {
		return nil, err
	}
	return &Types{b: b, raw: data}, nil
}

// Raw is the BTF blob the types were parsed from (for exporting it, e.g. as
// a Volatility ISF). It is read-only and valid until Close.
func (t *Types) Raw() []byte { return t.raw }

// Close releases the mapping of the file the types came from, unless its
// Graph was used: the graph's names point into the mapping, and graph types
// may be held anywhere, so the mapping then stays until the process exits.
func (t *Types) Close() error {
	if t.graph != nil && t.graph.used() {
		return nil
	}
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

// Offsetof returns the byte offset of member in structName, through the
// type graph (Graph) and the project's one resolver (types.Offsetof): member
// is a path ("list.next", "core_layout.size", "arr[3]"); structName may be
// "module", "struct module", "union foo" or a typedef of a struct. A
// bitfield is an error wrapping vmi.ErrUnsupported.
func (t *Types) Offsetof(structName, member string) (uint64, error) {
	return types.Offsetof(t.Graph(), structName, member)
}

// Sizeof returns the size in bytes of a type: "struct module", "task_struct",
// "u64", "long unsigned int", or a pointer such as "struct page *".
func (t *Types) Sizeof(typeName string) (uint64, error) {
	return types.Sizeof(t.Graph(), typeName, t.PointerSize())
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
