package btfsrc

import (
	"bytes"
	"fmt"

	"github.com/cilium/ebpf/btf"

	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/types"
)

// CheckedStructs are the structs a derived profile is cross-checked on:
// the ones the example monitors and the kernel locator read.
var CheckedStructs = []string{"list_head", "module", "task_struct", "mm_struct"}

// CrossCheck decodes t's blob with cilium/ebpf/btf, the field's reference
// BTF library, and checks that this package's type graph (Graph, resolved by
// types.Resolve) gives the same size for each named struct and the same bit
// offset, bit size, byte size, kind, signedness and (base types) name for
// each of its members (members of anonymous structs and unions flattened, as
// Resolve reaches them). It returns how many members agreed.
//
// Profiles derived from guest memory run it once per kernel, before the
// BTF is cached: the blob came from the guest, so one that cilium rejects,
// or on which the two decoders disagree, is refused. Later runs use this
// package's index alone, which is what keeps a warm run within
// milliseconds (see doc.go).
func CrossCheck(t *Types, structs []string) (int, error) {
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(t.Raw()))
	if err != nil {
		return 0, fmt.Errorf("cilium/ebpf rejects the BTF: %v: %w", err, vmi.ErrFormat)
	}
	checked := 0
	for _, name := range structs {
		var s *btf.Struct
		if err := spec.TypeByName(name, &s); err != nil {
			return checked, fmt.Errorf("cilium/ebpf: struct %s: %w", name, err)
		}
		want, err := btf.Sizeof(s)
		if err != nil {
			return checked, fmt.Errorf("cilium/ebpf: sizeof(struct %s): %w", name, err)
		}
		st, err := t.Graph().Lookup("struct " + name)
		if err != nil || st.Size != uint64(want) {
			return checked, fmt.Errorf("sizeof(struct %s) = %v (%v); cilium/ebpf says %d: %w", name, st, err, want, vmi.ErrFormat)
		}
		n, err := crossCheckMembers(st, name, s.Members, 0, 0)
		checked += n
		if err != nil {
			return checked, err
		}
	}
	return checked, nil
}

// maxAnonDepth bounds the nesting of anonymous members followed.
const maxAnonDepth = 16

func crossCheckMembers(st *types.Type, strct string, ms []btf.Member, base btf.Bits, depth int) (int, error) {
	if depth > maxAnonDepth {
		return 0, fmt.Errorf("struct %s: anonymous members nested deeper than %d: %w", strct, maxAnonDepth, vmi.ErrLimit)
	}
	checked := 0
	for _, m := range ms {
		off := base + m.Offset
		if m.Name == "" {
			var inner []btf.Member
			switch in := btf.UnderlyingType(m.Type).(type) {
			case *btf.Struct:
				inner = in.Members
			case *btf.Union:
				inner = in.Members
			}
			n, err := crossCheckMembers(st, strct, inner, off, depth+1)
			checked += n
			if err != nil {
				return checked, err
			}
			continue
		}
		f, err := types.Resolve(st, m.Name)
		if err != nil {
			return checked, fmt.Errorf("struct %s member %s, which cilium/ebpf decodes: %w", strct, m.Name, err)
		}
		if bit := f.Offset*8 + uint64(f.BitOffset); bit != uint64(off) || f.BitSize != uint32(m.BitfieldSize) {
			return checked, fmt.Errorf("struct %s member %s at bit %d (%d bits); cilium/ebpf says bit %d (%d bits): %w",
				strct, m.Name, bit, f.BitSize, off, m.BitfieldSize, vmi.ErrFormat)
		}
		if err := sameType(f.Type, m.Type, m.BitfieldSize != 0); err != nil {
			return checked, fmt.Errorf("struct %s member %s: %w", strct, m.Name, err)
		}
		checked++
	}
	return checked, nil
}

// sameType compares a graph type with cilium's decoding of it: size (not
// for bitfields), kind after typedefs, and for base types signedness and
// canonical name.
func sameType(got *types.Type, want btf.Type, bitfield bool) error {
	u := types.Underlying(got)
	if u == nil {
		return fmt.Errorf("no type; cilium/ebpf says %s: %w", want, vmi.ErrFormat)
	}
	if !bitfield {
		if sz, err := btf.Sizeof(want); err == nil && uint64(sz) != got.Size {
			return fmt.Errorf("%d bytes; cilium/ebpf says %d: %w", got.Size, sz, vmi.ErrFormat)
		}
	}
	var kind types.Kind
	switch w := btf.UnderlyingType(want).(type) {
	case *btf.Int:
		kind = types.Int
		if u.Kind == types.Int && (u.Signed != (w.Encoding&btf.Signed != 0) || u.Name != types.CanonicalName(w.Name)) {
			return fmt.Errorf("%s (signed %v); cilium/ebpf says %s (signed %v): %w", u.Name, u.Signed, w.Name, w.Encoding&btf.Signed != 0, vmi.ErrFormat)
		}
	case *btf.Float:
		kind = types.Float
	case *btf.Pointer:
		kind = types.Pointer
	case *btf.Array:
		kind = types.Array
		if u.Kind == types.Array && u.Len != uint64(w.Nelems) {
			return fmt.Errorf("array of %d; cilium/ebpf says %d: %w", u.Len, w.Nelems, vmi.ErrFormat)
		}
	case *btf.Struct:
		kind = types.Struct
	case *btf.Union:
		kind = types.Union
	case *btf.Enum:
		kind = types.Enum
		if u.Kind == types.Enum && (u.Signed != w.Signed || len(u.Enumerators) != len(w.Values)) {
			return fmt.Errorf("enum %s differs from cilium/ebpf's: %w", u.Name, vmi.ErrFormat)
		}
	case *btf.Fwd:
		kind = types.Struct
		if w.Kind == btf.FwdUnion {
			kind = types.Union
		}
	default:
		return nil
	}
	if u.Kind != kind {
		return fmt.Errorf("a %s; cilium/ebpf says a %s (%s): %w", u.Kind, kind, want, vmi.ErrFormat)
	}
	return nil
}
