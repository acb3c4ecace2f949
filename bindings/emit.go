package bindings

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/xascript/xascript/internal/record"
)

// maxEmitValues bounds the values (fields, list items, nested tables) of
// one record: a table reachable twice (not a cycle) is written twice, so a
// small table can stand for an exponentially large record.
const maxEmitValues = 1 << 20

// The fields xascript adds to every record; a script cannot set them.
const (
	guestField = "guest"
	timeField  = "time"
)

// timeLayout is RFC 3339 in UTC with milliseconds, fixed width.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

func emitArea(env *Env) Area {
	return Area{
		Name:  "output",
		Title: "Output",
		Doc: "`print` writes lines for people; `emit` writes records that other tools read as well. " +
			"Records and printed lines reach the output in the order the script wrote them.",
		Bindings: []Binding{
			{Name: "emit", Signature: "emit(record [, order])",
				Doc: "Writes `record` (a table with string keys) as one line. With `--json` the line is a JSON object " +
					"(JSON Lines: pipe it into `jq`); otherwise it is `key=value` pairs separated by spaces, each value but " +
					"the last padded to the widest seen so far under its key (up to 32 characters), so that records of one " +
					"shape line up in columns. A text value is bare when it is plain (printable, no space, quote, backslash " +
					"or `=`) and a quoted, escaped string otherwise, so a name read from the guest cannot forge a line.\n\n" +
					"Fields come in a stable order: `guest`, `time`, then the keys listed in `order` (an array of names; " +
					"those the record lacks are skipped), then the other keys sorted. Values: numbers (integers without a " +
					"fraction), strings, booleans, addresses (as `\"0x…\"` strings: exact where a JSON number would round), " +
					"and tables: a table whose keys are 1..n is an array, any other table an object (an empty table is `{}`; " +
					"integer and address keys become strings). JSON strings escape control characters and turn invalid " +
					"UTF-8 into U+FFFD. Raises an error for a function or other userdata value, NaN or an infinity, a table " +
					"that contains itself, nesting deeper than 32, or more than 2^20 values in one record; nothing of a " +
					"record that fails is written.\n\n" +
					"`guest` (the target's name: the `--dom` name or id, the `--qemu` socket, the dump file's base name; " +
					"with only a disk, the `--disk` image's base name) is in every record when there is a target. `time` (when the record was written: RFC 3339 UTC with " +
					"milliseconds, e.g. `2026-01-02T15:04:05.123Z`) is in every record when the guest is live (`--qemu`, " +
					"`--dom`) or a disk is watched as it is written (`--nbd`, `--tapfifo`): that is when the monitor polls or " +
					"watches, and a dump's records describe the moment the dump was taken, not the moment they were written. " +
					"A script cannot set either field itself.",
				Fn: env.emit},
		},
	}
}

// emit is the emit binding.
func (env *Env) emit(L *lua.LState) int {
	t := L.CheckTable(1)
	var order []string
	if o, ok := L.Get(2).(*lua.LTable); ok {
		for i := 1; i <= o.Len(); i++ {
			s, ok := o.RawGetInt(i).(lua.LString)
			if !ok {
				L.ArgError(2, fmt.Sprintf("order[%d] is a %s, not a field name", i, o.RawGetInt(i).Type()))
			}
			order = append(order, string(s))
		}
	} else if L.Get(2) != lua.LNil {
		L.ArgError(2, "order must be an array of field names, not a "+L.Get(2).Type().String())
	}
	rec, err := env.luaRecord(t, order)
	if err != nil {
		L.RaiseError("emit: %v", err)
	}
	out := env.Output
	if out == nil {
		L.RaiseError("emit: no output")
	}
	env.records.JSON = env.JSON
	env.recordBuf, err = env.records.Append(env.recordBuf[:0], rec)
	if err != nil {
		L.RaiseError("emit: %v", err)
	}
	if _, err := out.Write(env.recordBuf); err != nil {
		L.RaiseError("emit: write: %v", err)
	}
	if err := out.EndRecord(); err != nil {
		L.RaiseError("emit: write: %v", err)
	}
	return 0
}

// luaRecord turns the script's table into a record: xascript's fields,
// then those named in order, then the others sorted.
func (env *Env) luaRecord(t *lua.LTable, order []string) (record.Record, error) {
	c := converter{visiting: map[*lua.LTable]bool{t: true}, budget: maxEmitValues}
	fields, err := c.fields(t, 1)
	if err != nil {
		return nil, err
	}
	var rec record.Record
	if env.GuestName != "" {
		rec = append(rec, record.Field{Key: guestField, Value: env.GuestName})
	}
	if env.RecordTime {
		rec = append(rec, record.Field{Key: timeField, Value: time.Now().UTC().Format(timeLayout)})
	}
	used := make([]bool, len(fields))
	for _, name := range order {
		i := sort.Search(len(fields), func(i int) bool { return fields[i].Key >= name })
		if i < len(fields) && fields[i].Key == name && !used[i] {
			rec = append(rec, fields[i])
			used[i] = true
		}
	}
	for i, f := range fields {
		if !used[i] {
			rec = append(rec, f)
		}
	}
	return rec, nil
}

// converter walks a Lua table into record values, refusing cycles and
// bounding depth and size. path holds the segments of where it is ("x",
// ".name", "[2]"), joined only for an error message.
type converter struct {
	visiting map[*lua.LTable]bool
	budget   int
	path     []string
}

var errNotRecord = errors.New("a record is a table with string keys (emit{name = value})")

// where names the field being converted.
func (c *converter) where() string { return strings.Join(c.path, "") }

// fields converts the top-level table: string keys only, sorted, none
// reserved.
func (c *converter) fields(t *lua.LTable, depth int) ([]record.Field, error) {
	var fields []record.Field
	var err error
	t.ForEach(func(k, v lua.LValue) {
		if err != nil {
			return
		}
		s, ok := k.(lua.LString)
		if !ok {
			err = fmt.Errorf("key %s is a %s: %w", lua.LVAsString(k), k.Type(), errNotRecord)
			return
		}
		key := string(s)
		if key == guestField || key == timeField {
			err = fmt.Errorf("field %q is set by xascript, not by the script", key)
			return
		}
		c.path = append(c.path[:0], key)
		var val any
		if val, err = c.value(v, depth+1); err == nil {
			fields = append(fields, record.Field{Key: key, Value: val})
		}
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(fields, func(i, j int) bool { return fields[i].Key < fields[j].Key })
	return fields, nil
}

// value converts one value found at c.path; depth is the level it would
// have in the record.
func (c *converter) value(v lua.LValue, depth int) (any, error) {
	if c.budget--; c.budget < 0 {
		return nil, fmt.Errorf("more than %d values in one record", maxEmitValues)
	}
	switch x := v.(type) {
	case lua.LBool:
		return bool(x), nil
	case lua.LString:
		return string(x), nil
	case lua.LNumber:
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("field %s: %v has no JSON form", c.where(), f)
		}
		return f, nil
	case *lua.LUserData:
		if a, ok := x.Value.(Address); ok {
			return record.Addr(a), nil
		}
		return nil, fmt.Errorf("field %s: a userdata value cannot be emitted", c.where())
	case *lua.LTable:
		if depth > record.MaxDepth {
			return nil, fmt.Errorf("field %s: nested deeper than %d", c.where(), record.MaxDepth)
		}
		if c.visiting[x] {
			return nil, fmt.Errorf("field %s: the table contains itself (a cycle)", c.where())
		}
		c.visiting[x] = true
		defer delete(c.visiting, x)
		return c.table(x, depth)
	}
	return nil, fmt.Errorf("field %s: a %s cannot be emitted", c.where(), v.Type())
}

// table converts a nested table: an array when its keys are exactly 1..n,
// else an object with sorted keys.
func (c *converter) table(t *lua.LTable, depth int) (any, error) {
	type kv struct {
		key string // for an integer key, made only if the table is an object
		num bool
		idx int64
		v   lua.LValue
	}
	var items []kv
	var err error
	seq := true
	t.ForEach(func(k, v lua.LValue) {
		if err != nil {
			return
		}
		switch x := k.(type) {
		case lua.LString:
			items = append(items, kv{key: string(x), v: v})
			seq = false
		case lua.LNumber:
			f := float64(x)
			if f != math.Trunc(f) || math.Abs(f) >= 1<<53 {
				err = fmt.Errorf("field %s: key %v is not an integer", c.where(), f)
				return
			}
			items = append(items, kv{num: true, idx: int64(f), v: v})
		case *lua.LUserData:
			a, ok := x.Value.(Address)
			if !ok {
				err = fmt.Errorf("field %s: a userdata key cannot be emitted", c.where())
				return
			}
			items = append(items, kv{key: formatAddress(uint64(a)), v: v})
			seq = false
		default:
			err = fmt.Errorf("field %s: a %s key cannot be emitted", c.where(), k.Type())
		}
	})
	if err != nil {
		return nil, err
	}
	if seq && len(items) > 0 {
		// Integer keys only: an array when they are 1..n.
		sort.Slice(items, func(i, j int) bool { return items[i].idx < items[j].idx })
		for i, it := range items {
			if it.idx != int64(i+1) {
				seq = false
				break
			}
		}
	}
	depthPath := len(c.path)
	defer func() { c.path = c.path[:depthPath] }()
	if seq && len(items) > 0 {
		l := make(record.List, len(items))
		for i, it := range items {
			c.path = append(c.path[:depthPath], "["+strconv.Itoa(i+1)+"]")
			if l[i], err = c.value(it.v, depth+1); err != nil {
				return nil, err
			}
		}
		return l, nil
	}
	for i := range items {
		if items[i].num {
			items[i].key = strconv.FormatInt(items[i].idx, 10)
		}
	}
	sort.Slice(items, func(i, j int) bool { return items[i].key < items[j].key })
	r := make(record.Record, len(items))
	for i, it := range items {
		if i > 0 && items[i-1].key == it.key { // t[1] and t["1"]
			c.path = c.path[:depthPath]
			return nil, fmt.Errorf("field %s: two keys are written %q", c.where(), it.key)
		}
		r[i].Key = it.key
		c.path = append(c.path[:depthPath], "."+it.key)
		if r[i].Value, err = c.value(it.v, depth+1); err != nil {
			return nil, err
		}
	}
	return r, nil
}
