package btfsrc

import (
	"bytes"
	"fmt"

	"github.com/cilium/ebpf/btf"

	"github.com/xascript/xascript/vmi"
)

// CheckedStructs are the structs a derived profile is cross-checked on:
// the ones the example monitors and the kernel locator read.
var CheckedStructs = []string{"list_head", "module", "task_struct", "mm_struct"}

// CrossCheck decodes t's blob with cilium/ebpf/btf, the field's reference
// BTF library, and checks that this package gives the same size for each
// named struct and the same bit offset, bit size and byte size for each of
// its members (members of anonymous structs and unions flattened, as
// Member resolves them). It returns how many members agreed.
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
		if got, err := t.Sizeof(name); err != nil || got != uint64(want) {
			return checked, fmt.Errorf("sizeof(struct %s) = %d (%v); cilium/ebpf says %d: %w", name, got, err, want, vmi.ErrFormat)
		}
		n, err := crossCheckMembers(t, name, s.Members, 0, 0)
		checked += n
		if err != nil {
			return checked, err
		}
	}
	return checked, nil
}

// maxAnonDepth bounds the nesting of anonymous members followed.
const maxAnonDepth = 16

func crossCheckMembers(t *Types, strct string, ms []btf.Member, base btf.Bits, depth int) (int, error) {
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
			n, err := crossCheckMembers(t, strct, inner, off, depth+1)
			checked += n
			if err != nil {
				return checked, err
			}
			continue
		}
		mi, err := t.Member(strct, m.Name)
		if err != nil {
			return checked, fmt.Errorf("struct %s member %s, which cilium/ebpf decodes: %w", strct, m.Name, err)
		}
		if mi.BitOffset != uint64(off) || mi.BitSize != uint32(m.BitfieldSize) {
			return checked, fmt.Errorf("struct %s member %s at bit %d (%d bits); cilium/ebpf says bit %d (%d bits): %w",
				strct, m.Name, mi.BitOffset, mi.BitSize, off, m.BitfieldSize, vmi.ErrFormat)
		}
		if m.BitfieldSize == 0 {
			if sz, err := btf.Sizeof(m.Type); err == nil && uint64(sz) != mi.Size {
				return checked, fmt.Errorf("struct %s member %s is %d bytes; cilium/ebpf says %d: %w", strct, m.Name, mi.Size, sz, vmi.ErrFormat)
			}
		}
		checked++
	}
	return checked, nil
}
