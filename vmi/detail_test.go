package vmi

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestDetailed(t *testing.T) {
	inner := Detailed([]string{"candidate at 0x10: bad", "candidate at 0x20: worse"}, ErrNotFound,
		"kallsyms: %d candidates, none fits", 2)
	outer := Detailed(Explain("near 0x1000", inner), ErrNotFound, "no kernel symbols found (%d images)", 1)
	wrapped := fmt.Errorf("dump.raw: %w; give --symbols", outer)

	if got := wrapped.Error(); got != "dump.raw: no kernel symbols found (1 images); give --symbols" {
		t.Errorf("message %q", got)
	}
	if !errors.Is(wrapped, ErrNotFound) || !errors.Is(inner, ErrNotFound) {
		t.Error("the sentinel is lost")
	}
	want := []string{
		"near 0x1000: kallsyms: 2 candidates, none fits",
		"  candidate at 0x10: bad",
		"  candidate at 0x20: worse",
	}
	if got := Details(wrapped); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("details %q, want %q", got, want)
	}
	if Details(errors.New("plain")) != nil {
		t.Error("a plain error has details")
	}
	// A cause wrapped with %w stays reachable.
	cause := &PhysError{Addr: 0x1000, Err: ErrNotPresent}
	e := Detailed(nil, nil, "read table: %w", cause)
	var pe *PhysError
	if !errors.As(e, &pe) || !errors.Is(e, ErrNotPresent) || errors.Is(e, ErrNotFound) {
		t.Errorf("cause: %v", e)
	}
	all := ExplainAll([]string{"a", "b"}, []error{inner, errors.New("short")}, 5)
	if len(all) != 5 || all[3] != "b: short" || all[4] != "(and 3 more)" {
		t.Errorf("ExplainAll: %q", all)
	}
}
