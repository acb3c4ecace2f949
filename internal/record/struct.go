package record

import (
	"fmt"
	"reflect"
	"strings"
)

// FromStruct turns a Go struct (or pointer to one) into a Record, for the
// commands' reports: exported fields in declaration order, named and
// omitted by their `json` tags as encoding/json would (a name, "-", and
// omitempty). Nested structs become records and slices lists; a nil slice
// is null. Only the kinds a report uses are accepted.
func FromStruct(v any) (Record, error) {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return nil, fmt.Errorf("nil %T %w", v, ErrValue)
		}
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return nil, fmt.Errorf("%T is not a struct: %w", v, ErrValue)
	}
	return fromStruct(rv, 1)
}

func fromStruct(rv reflect.Value, depth int) (Record, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("%w (%d)", ErrTooDeep, MaxDepth)
	}
	t := rv.Type()
	var r Record
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "-" && opts == "" {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		fv := rv.Field(i)
		if strings.Contains(","+opts+",", ",omitempty,") && fv.IsZero() {
			continue
		}
		if fv.Kind() == reflect.Slice && fv.Len() == 0 && strings.Contains(","+opts+",", ",omitempty,") {
			continue
		}
		val, err := fromValue(fv, depth+1)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", name, err)
		}
		r = append(r, Field{name, val})
	}
	return r, nil
}

func fromValue(v reflect.Value, depth int) (any, error) {
	switch v.Kind() {
	case reflect.String:
		return v.String(), nil
	case reflect.Bool:
		return v.Bool(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if v.Type() == reflect.TypeFor[Addr]() {
			return Addr(v.Uint()), nil
		}
		return v.Uint(), nil
	case reflect.Float32, reflect.Float64:
		return v.Float(), nil
	case reflect.Struct:
		return fromStruct(v, depth)
	case reflect.Pointer:
		if v.IsNil() {
			return nil, nil
		}
		return fromValue(v.Elem(), depth)
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return nil, nil
		}
		if depth > MaxDepth {
			return nil, fmt.Errorf("%w (%d)", ErrTooDeep, MaxDepth)
		}
		l := make(List, v.Len())
		for i := range l {
			e, err := fromValue(v.Index(i), depth+1)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			l[i] = e
		}
		return l, nil
	}
	return nil, fmt.Errorf("%s %w", v.Type(), ErrValue)
}
