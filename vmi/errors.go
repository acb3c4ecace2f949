package vmi

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers test for them with errors.Is; the errors returned
// carry the address and layer in their message.
var (
	// ErrNotPresent: a guest-physical address outside RAM (a hole), or a
	// virtual address whose page-table entry is not present.
	ErrNotPresent = errors.New("not present")
	// ErrFormat: a file or guest structure is malformed.
	ErrFormat = errors.New("malformed")
	// ErrNotFound: a symbol, type or member is unknown to the profile.
	ErrNotFound = errors.New("not found")
	// ErrUnsupported: a valid input this version does not handle.
	ErrUnsupported = errors.New("unsupported")
	// ErrLimit: a bound on a loop or length set against hostile guest data was hit.
	ErrLimit = errors.New("limit exceeded")
	// ErrReadOnly: a write to a target that was opened read-only (the
	// default) or cannot hold writes (see Writer).
	ErrReadOnly = errors.New("read-only")
)

// PhysError reports a failed physical read.
type PhysError struct {
	Addr uint64
	Err  error
}

func (e *PhysError) Error() string {
	return fmt.Sprintf("physical address %#x: %v", e.Addr, e.Err)
}

func (e *PhysError) Unwrap() error { return e.Err }
