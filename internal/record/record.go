package record

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// Field is one key and its value.
type Field struct {
	Key   string
	Value any
}

// Record is an object whose fields keep their order.
type Record []Field

// List is an array of values.
type List []any

// Addr is a 64-bit address or other u64 written in hex ("0x…"), exact where
// a JSON number would round.
type Addr uint64

// MaxDepth bounds the nesting of lists and records in one record (the
// record itself is depth 1).
const MaxDepth = 32

// MaxPad bounds the column width of text records: a longer value is
// written whole but does not widen the column for later records.
const MaxPad = 32

// ErrTooDeep is returned for a record nested deeper than MaxDepth.
var ErrTooDeep = errors.New("nested deeper than the limit")

// ErrValue is returned for a value the encoder cannot write (NaN, an
// infinity, an unknown Go type).
var ErrValue = errors.New("cannot be written as a record value")

// Encoder writes records in one form. Its zero value writes text. An
// Encoder keeps column widths between records: use one per output stream,
// from one goroutine.
type Encoder struct {
	// JSON selects JSON Lines instead of text.
	JSON   bool
	widths map[string]int
}

// Append appends r as one line, newline included, to dst. On error dst is
// returned unchanged: nothing of a bad record is written.
func (e *Encoder) Append(dst []byte, r Record) ([]byte, error) {
	if e.JSON {
		out, err := appendRecord(dst, r, 1)
		if err != nil {
			return dst, err
		}
		return append(out, '\n'), nil
	}
	return e.appendText(dst, r)
}

func (e *Encoder) appendText(dst []byte, r Record) ([]byte, error) {
	out := dst
	// Widths are updated only once the whole record encodes, so that a
	// failed record leaves no trace.
	widths := make([]int, len(r))
	for i, f := range r {
		if i > 0 {
			out = append(out, ' ')
		}
		out = append(out, textKey(f.Key)...)
		out = append(out, '=')
		start := len(out)
		var err error
		if out, err = appendTextValue(out, f.Value); err != nil {
			return dst, fmt.Errorf("field %s: %w", f.Key, err)
		}
		widths[i] = utf8.RuneCount(out[start:])
		if i < len(r)-1 {
			for n := widths[i]; n < e.widths[f.Key]; n++ {
				out = append(out, ' ')
			}
		}
	}
	if e.widths == nil {
		e.widths = map[string]int{}
	}
	for i, f := range r {
		if n := widths[i]; n <= MaxPad && n > e.widths[f.Key] {
			e.widths[f.Key] = n
		}
	}
	return append(out, '\n'), nil
}

// textKey writes a key as it is when plain, quoted otherwise.
func textKey(k string) string {
	if plain(k) {
		return k
	}
	return strconv.Quote(k)
}

func appendTextValue(dst []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case string:
		if plain(v) {
			return append(dst, v...), nil
		}
		return strconv.AppendQuote(dst, v), nil
	case Addr:
		dst = append(dst, '0', 'x')
		return strconv.AppendUint(dst, uint64(v), 16), nil
	case List, Record:
		return appendValue(dst, v, 2)
	}
	return appendValue(dst, v, 1)
}

// plain tells whether s can be written bare in a text record: non-empty,
// valid UTF-8, printable, and free of the characters that delimit fields.
func plain(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r == ' ' || r == '"' || r == '\\' || r == '=' || !strconv.IsPrint(r) {
			return false
		}
	}
	return true
}

func appendRecord(dst []byte, r Record, depth int) ([]byte, error) {
	if depth > MaxDepth {
		return dst, fmt.Errorf("%w (%d)", ErrTooDeep, MaxDepth)
	}
	dst = append(dst, '{')
	for i, f := range r {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, f.Key)
		dst = append(dst, ':')
		var err error
		if dst, err = appendValue(dst, f.Value, depth+1); err != nil {
			return dst, fmt.Errorf("field %s: %w", f.Key, err)
		}
	}
	return append(dst, '}'), nil
}

// appendValue writes v as JSON; depth is the nesting level v would have.
func appendValue(dst []byte, v any, depth int) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case bool:
		return strconv.AppendBool(dst, v), nil
	case string:
		return appendJSONString(dst, v), nil
	case int:
		return strconv.AppendInt(dst, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(dst, v, 10), nil
	case int32:
		return strconv.AppendInt(dst, int64(v), 10), nil
	case uint64:
		return strconv.AppendUint(dst, v, 10), nil
	case uint32:
		return strconv.AppendUint(dst, uint64(v), 10), nil
	case uint:
		return strconv.AppendUint(dst, uint64(v), 10), nil
	case float64:
		return appendFloat(dst, v)
	case Addr:
		dst = append(dst, '"', '0', 'x')
		dst = strconv.AppendUint(dst, uint64(v), 16)
		return append(dst, '"'), nil
	case Record:
		return appendRecord(dst, v, depth)
	case List:
		if depth > MaxDepth {
			return dst, fmt.Errorf("%w (%d)", ErrTooDeep, MaxDepth)
		}
		dst = append(dst, '[')
		for i, e := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = appendValue(dst, e, depth+1); err != nil {
				return dst, fmt.Errorf("[%d]: %w", i+1, err)
			}
		}
		return append(dst, ']'), nil
	}
	return dst, fmt.Errorf("%T %w", v, ErrValue)
}

// appendFloat writes f as encoding/json does: integers without a fraction
// or exponent, exponents only for very small or large magnitudes.
func appendFloat(dst []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return dst, fmt.Errorf("%v %w (JSON has no NaN or infinity)", f, ErrValue)
	}
	format := byte('f')
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// e-07 -> e-7, as encoding/json writes it.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, nil
}

const hexDigits = "0123456789abcdef"

// appendJSONString writes s as a JSON string. Control characters, DEL and
// the C1 range are escaped (a terminal acts on them), as are the quote and
// backslash; invalid UTF-8 becomes U+FFFD.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c < 0x20 || c == 0x7f:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, "\ufffd"...)
		case r >= 0x80 && r < 0xa0, r == 0x2028, r == 0x2029:
			dst = append(dst, '\\', 'u', hexDigits[r>>12], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
		default:
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}
