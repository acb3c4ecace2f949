// Package memberpath parses the member paths that offsetof() and friends
// take: dotted components ("list.next", "core_layout.size"), each with
// optional array indexes ("arr[3][2]"). Every struct-layout source (BTF,
// ISF, DWARF) resolves the same syntax.
package memberpath

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/xascript/xascript/vmi"
)

// SplitIndexes splits "arr[3][2]" into "arr" and [3 2]. Indexes may be
// decimal or 0x hex. Bad syntax wraps vmi.ErrNotFound (a member that cannot
// exist).
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
