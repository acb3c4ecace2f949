package isf

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
)

// validateISF checks a document against the structure of Volatility's
// schema-6.x.json for the parts Write emits (required keys, kinds, value
// patterns, no unknown keys), plus what the schema cannot say but
// Volatility relies on: every struct, union, enum and base type a member
// names exists (a pointer may name a struct BTF never defines, as an
// opaque pointer does in C).
func validateISF(doc []byte) error {
	d := json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber()
	var top map[string]any
	if err := d.Decode(&top); err != nil {
		return err
	}
	v := &validator{}
	v.object(top, "", []string{"metadata", "base_types", "user_types", "enums", "symbols"}, nil)
	v.metadata(obj(top["metadata"]))
	v.types = top
	for name, b := range obj(top["base_types"]) {
		at := "base_types." + name
		bt := obj(b)
		v.object(bt, at, []string{"size", "signed", "kind", "endian"}, nil)
		v.integer(bt["size"], at+".size")
		v.boolean(bt["signed"], at+".signed")
		v.pattern(bt["kind"], at+".kind", `^(void|int|float|char|bool)$`)
		v.pattern(bt["endian"], at+".endian", `^(little|big)$`)
	}
	for name, u := range obj(top["user_types"]) {
		at := "user_types." + name
		ut := obj(u)
		v.object(ut, at, []string{"kind", "size", "fields"}, nil)
		v.pattern(ut["kind"], at+".kind", `^(struct|union|class)$`)
		v.integer(ut["size"], at+".size")
		for fname, f := range obj(ut["fields"]) {
			fat := at + ".fields." + fname
			ft := obj(f)
			v.object(ft, fat, []string{"type", "offset"}, []string{"anonymous"})
			v.integer(ft["offset"], fat+".offset")
			if a, ok := ft["anonymous"]; ok {
				v.boolean(a, fat+".anonymous")
				if k := obj(ft["type"])["kind"]; k != "struct" && k != "union" {
					v.fail(fat, "anonymous member of kind %v", k)
				}
			}
			v.desc(ft["type"], fat+".type", false)
		}
	}
	for name, e := range obj(top["enums"]) {
		at := "enums." + name
		et := obj(e)
		v.object(et, at, []string{"size", "base", "constants"}, nil)
		v.integer(et["size"], at+".size")
		if b, ok := et["base"].(string); !ok {
			v.fail(at+".base", "not a string")
		} else if _, ok := obj(top["base_types"])[b]; !ok {
			v.fail(at+".base", "names missing base type %q", b)
		}
		for c, n := range obj(et["constants"]) {
			v.integer(n, at+".constants."+c)
		}
	}
	for name, s := range obj(top["symbols"]) {
		at := "symbols." + name
		st := obj(s)
		v.object(st, at, []string{"address"}, []string{"type", "constant_data", "linkage_name"})
		if _, ok := st["address"].(json.Number); !ok {
			v.fail(at+".address", "not a number")
		}
		if t, ok := st["type"]; ok {
			v.desc(t, at+".type", false)
		}
		if c, ok := st["constant_data"]; ok {
			if s, ok := c.(string); !ok {
				v.fail(at+".constant_data", "not a string")
			} else if _, err := base64.StdEncoding.DecodeString(s); err != nil {
				v.fail(at+".constant_data", "not base64: %v", err)
			}
		}
	}
	return v.err
}

type validator struct {
	types map[string]any
	err   error
}

func obj(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func (v *validator) fail(at, format string, args ...any) {
	if v.err == nil {
		v.err = fmt.Errorf("%s: %s", at, fmt.Sprintf(format, args...))
	}
}

// object checks that m is an object with the required keys and no keys
// beyond required and optional (the schema's additionalProperties: false).
func (v *validator) object(m map[string]any, at string, required, optional []string) {
	if m == nil {
		v.fail(at, "not an object")
		return
	}
	allowed := map[string]bool{}
	for _, k := range required {
		allowed[k] = true
		if _, ok := m[k]; !ok {
			v.fail(at, "missing %q", k)
		}
	}
	for _, k := range optional {
		allowed[k] = true
	}
	for k := range m {
		if !allowed[k] {
			v.fail(at, "unexpected key %q", k)
		}
	}
}

func (v *validator) integer(x any, at string) {
	n, ok := x.(json.Number)
	if !ok {
		v.fail(at, "not a number: %v", x)
		return
	}
	if _, err := strconv.ParseInt(string(n), 10, 64); err != nil {
		if _, err := strconv.ParseUint(string(n), 10, 64); err != nil {
			v.fail(at, "not an integer: %s", n)
		}
	}
}

func (v *validator) boolean(x any, at string) {
	if _, ok := x.(bool); !ok {
		v.fail(at, "not a boolean: %v", x)
	}
}

func (v *validator) pattern(x any, at, re string) {
	s, ok := x.(string)
	if !ok || !regexp.MustCompile(re).MatchString(s) {
		v.fail(at, "%v does not match %s", x, re)
	}
}

func (v *validator) metadata(m map[string]any) {
	v.object(m, "metadata", []string{"format", "linux"}, []string{"producer"})
	v.pattern(m["format"], "metadata.format", `^6\.[0-9]+\.[0-9]+$`)
	if p, ok := m["producer"]; ok {
		pm := obj(p)
		v.object(pm, "metadata.producer", []string{"name", "version"}, []string{"datetime"})
		v.pattern(pm["version"], "metadata.producer.version", `^[0-9]+\.[0-9]+\.[0-9]+$`)
	}
	linux := obj(m["linux"])
	v.object(linux, "metadata.linux", nil, []string{"symbols", "types"})
	for _, k := range []string{"symbols", "types"} {
		items, ok := linux[k].([]any)
		if _, present := linux[k]; present && !ok {
			v.fail("metadata.linux."+k, "not an array")
		}
		for i, it := range items {
			at := fmt.Sprintf("metadata.linux.%s[%d]", k, i)
			im := obj(it)
			v.object(im, at, nil, []string{"kind", "name", "hash_type", "hash_value"})
			if x, ok := im["kind"]; ok {
				v.pattern(x, at+".kind", `^(dwarf|symtab|system-map)$`)
			}
			if x, ok := im["hash_type"]; ok {
				v.pattern(x, at+".hash_type", `^(sha256)$`)
			}
			if x, ok := im["hash_value"]; ok {
				v.pattern(x, at+".hash_value", `^[a-fA-F0-9]+$`)
			}
		}
	}
}

// desc checks a type descriptor; underPointer lets a struct reference
// dangle (an opaque pointer).
func (v *validator) desc(x any, at string, underPointer bool) {
	m := obj(x)
	if m == nil {
		v.fail(at, "not an object")
		return
	}
	exists := func(section, name string) {
		if _, ok := obj(v.types[section])[name]; !ok {
			v.fail(at, "names missing %s entry %q", section, name)
		}
	}
	switch k, _ := m["kind"].(string); k {
	case "pointer":
		v.object(m, at, []string{"kind", "subtype"}, []string{"base"})
		v.desc(m["subtype"], at+".subtype", true)
	case "base":
		v.object(m, at, []string{"kind", "name"}, nil)
		exists("base_types", fmt.Sprint(m["name"]))
	case "array":
		v.object(m, at, []string{"kind", "subtype", "count"}, nil)
		v.integer(m["count"], at+".count")
		v.desc(m["subtype"], at+".subtype", underPointer)
	case "struct", "union", "class":
		v.object(m, at, []string{"kind", "name"}, nil)
		if !underPointer {
			exists("user_types", fmt.Sprint(m["name"]))
		}
	case "enum":
		v.object(m, at, []string{"kind", "name"}, nil)
		exists("enums", fmt.Sprint(m["name"]))
	case "function":
		v.object(m, at, []string{"kind"}, nil)
	case "bitfield":
		v.object(m, at, []string{"kind", "bit_position", "bit_length", "type"}, nil)
		v.integer(m["bit_position"], at+".bit_position")
		v.integer(m["bit_length"], at+".bit_length")
		if k := obj(m["type"])["kind"]; k != "base" && k != "enum" {
			v.fail(at+".type", "bitfield of kind %v; the schema allows base or enum", k)
		}
		v.desc(m["type"], at+".type", false)
	default:
		v.fail(at, "unknown kind %q", k)
	}
}
