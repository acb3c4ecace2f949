package stablehash

import "testing"

// The values are pinned: indexes persisted on disk break if they change.
func TestPinned(t *testing.T) {
	for in, want := range map[string]uint64{
		"":                   0x0,
		"modules":            0x8f3c02164f17392f,
		"init_task_struct_x": 0x24ab57a13269c88e,
	} {
		if got := Bytes([]byte(in)); got != want {
			t.Errorf("Bytes(%q) = %#x, want %#x", in, got, want)
		}
	}
}
