package vmi

import (
	"errors"
	"fmt"
)

// DetailedError is an error a person reads on one line: Error() says what
// failed and what to do, in at most about 200 characters, and Details holds
// the long trail behind it (every candidate a search rejected, and why),
// which the command line prints only when asked (--verbose, `xascript
// info`). A search over guest memory that tries many candidates returns
// one, instead of joining every rejection into its message.
type DetailedError interface {
	error
	Details() []string
}

// detailed is this module's DetailedError.
type detailed struct {
	msg      error // the one-line message (may wrap a cause with %w)
	sentinel error // also matched by errors.Is, without repeating its text
	details  []string
}

func (e *detailed) Error() string     { return e.msg.Error() }
func (e *detailed) Details() []string { return e.details }
func (e *detailed) Unwrap() []error {
	if e.sentinel == nil {
		return []error{e.msg}
	}
	return []error{e.msg, e.sentinel}
}

// Detailed returns an error whose message is format's (%w wraps a cause),
// that errors.Is also matches to sentinel (when not nil; its text is not
// added to the message), and whose Details are details.
func Detailed(details []string, sentinel error, format string, args ...any) error {
	return &detailed{msg: fmt.Errorf(format, args...), sentinel: sentinel, details: details}
}

// Details returns the details of the outermost DetailedError in err's
// chain, or nil.
func Details(err error) []string {
	var d DetailedError
	if errors.As(err, &d) {
		return d.Details()
	}
	return nil
}

// Explain returns label (when not empty) and err's message on one line,
// then err's details indented below it: how a rejected candidate becomes
// the details of the search that rejected it, with its own trail kept.
func Explain(label string, err error) []string {
	line := err.Error()
	if label != "" {
		line = label + ": " + line
	}
	lines := []string{line}
	for _, d := range Details(err) {
		lines = append(lines, "  "+d)
	}
	return lines
}

// MaxDetails bounds how many rejected candidates a search keeps as details.
const MaxDetails = 16

// ExplainAll is Explain of each error, after its label, with a last line
// saying how many more were rejected than were kept (total counts them all).
func ExplainAll(labels []string, errs []error, total int) []string {
	var lines []string
	for i, err := range errs {
		label := ""
		if i < len(labels) {
			label = labels[i]
		}
		lines = append(lines, Explain(label, err)...)
	}
	if total > len(errs) {
		lines = append(lines, fmt.Sprintf("(and %d more)", total-len(errs)))
	}
	return lines
}
