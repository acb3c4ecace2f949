package btfsrc

import (
	"fmt"
	"strings"

	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/linux/memberpath"
)

// describeDepth bounds how far TypeInfo.Elem descends (pointer to array of
// pointers to ...); enough for typed views, cheap for cyclic types.
const describeDepth = 3

// resolvePath walks a member path from struct id.
func (t *Types) resolvePath(id uint32, path string) (MemberInfo, error) {
	if path == "" {
		return MemberInfo{}, fmt.Errorf("empty member path: %w", vmi.ErrNotFound)
	}
	var (
		bitOff uint64
		m      member
		cur    = id
		last   string
	)
	indexed := false
	for comp := range strings.SplitSeq(path, ".") {
		name, idxs, err := splitIndexes(comp)
		if err != nil {
			return MemberInfo{}, fmt.Errorf("member path %q: %w", path, err)
		}
		sid, rt, err := t.strip(cur)
		if err != nil {
			return MemberInfo{}, err
		}
		if !rt.isComposite() {
			return MemberInfo{}, fmt.Errorf("member path %q: %q is a %s, not a struct or union: %w",
				path, last, t.spell(sid, rt), vmi.ErrNotFound)
		}
		mm, off, found, err := t.findMember(rt, name, 0)
		if err != nil {
			return MemberInfo{}, err
		}
		if !found {
			return MemberInfo{}, t.noMember(sid, rt, name, path)
		}
		m, bitOff, indexed = mm, bitOff+off+uint64(mm.bitOffset), false
		cur = m.typ
		for _, idx := range idxs {
			aid, at, err := t.strip(cur)
			if err != nil {
				return MemberInfo{}, err
			}
			if at.kind() != kindArray {
				return MemberInfo{}, fmt.Errorf("member path %q: %s is a %s, not an array: %w",
					path, comp, t.spell(aid, at), vmi.ErrNotFound)
			}
			elem, count := t.b.bo.Uint32(at.data), uint64(t.b.bo.Uint32(at.data[8:]))
			// count 0 is a flexible array member: any index, as in C.
			if count != 0 && idx >= count {
				return MemberInfo{}, fmt.Errorf("member path %q: index %d out of range [0, %d): %w",
					path, idx, count, vmi.ErrNotFound)
			}
			esz, err := t.size(elem)
			if err != nil {
				return MemberInfo{}, err
			}
			if esz != 0 && idx > (1<<40)/esz {
				return MemberInfo{}, fmt.Errorf("member path %q: index %d too large: %w", path, idx, vmi.ErrLimit)
			}
			bitOff += idx * esz * 8
			cur = elem
			indexed = true
		}
		last = comp
	}
	mi, err := t.memberInfo(m, path, bitOff-uint64(m.bitOffset))
	if err != nil {
		return MemberInfo{}, err
	}
	if indexed {
		// An element of an array member: describe the element, not the member.
		mi.BitSize = 0
		mi.BitOffset = bitOff
		mi.Offset = bitOff / 8
		if mi.Type, err = t.describe(cur, describeDepth); err != nil {
			return MemberInfo{}, err
		}
		if mi.Size, err = t.size(cur); err != nil {
			mi.Size = 0
		}
	}
	return mi, nil
}

// splitIndexes splits "arr[3][2]" into "arr" and [3 2].
func splitIndexes(comp string) (string, []uint64, error) { return memberpath.SplitIndexes(comp) }

// findMember looks for name among the members of composite rt, descending
// into anonymous struct/union members as C does. off is the bit offset of
// the anonymous container(s) the member was found in.
func (t *Types) findMember(rt rawType, name string, depth int) (m member, off uint64, found bool, err error) {
	if depth > maxDepth {
		return m, 0, false, fmt.Errorf("anonymous members nested deeper than %d: %w", maxDepth, vmi.ErrLimit)
	}
	for i := range rt.vlen() {
		mm := t.b.member(rt, i)
		if mm.nameOff != 0 && t.b.nameIs(mm.nameOff, name) {
			return mm, 0, true, nil
		}
		if !t.b.anonymous(mm.nameOff) {
			continue
		}
		_, inner, err := t.strip(mm.typ)
		if err != nil {
			return m, 0, false, err
		}
		if !inner.isComposite() {
			continue
		}
		im, ioff, ok, err := t.findMember(inner, name, depth+1)
		if err != nil || ok {
			return im, ioff + uint64(mm.bitOffset), ok, err
		}
	}
	return m, 0, false, nil
}

// noMember builds the not-found error, naming a few of the members there are.
func (t *Types) noMember(id uint32, rt rawType, name, path string) error {
	var names []string
	var collect func(rt rawType, depth int)
	collect = func(rt rawType, depth int) {
		for i := 0; i < rt.vlen() && len(names) < 9 && depth < 4; i++ {
			mm := t.b.member(rt, i)
			if n := t.b.name(mm.nameOff); n != "" {
				names = append(names, n)
			} else if _, inner, err := t.strip(mm.typ); err == nil && inner.isComposite() {
				collect(inner, depth+1)
			}
		}
	}
	collect(rt, 0)
	list := strings.Join(names, ", ")
	if len(names) > 8 {
		list = strings.Join(names[:8], ", ") + ", ..."
	}
	where := t.spell(id, rt)
	if name != path {
		where += fmt.Sprintf(" (in path %q)", path)
	}
	return fmt.Errorf("no member %q in %s (members: %s): %w", name, where, list, vmi.ErrNotFound)
}

// memberInfo describes member m found at bit offset base (of its container).
func (t *Types) memberInfo(m member, name string, base uint64) (MemberInfo, error) {
	bit := base + uint64(m.bitOffset)
	mi := MemberInfo{Name: name, BitOffset: bit, Offset: bit / 8, BitSize: m.bitSize}
	var err error
	if mi.Type, err = t.describe(m.typ, describeDepth); err != nil {
		return MemberInfo{}, err
	}
	if mi.Size, err = t.size(m.typ); err != nil {
		mi.Size = 0 // functions, incomplete types: nothing to read
	}
	if mi.BitSize == 0 {
		// Legacy bitfields (struct kind_flag clear) hide in the int encoding.
		if _, rt, err := t.strip(m.typ); err == nil && rt.kind() == kindInt {
			enc := t.b.bo.Uint32(rt.data)
			bits, intOff := enc&0xff, (enc>>16)&0xff
			if bits != rt.sizeTyp*8 || intOff != 0 {
				mi.BitSize = bits
				mi.BitOffset += uint64(intOff)
			}
		}
	}
	if mi.BitSize == 0 && bit%8 != 0 {
		return MemberInfo{}, fmt.Errorf("member %q at bit %d is not byte-aligned: %w", name, bit, vmi.ErrFormat)
	}
	if mi.BitSize != 0 {
		mi.Offset = mi.BitOffset / 8
	}
	return mi, nil
}

// describe builds a TypeInfo for id, following pointees and array elements
// depth levels down.
func (t *Types) describe(id uint32, depth int) (TypeInfo, error) {
	var ti TypeInfo
	// Note the outermost typedef before stripping it.
	if id != 0 {
		rt, err := t.b.typ(id)
		if err != nil {
			return ti, err
		}
		if rt.kind() == kindTypedef {
			ti.Typedef = t.b.name(rt.nameOff)
		}
	}
	sid, rt, err := t.strip(id)
	if err != nil {
		return ti, err
	}
	ti.ID = sid
	if sid == 0 {
		ti.Kind, ti.Name = KindVoid, "void"
		return ti, nil
	}
	name := t.b.name(rt.nameOff)
	switch rt.kind() {
	case kindInt:
		enc := t.b.bo.Uint32(rt.data) >> 24
		ti.Kind, ti.Size, ti.Name = KindInt, uint64(rt.sizeTyp), name
		ti.Signed = enc&1 != 0
		ti.Char = enc&2 != 0 || (rt.sizeTyp == 1 && strings.Contains(name, "char"))
		ti.Bool = enc&4 != 0
	case kindFloat:
		ti.Kind, ti.Size, ti.Name, ti.Signed = KindFloat, uint64(rt.sizeTyp), name, true
	case kindEnum, kindEnum64:
		ti.Kind, ti.Size, ti.Signed = KindEnum, uint64(rt.sizeTyp), rt.kindFlag()
		ti.Name = spellTagged("enum", name)
	case kindStruct, kindUnion, kindFwd:
		ti.Kind, ti.Size = KindStruct, uint64(rt.sizeTyp)
		tag := "struct"
		if rt.kind() == kindUnion || (rt.kind() == kindFwd && rt.kindFlag()) {
			ti.Kind, tag = KindUnion, "union"
		}
		if rt.kind() == kindFwd {
			ti.Size = 0
		}
		ti.Name = spellTagged(tag, name)
	case kindPtr:
		ti.Kind, ti.Size = KindPointer, uint64(t.PointerSize())
		if depth > 0 {
			e, err := t.describe(rt.sizeTyp, depth-1)
			if err != nil {
				return ti, err
			}
			ti.Elem = &e
			ti.Name = spellPtr(e)
		} else {
			ti.Name = "void *"
		}
	case kindArray:
		ti.Kind, ti.Count = KindArray, uint64(t.b.bo.Uint32(rt.data[8:]))
		if n, err := t.size(sid); err == nil {
			ti.Size = n
		}
		if depth > 0 {
			e, err := t.describe(t.b.bo.Uint32(rt.data), depth-1)
			if err != nil {
				return ti, err
			}
			ti.Elem = &e
			ti.Name = fmt.Sprintf("%s[%d]", typedefOr(e), ti.Count)
		}
	case kindFuncProto, kindFunc:
		ti.Kind, ti.Name = KindFunc, name
	default:
		return ti, fmt.Errorf("BTF type %d is a %s, not a data type: %w", sid, kindName(rt.kind()), vmi.ErrUnsupported)
	}
	return ti, nil
}

func spellTagged(tag, name string) string {
	if name == "" {
		return "anonymous " + tag
	}
	return tag + " " + name
}

func typedefOr(e TypeInfo) string {
	if e.Typedef != "" {
		return e.Typedef
	}
	return e.Name
}

func spellPtr(e TypeInfo) string {
	n := typedefOr(e)
	if e.Kind == KindFunc {
		return "func *"
	}
	if strings.HasSuffix(n, "*") {
		return n + "*"
	}
	return n + " *"
}

// spell names a type for error messages.
func (t *Types) spell(id uint32, rt rawType) string {
	if id == 0 {
		return "void"
	}
	switch rt.kind() {
	case kindStruct:
		return spellTagged("struct", t.b.name(rt.nameOff))
	case kindUnion:
		return spellTagged("union", t.b.name(rt.nameOff))
	}
	if ti, err := t.describe(id, 1); err == nil && ti.Name != "" {
		return ti.Name
	}
	return kindName(rt.kind())
}
