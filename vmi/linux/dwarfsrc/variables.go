package dwarfsrc

import (
	"debug/dwarf"
	"debug/elf"
	"fmt"
	"strconv"

	"github.com/xascript/xascript/vmi"
)

// maxVariables bounds how many variables VariableTypes returns: a Debian
// kernel's DWARF has ~150k (statics included); ten times that is not a
// kernel.
const maxVariables = 2 << 20

// VariableTypes reads the type of every named variable in the vmlinux at
// path (see Variables), as a C declarator in the form isf's table of
// globals takes: "struct X", a typedef or base type name, or "func", then
// "*"s, then one "[N]" or "[]". Types that form cannot spell (pointers to
// arrays, arrays of arrays, anonymous types behind no typedef) are left
// out.
func VariableTypes(path string) (map[string]string, error) {
	vars, err := Variables(path)
	if err != nil {
		return nil, err
	}
	types := make(map[string]string, len(vars))
	for name, t := range vars {
		if s, ok := spellVariable(t); ok {
			types[name] = s
		}
	}
	return types, nil
}

// Variables reads the DWARF type of every named variable in the vmlinux at
// path. A variable is declared in many units and defined in one: the
// definition wins (its DW_AT_specification's declaration gives the type
// when it has none), and an array of known length beats `extern T x[]`.
//
// Unlike the rest of this package it decodes the whole .debug_info once
// (about 2 s and 1 GB for a Debian kernel): it serves a one-time export.
func Variables(path string) (vars map[string]dwarf.Type, err error) {
	defer firewall(&err)
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dwarf %s: %w", path, err)
	}
	defer f.Close()
	d, err := f.DWARF()
	if err != nil {
		return nil, fmt.Errorf("dwarf %s: %w: %w", path, vmi.ErrFormat, err)
	}
	vars = map[string]dwarf.Type{}
	defined := map[string]bool{}
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil {
			return nil, fmt.Errorf("dwarf %s: %w: %w", path, vmi.ErrFormat, err)
		}
		if e == nil {
			break
		}
		if e.Tag == dwarf.TagCompileUnit {
			continue
		}
		if e.Tag != dwarf.TagVariable {
			r.SkipChildren()
			continue
		}
		name, _ := e.Val(dwarf.AttrName).(string)
		typeOff, hasType := e.Val(dwarf.AttrType).(dwarf.Offset)
		if spec, ok := e.Val(dwarf.AttrSpecification).(dwarf.Offset); ok {
			sr := d.Reader()
			sr.Seek(spec)
			if se, err := sr.Next(); err == nil && se != nil {
				if name == "" {
					name, _ = se.Val(dwarf.AttrName).(string)
				}
				if !hasType {
					typeOff, hasType = se.Val(dwarf.AttrType).(dwarf.Offset)
				}
			}
		}
		if name == "" || !hasType {
			continue
		}
		isDef := e.Val(dwarf.AttrLocation) != nil
		if defined[name] && !isDef {
			continue
		}
		typ, err := d.Type(typeOff)
		if err != nil {
			continue // a type debug/dwarf cannot read: leave it out
		}
		if old, seen := vars[name]; seen && !isDef && isOpenArray(typ) && !isOpenArray(old) {
			continue
		}
		if _, seen := vars[name]; !seen && len(vars) >= maxVariables {
			return nil, fmt.Errorf("dwarf %s: more than %d variables: %w", path, maxVariables, vmi.ErrLimit)
		}
		vars[name] = typ
		defined[name] = defined[name] || isDef
	}
	return vars, nil
}

// isOpenArray: an array of unknown length (`extern char _text[]`).
func isOpenArray(t dwarf.Type) bool {
	a, ok := peel(t).(*dwarf.ArrayType)
	return ok && a.Count <= 0
}

// spellVariable spells t in the declarator form (see VariableTypes).
func spellVariable(t dwarf.Type) (string, bool) {
	suffix := ""
	if a, ok := peel(t).(*dwarf.ArrayType); ok {
		if a.Count > 0 {
			suffix = "[" + strconv.FormatInt(a.Count, 10) + "]"
		} else {
			suffix = "[]"
		}
		t = a.Type
	}
	stars := ""
	for range 8 {
		p, ok := peel(t).(*dwarf.PtrType)
		if !ok {
			break
		}
		stars += "*"
		t = p.Type
	}
	base, ok := spellBase(t)
	if !ok {
		return "", false
	}
	if stars != "" {
		base += " " + stars
	}
	return base + suffix, true
}

// spellBase names a non-pointer, non-array type: a typedef of an anonymous
// type by the typedef's name (as `pgd_t`), anything else by what it is.
func spellBase(t dwarf.Type) (string, bool) {
	typedef := ""
	for range 16 {
		switch q := t.(type) {
		case *dwarf.QualType:
			t = q.Type
			continue
		case *dwarf.TypedefType:
			typedef = q.Name
			t = q.Type
			continue
		}
		break
	}
	switch b := t.(type) {
	case *dwarf.StructType:
		if b.StructName != "" {
			return b.Kind + " " + b.StructName, true
		}
	case *dwarf.EnumType:
		if b.EnumName != "" {
			return "enum " + b.EnumName, true
		}
	case *dwarf.FuncType:
		return "func", true
	case *dwarf.VoidType:
		return "void", true
	case *dwarf.BoolType, *dwarf.CharType, *dwarf.UcharType, *dwarf.IntType, *dwarf.UintType, *dwarf.FloatType:
		return b.Common().Name, true
	default:
		return "", false
	}
	if typedef != "" {
		return typedef, true
	}
	return "", false
}

// peel drops qualifiers and typedefs (not for naming: to see what t is).
func peel(t dwarf.Type) dwarf.Type {
	for range 16 {
		switch q := t.(type) {
		case *dwarf.QualType:
			t = q.Type
		case *dwarf.TypedefType:
			t = q.Type
		default:
			return t
		}
	}
	return t
}
