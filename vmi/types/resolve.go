package types

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"

	"github.com/xascript/xascript/vmi"
)

// MaxDepth bounds typedef chains and the nesting of anonymous members that
// the walks here follow: real kernels stay below 10, a hostile or cyclic
// graph stops here.
const MaxDepth = 64

// maxOffset bounds the byte offset a member path may reach (1 TiB): no kernel
// object is that large, and it keeps index arithmetic far from overflow.
const maxOffset = 1 << 40

// Underlying strips typedefs (bounded: a typedef cycle is an error-free stop
// at the bound, never a hang).
func Underlying(t *Type) *Type {
	for range MaxDepth {
		if t == nil || t.Kind != Typedef {
			return t
		}
		t = t.Target
	}
	return t
}

// Resolve walks a member path ("list.next", "mem[1].size", "arr[2][3]") from
// t, seeing through typedefs and anonymous struct/union members; array
// indexes are bounds-checked (flexible arrays accept any index with overflow
// checks). Unknown members: an error wrapping vmi.ErrNotFound that names the
// struct and lists near names. The one member-path resolver of the project.
func Resolve(t *Type, path string) (Field, error) {
	if path == "" {
		return Field{}, fmt.Errorf("empty member path: %w", vmi.ErrNotFound)
	}
	if t == nil {
		return Field{}, fmt.Errorf("member path %q: no type: %w", path, vmi.ErrNotFound)
	}
	var (
		bitOff  uint64
		bitSize uint32
		cur     = t
		last    string // the component before, for errors; "" at the start
	)
	for comp := range strings.SplitSeq(path, ".") {
		name, idxs, err := SplitIndexes(comp)
		if err != nil {
			return Field{}, fmt.Errorf("member path %q: %w", path, err)
		}
		st := Underlying(cur)
		if !st.IsComposite() {
			if last == "" {
				last = spellOrKind(t) // spelled only here: String allocates
			}
			return Field{}, fmt.Errorf("member path %q: %q is a %s, not a struct or union: %w",
				path, last, spellOrKind(cur), vmi.ErrNotFound)
		}
		m, off, found, err := findMember(st, name, 0)
		if err != nil {
			return Field{}, fmt.Errorf("member path %q: %w", path, err)
		}
		if !found {
			return Field{}, noMember(st, name, path)
		}
		if bitOff, err = addBits(bitOff, off, m.BitOffset); err != nil {
			return Field{}, fmt.Errorf("member path %q: %w", path, err)
		}
		cur, bitSize = m.Type, m.BitSize
		for _, idx := range idxs {
			at := Underlying(cur)
			if at == nil || at.Kind != Array {
				return Field{}, fmt.Errorf("member path %q: %s is a %s, not an array: %w",
					path, comp, spellOrKind(cur), vmi.ErrNotFound)
			}
			if at.Len != 0 && idx >= at.Len {
				return Field{}, fmt.Errorf("member path %q: index %d out of range [0, %d): %w",
					path, idx, at.Len, vmi.ErrNotFound)
			}
			if !finite(at.Target) {
				return Field{}, fmt.Errorf("member path %q: elements of %s nest deeper than %d: %w", path, comp, MaxDepth, vmi.ErrLimit)
			}
			var esz uint64
			if e := Underlying(at.Target); e != nil {
				esz = e.Size
			}
			hi, lo := bits.Mul64(idx, esz)
			if hi != 0 || lo > maxOffset {
				return Field{}, fmt.Errorf("member path %q: index %d too large: %w", path, idx, vmi.ErrLimit)
			}
			if bitOff, err = addBits(bitOff, 0, lo*8); err != nil {
				return Field{}, fmt.Errorf("member path %q: %w", path, err)
			}
			cur, bitSize = at.Target, 0
		}
		last = comp
	}
	if bitSize == 0 && bitOff%8 != 0 {
		return Field{}, fmt.Errorf("member path %q: at bit %d, not byte-aligned: %w", path, bitOff, vmi.ErrFormat)
	}
	f := Field{Offset: bitOff / 8, BitSize: bitSize, Type: cur}
	if bitSize != 0 {
		f.BitOffset = uint32(bitOff % 8)
	}
	return f, nil
}

// addBits adds member bit offsets, bounded by maxOffset bytes.
func addBits(base, a, b uint64) (uint64, error) {
	s, c1 := bits.Add64(base, a, 0)
	s, c2 := bits.Add64(s, b, 0)
	if c1|c2 != 0 || s > maxOffset*8 {
		return 0, fmt.Errorf("offset beyond %d bytes: %w", uint64(maxOffset), vmi.ErrLimit)
	}
	return s, nil
}

func spellOrKind(t *Type) string {
	if t == nil {
		return "void"
	}
	return t.String()
}

// findMember looks for name among the members of composite st, descending
// into anonymous struct/union members as C does. off is the bit offset of
// the anonymous container(s) the member was found in.
func findMember(st *Type, name string, depth int) (m Member, off uint64, found bool, err error) {
	if depth > MaxDepth {
		return m, 0, false, fmt.Errorf("anonymous members of %s nested deeper than %d: %w", st, MaxDepth, vmi.ErrLimit)
	}
	for _, mm := range st.Members {
		if mm.Name == name && name != "" {
			return mm, 0, true, nil
		}
		if mm.Name != "" {
			continue
		}
		inner := Underlying(mm.Type)
		if !inner.IsComposite() {
			continue
		}
		im, ioff, ok, err := findMember(inner, name, depth+1)
		if err != nil {
			return m, 0, false, err
		}
		if ok {
			s, c := bits.Add64(ioff, mm.BitOffset, 0)
			if c != 0 {
				return m, 0, false, fmt.Errorf("offset of %q overflows: %w", name, vmi.ErrLimit)
			}
			return im, s, true, nil
		}
	}
	return m, 0, false, nil
}

// MemberNames lists the names a member path can take at st (typedefs
// stripped): its named members in declaration order, with the members of
// anonymous structs and unions in their place, as C reaches them. At most
// limit names (limit <= 0: no limit); nesting is bounded by MaxDepth.
func MemberNames(t *Type, limit int) []string {
	var names []string
	var collect func(st *Type, depth int)
	collect = func(st *Type, depth int) {
		for _, m := range st.Members {
			if limit > 0 && len(names) >= limit {
				return
			}
			if m.Name != "" {
				names = append(names, m.Name)
			} else if inner := Underlying(m.Type); inner.IsComposite() && depth < MaxDepth {
				collect(inner, depth+1)
			}
		}
	}
	if st := Underlying(t); st.IsComposite() {
		collect(st, 0)
	}
	return names
}

// noMember builds the not-found error: the struct, the names that look like
// the one asked for, and the first members there are.
func noMember(st *Type, name, path string) error {
	all := MemberNames(st, 1<<16)
	var near []string
	for _, n := range all {
		if len(near) < 4 && isNear(name, n) {
			near = append(near, n)
		}
	}
	list := all
	if len(all) > 8 {
		list = append(all[:8:8], "...")
	}
	where := st.String()
	if name != path {
		where += fmt.Sprintf(" (in path %q)", path)
	}
	hint := ""
	if len(near) > 0 {
		hint = "did you mean " + strings.Join(near, ", ") + "? "
	}
	return fmt.Errorf("no member %q in %s (%smembers: %s): %w", name, where, hint, strings.Join(list, ", "), vmi.ErrNotFound)
}

// isNear: a typo (edit distance at most 1, or 2 for longer names) or one
// name contains the other.
func isNear(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	la, lb := strings.ToLower(a), strings.ToLower(b)
	if len(la) >= 3 && strings.Contains(lb, la) || len(lb) >= 3 && strings.Contains(la, lb) {
		return true
	}
	max := 1
	if len(a) > 5 {
		max = 2
	}
	return editDistance(la, lb, max) <= max
}

// editDistance is the optimal-string-alignment distance of a and b (a
// swap of two neighbours counts as one edit), or max+1 once it exceeds max
// (names are short; the cut keeps long ones cheap).
func editDistance(a, b string, max int) int {
	if d := len(a) - len(b); d > max || -d > max {
		return max + 1
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		best := cur[0]
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c = 1 + min(prev[j-1], prev[j], cur[j-1])
				if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
					c = min(c, prev2[j-2]+1)
				}
			}
			cur[j] = c
			best = min(best, c)
		}
		if best > max {
			return max + 1
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// SplitIndexes splits a path component "arr[3][2]" into "arr" and [3 2].
// Indexes may be decimal or 0x hex. Bad syntax wraps vmi.ErrNotFound (a
// member that cannot exist).
func SplitIndexes(comp string) (string, []uint64, error) {
	i := strings.IndexByte(comp, '[')
	if i < 0 {
		return comp, nil, nil
	}
	name, rest := comp[:i], comp[i:]
	var idxs []uint64
	for rest != "" {
		j := strings.IndexByte(rest, ']')
		if rest[0] != '[' || j < 0 {
			return "", nil, fmt.Errorf("bad index syntax in %q: %w", comp, vmi.ErrNotFound)
		}
		n, err := strconv.ParseUint(rest[1:j], 0, 64)
		if err != nil {
			return "", nil, fmt.Errorf("bad index %q in %q: %w", rest[1:j], comp, vmi.ErrNotFound)
		}
		idxs = append(idxs, n)
		rest = rest[j+1:]
	}
	return name, idxs, nil
}
