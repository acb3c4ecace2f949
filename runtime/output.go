package runtime

import (
	"bufio"
	"io"

	"github.com/xascript/xascript/internal/progress"
)

// output is the script's standard output. Batch scripts print many lines,
// so writes are buffered; monitors print a few lines and then wait, and
// their reader (a person, tee, another program) must see each line when it
// is printed. So the buffer is flushed:
//   - before every blocking point: bindings call Env.BeforeBlock before they
//     wait (sleep, pause/resume of a live guest, and the event loop's waits
//     for timers and disk events), which flushes;
//   - at the end of every record when stdout is a terminal (line-buffered);
//   - when the script ends, whatever the way it ends (error, interrupt,
//     panic in a binding).
//
// A write to a pipe whose reader is gone fails; bufio keeps that error, and
// the script's run reports it when it ends.
type output struct {
	w *bufio.Writer
	// lineBuffered flushes at every record's end (a terminal).
	lineBuffered bool
}

// outputBufferSize holds a burst of a few thousand lines: big enough that
// a batch script writes in large blocks.
const outputBufferSize = 64 << 10

func newOutput(w io.Writer, lineBuffered bool) *output {
	return &output{w: bufio.NewWriterSize(w, outputBufferSize), lineBuffered: lineBuffered || progress.IsTerminal(w)}
}

// Write buffers p (part of a record).
func (o *output) Write(p []byte) (int, error) { return o.w.Write(p) }

// WriteByte buffers c (part of a record).
func (o *output) WriteByte(c byte) error { return o.w.WriteByte(c) }

// WriteString buffers s (part of a record).
func (o *output) WriteString(s string) (int, error) { return o.w.WriteString(s) }

// EndRecord marks the end of a record (a print line, an emit record): a
// terminal sees it at once.
func (o *output) EndRecord() error {
	if o.lineBuffered {
		return o.w.Flush()
	}
	return nil
}

// Flush writes everything buffered.
func (o *output) Flush() error { return o.w.Flush() }
