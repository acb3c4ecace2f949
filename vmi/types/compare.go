package types

import (
	"fmt"
	"strings"
)

// Signature describes what a reader of memory needs to know about a type,
// in one line that does not depend on how the source spelled it: typedefs
// are seen through (an ISF has none), base types use canonical names, and
// pointer and array element types are described one level deep. Two
// sources describe a member the same way exactly when their signatures and
// offsets agree.
//
// Two spellings differ between sources and are normalised: a struct, union
// or enum that is anonymous is named by the typedef that names it ("typedef
// struct { int counter; } atomic_t" is one anonymous struct in BTF and DWARF,
// struct atomic_t in an ISF, as dwarf2json names it); and the signedness of
// plain char is left out, since it is the compiler's choice (signed on x86
// up to Linux 6.1, unsigned from 6.2's -funsigned-char) and BTF does not
// record it (pahole encodes char as CHAR, neither signed nor unsigned).
func Signature(t *Type) string { return signature(t, 2) }

func signature(t *Type, depth int) string {
	u := Underlying(t)
	if u == nil {
		return "void"
	}
	switch u.Kind {
	case Int, Float:
		name := CanonicalName(u.Name)
		sign := " unsigned"
		if u.Signed {
			sign = " signed"
		}
		if name == "char" {
			sign = ""
		}
		return fmt.Sprintf("%s %q size %d%s", u.Kind, name, u.Size, sign)
	case Enum, Struct, Union:
		name := u.Name
		for d := t; name == "" && d != nil && d != u && d.Kind == Typedef; d = d.Target {
			if d.Target == u {
				name = d.Name // the typedef that names the anonymous type
			}
		}
		return fmt.Sprintf("%s %q size %d", u.Kind, name, u.Size)
	case Pointer:
		if depth == 0 {
			return fmt.Sprintf("pointer size %d", u.Size)
		}
		return fmt.Sprintf("pointer size %d to %s", u.Size, signature(u.Target, depth-1))
	case Array:
		if depth == 0 {
			return fmt.Sprintf("array[%d] size %d", u.Len, u.Size)
		}
		return fmt.Sprintf("array[%d] size %d of %s", u.Len, u.Size, signature(u.Target, depth-1))
	}
	return u.Kind.String()
}

// CompareStruct resolves every member of structName (anonymous structs and
// unions flattened, as Resolve reaches them) in two graphs and describes
// each difference in size, member list, offset, bit position, bit size or
// Signature; it returns how many members it compared.
func CompareStruct(a, b Graph, structName string) (int, []string) {
	sa, err := Composite(a, structName)
	if err != nil {
		return 0, []string{fmt.Sprintf("%s: first source: %v", structName, err)}
	}
	sb, err := Composite(b, structName)
	if err != nil {
		return 0, []string{fmt.Sprintf("%s: second source: %v", structName, err)}
	}
	var diffs []string
	if sa.Size != sb.Size {
		diffs = append(diffs, fmt.Sprintf("sizeof(%s): %d vs %d", structName, sa.Size, sb.Size))
	}
	// Compared as sets: an ISF keeps no declaration order.
	pa, pb := MemberNames(sa, 0), MemberNames(sb, 0)
	if ka, kb := sorted(pa), sorted(pb); strings.Join(ka, ",") != strings.Join(kb, ",") {
		diffs = append(diffs, fmt.Sprintf("%s members: %v vs %v", structName, ka, kb))
	}
	n := 0
	for _, p := range pa {
		fa, err := Resolve(sa, p)
		if err != nil {
			diffs = append(diffs, fmt.Sprintf("%s.%s: first source: %v", structName, p, err))
			continue
		}
		fb, err := Resolve(sb, p)
		if err != nil {
			diffs = append(diffs, fmt.Sprintf("%s.%s: second source: %v", structName, p, err))
			continue
		}
		n++
		if fa.Offset != fb.Offset || fa.BitOffset != fb.BitOffset || fa.BitSize != fb.BitSize {
			diffs = append(diffs, fmt.Sprintf("%s.%s: at %d bit %d (%d bits) vs at %d bit %d (%d bits)",
				structName, p, fa.Offset, fa.BitOffset, fa.BitSize, fb.Offset, fb.BitOffset, fb.BitSize))
		}
		if s1, s2 := Signature(fa.Type), Signature(fb.Type); s1 != s2 {
			diffs = append(diffs, fmt.Sprintf("%s.%s: %s vs %s", structName, p, s1, s2))
		}
	}
	return n, diffs
}

func sorted(s []string) []string {
	c := append([]string(nil), s...)
	sortStrings(c)
	return c
}
