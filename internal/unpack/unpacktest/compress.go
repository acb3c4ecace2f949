// Package unpacktest helps tests make compressed files in the formats that
// package unpack reads.
package unpacktest

import (
	"bytes"
	"io"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Compress returns data compressed as kind: "zstd", "xz" or "gzip"; ""
// returns data unchanged. Any other kind fails the test.
func Compress(tb testing.TB, kind string, data []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	var err error
	switch kind {
	case "":
		return data
	case "zstd":
		w, err = zstd.NewWriter(&buf)
	case "xz":
		w, err = xz.NewWriter(&buf)
	case "gzip":
		w = gzip.NewWriter(&buf)
	default:
		tb.Fatalf("unpacktest: no writer for %q", kind)
	}
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}
