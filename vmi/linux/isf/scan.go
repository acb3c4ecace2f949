package isf

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/xascript/xascript/vmi"
)

// Decoding a 10 MB ISF with encoding/json takes ~400 ms, mostly spent on
// thousands of struct definitions a script never asks about. So Parse walks
// the document with this small scanner: it checks the JSON structure
// (strings, nesting), records each user type and enum as a slice of the
// document to decode on first use, and reads symbol addresses directly.
// encoding/json still decodes every entry that is used.

// maxNest bounds bracket nesting; a real ISF nests a dozen levels.
const maxNest = 1000

type scanner struct {
	data []byte
	pos  int
}

func (s *scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("at byte %d: %s: %w", s.pos, fmt.Sprintf(format, args...), vmi.ErrFormat)
}

func (s *scanner) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\r', '\n':
			s.pos++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.pos >= len(s.data) {
		return 0
	}
	return s.data[s.pos]
}

func (s *scanner) expect(c byte) error {
	if s.peek() != c {
		return s.errorf("expected %q", c)
	}
	s.pos++
	return nil
}

// skipString moves past the string starting at pos and reports whether it
// holds escapes. Control characters, which JSON forbids in strings, are
// left for encoding/json to refuse when an entry is decoded: checking them
// here would cost a byte-by-byte loop over the whole document.
func (s *scanner) skipString() (escaped bool, err error) {
	if s.peek() != '"' {
		return false, s.errorf("expected a string")
	}
	for i := s.pos + 1; i < len(s.data); {
		j := bytes.IndexByte(s.data[i:], '"')
		if j < 0 {
			break
		}
		k := bytes.IndexByte(s.data[i:i+j], '\\')
		if k < 0 {
			s.pos = i + j + 1
			return escaped, nil
		}
		escaped = true
		i += k + 2 // past the backslash and the character it escapes
	}
	return false, s.errorf("unterminated string")
}

// str reads a string.
func (s *scanner) str() (string, error) {
	start := s.pos + 1
	escaped, err := s.skipString()
	if err != nil {
		return "", err
	}
	if !escaped {
		return string(s.data[start : s.pos-1]), nil
	}
	var out string
	if err := json.Unmarshal(s.data[start-1:s.pos], &out); err != nil {
		return "", s.errorf("bad string: %v", err)
	}
	return out, nil
}

// skip moves past one value and returns it.
func (s *scanner) skip() ([]byte, error) {
	s.ws()
	start := s.pos
	var stack []byte
	for {
		if s.pos >= len(s.data) {
			return nil, s.errorf("unexpected end")
		}
		switch c := s.data[s.pos]; c {
		case '"':
			if _, err := s.skipString(); err != nil {
				return nil, err
			}
		case '{', '[':
			if len(stack) >= maxNest {
				return nil, s.errorf("nested deeper than %d", maxNest)
			}
			stack = append(stack, c+2) // '{'+2 is '}', '['+2 is ']'
			s.pos++
		case '}', ']':
			if len(stack) == 0 || stack[len(stack)-1] != c {
				return nil, s.errorf("unbalanced %q", c)
			}
			stack = stack[:len(stack)-1]
			s.pos++
		case ' ', '\t', '\r', '\n', ',', ':':
			if len(stack) == 0 {
				return nil, s.errorf("expected a value")
			}
			s.pos++
		default:
			n := s.pos
			for s.pos < len(s.data) && isLiteral(s.data[s.pos]) {
				s.pos++
			}
			if s.pos == n {
				return nil, s.errorf("unexpected %q", c)
			}
		}
		if len(stack) == 0 {
			return s.data[start:s.pos], nil
		}
	}
}

func isLiteral(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'E'
}

// object calls member for each key of the object at pos; member must
// consume the value.
func (s *scanner) object(member func(key string) error) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	if s.peek() == '}' {
		s.pos++
		return nil
	}
	for {
		s.ws()
		key, err := s.str()
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		if err := member(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return nil
		default:
			return s.errorf("expected ',' or '}'")
		}
	}
}

// rawMembers collects the members of the object at pos as document slices.
func (s *scanner) rawMembers() (map[string][]byte, error) {
	m := map[string][]byte{}
	err := s.object(func(key string) error {
		v, err := s.skip()
		m[key] = v
		return err
	})
	return m, err
}

// decodeSymbol decodes a symbol entry: the usual {"address":N} directly,
// anything else through encoding/json.
func decodeSymbol(raw []byte) (symbolJSON, error) {
	const prefix = `{"address":`
	if len(raw) > len(prefix) && string(raw[:len(prefix)]) == prefix {
		i := len(prefix)
		for i < len(raw) && raw[i] >= '0' && raw[i] <= '9' {
			i++
		}
		if i > len(prefix) && i == len(raw)-1 && raw[i] == '}' {
			return symbolJSON{Address: json.Number(raw[len(prefix):i])}, nil
		}
	}
	var sj symbolJSON
	err := json.Unmarshal(raw, &sj)
	return sj, err
}
