package ext4

import (
	"errors"
	"fmt"
	"io/fs"
)

// ErrNotExist is fs.ErrNotExist, so errors.Is(err, fs.ErrNotExist) holds
// for a path component that is missing.
var ErrNotExist = fs.ErrNotExist

// ErrNotDir reports a path component or inode that is not a directory.
var ErrNotDir = errors.New("not a directory")

// ErrUnsupported reports a filesystem this package refuses to read (an
// external journal device, compression, dirdata, unknown incompat flags).
var ErrUnsupported = errors.New("unsupported filesystem feature")

// ErrTooLarge reports a walk that hit one of the package's bounds (entries
// per directory, bytes per file, extents per file).
var ErrTooLarge = errors.New("exceeds limit")

// ErrNoCommit reports a Pin of a transaction that is not a committed one
// in the journal's overlay window (never committed, already checkpointed,
// or no journal at all).
var ErrNoCommit = errors.New("no such committed transaction in the journal window")

// CorruptError reports metadata that does not parse. Block is the
// filesystem block (or, for the journal, the journal's own block number
// as named in What) that held it.
type CorruptError struct {
	Block uint64
	What  string
	Err   error
}

func (e *CorruptError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("ext4: corrupt %s at block %d: %v", e.What, e.Block, e.Err)
	}
	return fmt.Sprintf("ext4: corrupt %s at block %d", e.What, e.Block)
}

func (e *CorruptError) Unwrap() error { return e.Err }

func corrupt(block uint64, what string, format string, args ...any) error {
	return &CorruptError{Block: block, What: what, Err: fmt.Errorf(format, args...)}
}
