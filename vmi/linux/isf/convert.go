package isf

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cilium/ebpf/btf"

	"github.com/xascript/xascript/vmi"
)

// converter turns BTF types into ISF entries the way dwarf2json turns DWARF
// ones (see doc.go).
type converter struct {
	endian  string
	ptrSize int

	base       map[string]baseType
	composites map[string]btf.Type // ISF name -> *btf.Struct or *btf.Union
	enums      map[string]*btf.Enum
	percpu     map[string]btf.Type // per-CPU variable -> its type
	globals    map[string]btf.Type // other typed globals (globals.go)

	names map[btf.Type]string // anonymous struct/union/enum -> unnamed_<hash>
	descs map[btf.Type][]byte // memoized type descriptors
}

type baseType struct {
	size   uint32
	signed bool
	kind   string // void, int, float, char, bool
}

func newConverter(raw []byte) *converter {
	c := &converter{
		endian:     "little",
		base:       map[string]baseType{},
		composites: map[string]btf.Type{},
		enums:      map[string]*btf.Enum{},
		percpu:     map[string]btf.Type{},
		names:      map[btf.Type]string{},
		descs:      map[btf.Type][]byte{},
	}
	// The BTF magic 0xeb9f, as stored, tells the byte order.
	if raw[0] == 0xeb && raw[1] == 0x9f {
		c.endian = "big"
	}
	return c
}

// collect indexes every type worth an entry. When BTF has two types for one
// ISF name (rare: conflicting definitions in different objects), the first
// wins, except that a struct beats a union and an enum with values beats a
// forward-declared one, as a reader asking for the bare name expects.
func (c *converter) collect(spec *btf.Spec) error {
	fwds := map[string]btf.FwdKind{}
	var typedefs []*btf.Typedef
	for typ, err := range spec.All() {
		if err != nil {
			return fmt.Errorf("read BTF: %w", err)
		}
		switch t := typ.(type) {
		case *btf.Int:
			if _, dup := c.base[t.Name]; !dup && t.Name != "" {
				c.base[t.Name] = intBase(t)
			}
		case *btf.Float:
			if _, dup := c.base[t.Name]; !dup && t.Name != "" {
				c.base[t.Name] = baseType{size: t.Size, signed: true, kind: "float"}
			}
		case *btf.Struct, *btf.Union:
			name := c.name(t)
			old, dup := c.composites[name]
			_, oldUnion := old.(*btf.Union)
			_, isStruct := t.(*btf.Struct)
			if !dup || (oldUnion && isStruct) {
				c.composites[name] = t
			}
		case *btf.Enum:
			name := c.name(t)
			if old, dup := c.enums[name]; !dup || (len(old.Values) == 0 && len(t.Values) > 0) {
				c.enums[name] = t
			}
		case *btf.Fwd:
			if t.Name != "" {
				fwds[t.Name] = t.Kind
			}
		case *btf.Typedef:
			if t.Name != "" {
				typedefs = append(typedefs, t)
			}
		case *btf.Datasec:
			for _, v := range t.Vars {
				if v, ok := v.Type.(*btf.Var); ok && v.Name != "" {
					c.percpu[v.Name] = v.Type
				}
			}
		}
	}
	// dwarf2json names a struct, union or enum reached through a typedef
	// by the typedef (`kernel_cap_t`, `atomic_t`, `pgd_t`, `gate_desc`),
	// and gives the typedef its own entry, a copy of its target's.
	// Volatility attaches its extension classes by these names
	// (kernel_cap_t on 6.3+), so the ISF must have them.
	for _, td := range typedefs {
		target, err := resolve(td)
		if err != nil {
			continue
		}
		switch target.(type) {
		case *btf.Struct, *btf.Union:
			if _, dup := c.composites[td.Name]; !dup {
				c.composites[td.Name] = target
			}
		case *btf.Enum:
			if _, dup := c.enums[td.Name]; !dup {
				c.enums[td.Name] = target.(*btf.Enum)
			}
		}
	}
	// A struct only ever declared (`struct assoc_array_ptr;`) is referenced
	// by pointers but has no definition; dwarf2json writes such a
	// declaration as an empty type of size 0, so a reader that resolves
	// every referenced name finds one.
	for name, kind := range fwds {
		if _, ok := c.composites[name]; ok {
			continue
		}
		if kind == btf.FwdUnion {
			c.composites[name] = &btf.Union{Name: name}
		} else {
			c.composites[name] = &btf.Struct{Name: name}
		}
	}
	c.ptrSize = 8
	if b, ok := c.base["long unsigned int"]; ok && (b.size == 4 || b.size == 8) {
		c.ptrSize = int(b.size)
	}
	// dwarf2json's fixed entries: void, and "pointer" for pointer-sized
	// reads (Volatility's native Pointer type).
	c.base["void"] = baseType{kind: "void"}
	c.base["pointer"] = baseType{size: uint32(c.ptrSize), kind: "int"}
	return nil
}

// intBase classifies a BTF int as dwarf2json classifies DWARF base types:
// char types are "char" (signed unless unsigned char), _Bool is "bool".
func intBase(t *btf.Int) baseType {
	b := baseType{size: t.Size, signed: t.Encoding&btf.Signed != 0, kind: "int"}
	switch {
	case t.Encoding&btf.Bool != 0:
		b.kind, b.signed = "bool", false
	case t.Encoding&btf.Char != 0 || (t.Size == 1 && strings.Contains(t.Name, "char")):
		b.kind = "char"
		// pahole marks plain char CHAR without SIGNED; DWARF (and so
		// dwarf2json) calls it signed_char on x86, where char is signed.
		b.signed = b.signed || t.Name == "char" || t.Name == "signed char"
	}
	return b
}

func (c *converter) appendBaseType(buf []byte, name string) ([]byte, error) {
	b := c.base[name]
	buf = append(buf, `{"endian":"`...)
	buf = append(buf, c.endian...)
	buf = append(buf, `","kind":"`...)
	buf = append(buf, b.kind...)
	buf = append(buf, `","signed":`...)
	buf = strconv.AppendBool(buf, b.signed)
	buf = append(buf, `,"size":`...)
	buf = strconv.AppendUint(buf, uint64(b.size), 10)
	return append(buf, '}'), nil
}

// name is the ISF name of a struct, union or enum: its own, or for an
// anonymous one "unnamed_" and 16 hex digits of the SHA-1 of its
// definition (dwarf2json hashes Go's rendering of the DWARF type; ours
// hashes an equivalent rendering of the BTF, so identical anonymous types
// share an entry as they do there).
func (c *converter) name(t btf.Type) string { return c.nameDepth(t, 0) }

// maxDefDepth bounds how deep definitions nest (an anonymous type inside
// an anonymous type ...); real kernels need a few levels, and the bound
// stops a hostile BTF whose anonymous struct contains itself.
const maxDefDepth = 16

func (c *converter) nameDepth(t btf.Type, depth int) string {
	if n := t.TypeName(); n != "" {
		return n
	}
	if n, ok := c.names[t]; ok {
		return n
	}
	if depth > maxDefDepth {
		return "unnamed_too_deep"
	}
	sum := sha1.Sum([]byte(c.def(t, depth)))
	n := "unnamed_" + hex.EncodeToString(sum[:8])
	c.names[t] = n
	return n
}

// def renders an anonymous composite or enum for hashing; nested anonymous
// types appear by their own hashed names.
func (c *converter) def(t btf.Type, depth int) string {
	var b strings.Builder
	switch t := t.(type) {
	case *btf.Struct, *btf.Union:
		var members []btf.Member
		var size uint32
		if s, ok := t.(*btf.Struct); ok {
			b.WriteString("struct {")
			members, size = s.Members, s.Size
		} else {
			u := t.(*btf.Union)
			b.WriteString("union {")
			members, size = u.Members, u.Size
		}
		for _, m := range members {
			fmt.Fprintf(&b, "%s %s @%d:%d; ", c.spell(m.Type, depth+1), m.Name, m.Offset, m.BitfieldSize)
		}
		fmt.Fprintf(&b, "} size %d", size)
	case *btf.Enum:
		fmt.Fprintf(&b, "enum size %d signed %t {", t.Size, t.Signed)
		for _, v := range t.Values {
			fmt.Fprintf(&b, "%s=%d, ", v.Name, v.Value)
		}
		b.WriteString("}")
	}
	return b.String()
}

// spell writes a C-like spelling of a member type for def. Typedefs stay
// by name, so the spelling cannot loop through a self-referencing type.
func (c *converter) spell(t btf.Type, depth int) string {
	if depth > maxDefDepth {
		return "..."
	}
	switch t := t.(type) {
	case *btf.Void:
		return "void"
	case *btf.Int:
		return t.Name
	case *btf.Float:
		return t.Name
	case *btf.Pointer:
		return c.spell(t.Target, depth+1) + "*"
	case *btf.Array:
		return c.spell(t.Type, depth+1) + "[" + strconv.FormatUint(uint64(t.Nelems), 10) + "]"
	case *btf.Struct, *btf.Union, *btf.Enum:
		return kindOf(t) + " " + c.nameDepth(t, depth+1)
	case *btf.Fwd:
		return t.Kind.String() + " " + t.Name
	case *btf.Typedef:
		return t.Name
	case *btf.Const:
		return "const " + c.spell(t.Type, depth+1)
	case *btf.Volatile:
		return "volatile " + c.spell(t.Type, depth+1)
	case *btf.Restrict:
		return c.spell(t.Type, depth+1) + " restrict"
	case *btf.TypeTag:
		return c.spell(t.Type, depth+1)
	case *btf.FuncProto:
		s := "fn("
		for _, p := range t.Params {
			s += c.spell(p.Type, depth+1) + ","
		}
		return s + ")" + c.spell(t.Return, depth+1)
	}
	return fmt.Sprintf("%T", t)
}

func kindOf(t btf.Type) string {
	switch t.(type) {
	case *btf.Union:
		return "union"
	case *btf.Enum:
		return "enum"
	}
	return "struct"
}

// resolve peels typedefs and qualifiers, which an ISF does not have.
func resolve(t btf.Type) (btf.Type, error) {
	for range maxDepth {
		switch q := t.(type) {
		case *btf.Typedef:
			t = q.Type
		case *btf.Const:
			t = q.Type
		case *btf.Volatile:
			t = q.Type
		case *btf.Restrict:
			t = q.Type
		case *btf.TypeTag:
			t = q.Type
		default:
			return t, nil
		}
	}
	return nil, fmt.Errorf("typedef/qualifier chain longer than %d: %w", maxDepth, vmi.ErrLimit)
}

// typedefComposite reports whether t is, behind qualifiers, a typedef of
// an anonymous struct, union or enum: the type is then named by the
// innermost typedef of the chain, the one that names it (atomic_long_t ->
// atomic64_t -> struct {...} is "atomic64_t"), which has its own entry
// (collect), as dwarf2json names it. Volatility attaches extension classes
// by such names (kernel_cap_t, anonymous since 6.3). A typedef of a named
// struct keeps the struct's name, unlike dwarf2json: on 6.1, kernel_cap_t
// is struct kernel_cap_struct, and Volatility's kernel_cap_t class, made
// for 6.3+, fails on it (linux.capabilities works on our ISF, not on
// dwarf2json's); the typedef still has its entry for readers that ask for
// it by name.
func (c *converter) typedefComposite(t btf.Type) (string, btf.Type, bool) {
	name := ""
	for range maxDepth {
		switch q := t.(type) {
		case *btf.Const:
			t = q.Type
		case *btf.Volatile:
			t = q.Type
		case *btf.Restrict:
			t = q.Type
		case *btf.TypeTag:
			t = q.Type
		case *btf.Typedef:
			name, t = q.Name, q.Type
		case *btf.Struct, *btf.Union, *btf.Enum:
			return name, t, name != "" && t.TypeName() == ""
		default:
			return "", nil, false
		}
	}
	return "", nil, false
}

// desc is the type descriptor of t (dwarf2json's typeName), memoized:
// pointers to the same struct recur thousands of times.
func (c *converter) desc(t btf.Type) ([]byte, error) {
	return c.descDepth(t, 0)
}

func (c *converter) descDepth(t btf.Type, depth int) ([]byte, error) {
	if d, ok := c.descs[t]; ok {
		return d, nil
	}
	if depth > maxDepth {
		return nil, fmt.Errorf("type descriptor nested deeper than %d: %w", maxDepth, vmi.ErrLimit)
	}
	if name, target, ok := c.typedefComposite(t); ok {
		d := append([]byte(`{"kind":"`), kindOf(target)...)
		d = appendString(append(d, `","name":`...), name)
		d = append(d, '}')
		c.descs[t] = d
		return d, nil
	}
	rt, err := resolve(t)
	if err != nil {
		return nil, err
	}
	var d []byte
	switch r := rt.(type) {
	case *btf.Void:
		d = []byte(`{"kind":"base","name":"void"}`)
	case *btf.Int, *btf.Float:
		d = appendString([]byte(`{"kind":"base","name":`), r.TypeName())
		d = append(d, '}')
	case *btf.Pointer:
		sub, err := c.descDepth(r.Target, depth+1)
		if err != nil {
			return nil, err
		}
		d = append([]byte(`{"kind":"pointer","subtype":`), sub...)
		d = append(d, '}')
	case *btf.Array:
		sub, err := c.descDepth(r.Type, depth+1)
		if err != nil {
			return nil, err
		}
		d = strconv.AppendUint([]byte(`{"count":`), uint64(r.Nelems), 10)
		d = append(d, `,"kind":"array","subtype":`...)
		d = append(d, sub...)
		d = append(d, '}')
	case *btf.Struct, *btf.Union, *btf.Enum:
		d = append([]byte(`{"kind":"`), kindOf(r)...)
		d = appendString(append(d, `","name":`...), c.name(r))
		d = append(d, '}')
	case *btf.Fwd:
		d = append([]byte(`{"kind":"`), r.Kind.String()...)
		d = appendString(append(d, `","name":`...), r.Name)
		d = append(d, '}')
	case *btf.FuncProto, *btf.Func:
		d = []byte(`{"kind":"function"}`)
	default:
		return nil, fmt.Errorf("BTF %T cannot be a member type: %w", rt, vmi.ErrFormat)
	}
	c.descs[t] = d
	return d, nil
}

type field struct {
	name string
	json []byte
}

// appendUserType writes a struct or union with its fields keyed by name.
func (c *converter) appendUserType(buf []byte, name string) ([]byte, error) {
	t := c.composites[name]
	var members []btf.Member
	var size uint32
	switch t := t.(type) {
	case *btf.Struct:
		members, size = t.Members, t.Size
	case *btf.Union:
		members, size = t.Members, t.Size
	}
	fields := make([]field, 0, len(members))
	seen := make(map[string]bool, len(members))
	for _, m := range members {
		f, ok, err := c.field(m, seen)
		if err != nil {
			return nil, fmt.Errorf("%s %s member %q: %w", kindOf(t), name, m.Name, err)
		}
		if ok {
			fields = append(fields, f)
		}
	}
	slices.SortFunc(fields, func(a, b field) int { return strings.Compare(a.name, b.name) })
	buf = append(buf, `{"fields":{`...)
	for i, f := range fields {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendString(buf, f.name)
		buf = append(buf, ':')
		buf = append(buf, f.json...)
	}
	buf = append(buf, `},"kind":"`...)
	buf = append(buf, kindOf(t)...)
	buf = append(buf, `","size":`...)
	buf = strconv.AppendUint(buf, uint64(size), 10)
	return append(buf, '}'), nil
}

// field renders one member. Unnamed members that are not structs or
// unions (padding bitfields, "int :3") are skipped, as DWARF has none.
// Anonymous struct/union members are named unnamed_field_<hex offset>;
// dwarf2json lets two at the same offset (common in unions) overwrite each
// other, losing members, so a repeat gets a suffix instead.
func (c *converter) field(m btf.Member, seen map[string]bool) (field, bool, error) {
	name, anonymous := m.Name, false
	rt, err := resolve(m.Type)
	if err != nil {
		return field{}, false, err
	}
	byteOff := uint64(m.Offset) / 8
	if name == "" {
		switch rt.(type) {
		case *btf.Struct, *btf.Union:
		default:
			return field{}, false, nil
		}
		name, anonymous = fmt.Sprintf("unnamed_field_%x", byteOff), true
		for i := 1; seen[name]; i++ {
			name = fmt.Sprintf("unnamed_field_%x_%d", byteOff, i)
		}
	}
	seen[name] = true

	var typ []byte
	off := byteOff
	if m.BitfieldSize > 0 {
		off, typ, err = c.bitfield(m, rt)
	} else {
		if m.Offset%8 != 0 {
			return field{}, false, fmt.Errorf("not a bitfield but at bit %d: %w", m.Offset, vmi.ErrFormat)
		}
		typ, err = c.desc(m.Type)
	}
	if err != nil {
		return field{}, false, err
	}
	j := strconv.AppendUint([]byte(`{"offset":`), off, 10)
	if anonymous {
		j = append(j, `,"anonymous":true`...)
	}
	j = append(j, `,"type":`...)
	j = append(j, typ...)
	j = append(j, '}')
	return field{name, j}, true, nil
}

// bitfield places a bitfield the way Volatility reads one: it loads the
// base type at the field's byte offset and takes bits [bit_position,
// bit_position+bit_length) counting from the least significant. So the
// offset is that of the naturally aligned storage unit holding the field;
// a field straddling units (packed structs) falls back to its first byte.
func (c *converter) bitfield(m btf.Member, rt btf.Type) (uint64, []byte, error) {
	var unit uint64 // storage unit size in bytes
	switch r := rt.(type) {
	case *btf.Int:
		unit = uint64(r.Size)
	case *btf.Enum:
		unit = uint64(r.Size)
	default:
		return 0, nil, fmt.Errorf("bitfield of %T: %w", rt, vmi.ErrFormat)
	}
	bitOff, bits := uint64(m.Offset), uint64(m.BitfieldSize)
	var off, pos uint64
	if unit > 0 {
		off = bitOff / (8 * unit) * unit
		pos = bitOff - 8*off
	}
	if unit == 0 || pos+bits > 8*unit {
		off, pos = bitOff/8, bitOff%8
	}
	base, err := c.desc(rt)
	if err != nil {
		return 0, nil, err
	}
	d := strconv.AppendUint([]byte(`{"bit_length":`), bits, 10)
	d = strconv.AppendUint(append(d, `,"bit_position":`...), pos, 10)
	d = append(d, `,"kind":"bitfield","type":`...)
	d = append(d, base...)
	return off, append(d, '}'), nil
}

// appendEnum writes an enum. dwarf2json takes as base the first base type
// (in name order) of kind int with the enum's size and signedness (signed
// when a constant is negative), else "void". A 1-byte enum then gets
// "void", which Volatility cannot read, so char types of the right size
// are the fallback here before void.
func (c *converter) appendEnum(buf []byte, name string) ([]byte, error) {
	e := c.enums[name]
	type constant struct {
		name string
		val  int64
		uval uint64
		neg  bool
	}
	consts := make([]constant, 0, len(e.Values))
	negative := false
	for _, v := range e.Values {
		k := constant{name: v.Name, uval: v.Value}
		if e.Signed {
			// Sign-extend from the enum's width.
			shift := 64 - 8*min(uint(e.Size), 8)
			if e.Size == 0 {
				shift = 0
			}
			k.val = int64(v.Value<<shift) >> shift
			k.neg = k.val < 0
			negative = negative || k.neg
		}
		consts = append(consts, k)
	}
	slices.SortFunc(consts, func(a, b constant) int { return strings.Compare(a.name, b.name) })
	base := "void"
	for _, kind := range []string{"int", "char"} {
		for _, bn := range sortedKeys(c.base) {
			if b := c.base[bn]; b.kind == kind && b.size == e.Size && b.signed == negative {
				base = bn
				break
			}
		}
		if base != "void" {
			break
		}
	}
	buf = appendString(append(buf, `{"base":`...), base)
	buf = append(buf, `,"constants":{`...)
	for i, k := range consts {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendString(buf, k.name)
		buf = append(buf, ':')
		if k.neg {
			buf = strconv.AppendInt(buf, k.val, 10)
		} else {
			buf = strconv.AppendUint(buf, k.uval, 10)
		}
	}
	buf = append(buf, `},"size":`...)
	buf = strconv.AppendUint(buf, uint64(e.Size), 10)
	return append(buf, '}'), nil
}
