package memberpath

import (
	"errors"
	"fmt"
	"testing"

	"github.com/xascript/xascript/vmi"
)

func TestSplitIndexes(t *testing.T) {
	for in, want := range map[string]string{
		"name": "name []", "arr[3]": "arr [3]", "a[3][0x10]": "a [3 16]", "[2]": " [2]",
	} {
		name, idx, err := SplitIndexes(in)
		if got := fmt.Sprint(name, " ", idx); err != nil || got != want {
			t.Errorf("SplitIndexes(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"a[", "a[x]", "a[1]b", "a[-1]"} {
		if _, _, err := SplitIndexes(bad); !errors.Is(err, vmi.ErrNotFound) {
			t.Errorf("SplitIndexes(%q): err = %v", bad, err)
		}
	}
}
